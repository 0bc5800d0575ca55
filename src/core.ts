import { getEventListeners, setMaxListeners } from 'node:events';
import { createWriteBudget, type WriteBudget } from './modules/auth/writeBudget.js';
import { createPubSub } from 'graphql-yoga';
import { apiKeyQueries, type ApiKeyDoc } from '../projections/apiKeys.js';
import { balanceQueries, type BalanceDoc } from '../projections/balances.js';
import type { ProjectionRunner } from '../projections/runner.js';
import type { Config } from './config.js';
import { streamCategory, type DomainEvent, type EventStore } from './eventStore/eventStore.js';
import { handleCommand, type Decider, type HandleOptions, type HandleResult } from './eventStore/handleCommand.js';
import type { Logger } from './logger.js';
import { AUTH_CATEGORIES, type AuthDirectory } from './modules/auth/authDirectory.js';
import { LEDGER_CATEGORY } from './modules/ledger/ledger.events.js';
import type { LedgerService } from './modules/ledger/ledgerService.js';
import type { Gateway } from './gateway/gateway.js';
import type { Modules } from './modules/modules.js';
import type { ReadStore } from './readStore/readStore.js';

export interface Actor {
  readonly actor: string;
  readonly correlationId: string;
}

export type PubSubTopics = {
  /** A key of this account changed (published after the apiKeys read model stored it). */
  apiKeyChanged: [accountId: string, payload: ApiKeyDoc];
  /** The account's balance changed (published after the balances read model stored it). */
  balanceChanged: [accountId: string, payload: BalanceDoc];
};

/**
 * The in-process pub/sub of read-model changes, and whether anyone watches a topic (to skip reading for nobody). Each
 * change is dispatched to the listeners of its topic and account only, so its cost is that account's subscribers,
 * at most `subscribersPerAccount` (GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT): no leak warning below that.
 */
export const createTopics = (subscribersPerAccount = 100) => {
  const target = new EventTarget();
  setMaxListeners(subscribersPerAccount, target);
  return {
    pubsub: createPubSub<PubSubTopics>({ eventTarget: target }),
    /** Whether anyone subscribed to `topic` for `id` (yoga's pubsub names the event `${topic}:${id}`). */
    watched: (topic: keyof PubSubTopics, id: string) => getEventListeners(target, `${topic}:${id}`).length > 0,
  };
};
export type Topics = ReturnType<typeof createTopics>;
export type SwitchyardPubSub = Topics['pubsub'];

/** Everything the API layers (GraphQL, REST) need, built once in the composition root. */
export interface Core {
  readonly config: Config;
  readonly logger: Logger;
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  readonly directory: AuthDirectory;
  readonly runner: ProjectionRunner;
  readonly pubsub: SwitchyardPubSub;
  /** Whether anyone subscribed to `topic` for `id` (tests read it to prove a subscription ended). */
  readonly watched: Topics['watched'];
  readonly ledger: LedgerService;
  /** Routing, billing and recording of model calls (src/gateway), with the in-memory catalog. */
  readonly gateway: Gateway;
  /** Each capability's application API (src/modules/modules.ts): what GraphQL and REST call; the GraphQL context spreads them. */
  readonly modules: Modules;
  readonly now: () => Date;
  /** What each account may change through the API in a minute (WRITES_PER_MINUTE): GraphQL mutations and REST changes take from it. */
  readonly writes: WriteBudget;
  /**
   * Run a command through its decider and return once the auth directory and the read models have applied the
   * result, so the caller reads its own write (a revoked key is refused on the very next request).
   */
  execute<State, Command, Event extends DomainEvent>(
    stream: string,
    decider: Decider<State, Command, Event>,
    command: Command,
    actor: Actor,
    options?: Pick<HandleOptions<Event>, 'first'>,
  ): Promise<HandleResult<State, Event>>;
}

export const createCore = (deps: {
  config: Config;
  logger: Logger;
  eventStore: EventStore;
  readStore: ReadStore;
  directory: AuthDirectory;
  runner: ProjectionRunner;
  ledger: LedgerService;
  gateway: Gateway;
  topics: Topics;
  /** Builds the modules' APIs from the core's shared pieces (pubsub, execute, now), in the composition root. */
  modules: (core: Omit<Core, 'modules'>) => Modules;
  now?: () => Date;
}): Core => {
  const now = deps.now ?? (() => new Date());
  const { pubsub, watched } = deps.topics;
  const apiKeys = apiKeyQueries(deps.readStore);
  const balances = balanceQueries(deps.readStore);
  /** The ids of a category's streams (`apikey-{keyId}`, `ledger-{accountId}`). */
  const idsIn = (streams: readonly string[], category: string) => streams.filter((s) => streamCategory(s) === category).map((s) => s.slice(category.length + 1));
  // Subscriptions show read-model data, so publish only after the read model stored the change.
  deps.runner.onApplied(({ streams }) => {
    const keyIds = idsIn(streams, 'apikey');
    if (keyIds.length > 0) {
      void apiKeys.byIds(keyIds).then((docs) => {
        for (const doc of docs) pubsub.publish('apiKeyChanged', doc.accountId, doc);
      });
    }
    // Every call moves a balance: read it back only for the accounts someone is watching.
    const accountIds = idsIn(streams, LEDGER_CATEGORY).filter((id) => watched('balanceChanged', id));
    if (accountIds.length > 0) {
      void balances.byIds(accountIds).then((docs) => {
        for (const doc of docs) pubsub.publish('balanceChanged', doc._id, doc);
      });
    }
  });
  const { modules, ...rest } = deps;
  const base: Omit<Core, 'modules'> = {
    ...rest,
    now,
    pubsub,
    watched,
    writes: createWriteBudget(deps.config.WRITES_PER_MINUTE, now),
    async execute(stream, decider, command, actor, options) {
      const result = await handleCommand(deps.eventStore, stream, decider, command, {
        ...options,
        metadata: { actor: actor.actor, correlationId: actor.correlationId, at: now().toISOString() },
      });
      if (result.position !== null) {
        const waitForDirectory = AUTH_CATEGORIES.includes(streamCategory(stream));
        const [directoryReady, readModelsReady] = await Promise.all([
          waitForDirectory ? deps.directory.waitFor(result.position) : true,
          deps.runner.waitFor(result.position),
        ]);
        if (!directoryReady || !readModelsReady) deps.logger.warn({ stream, position: result.position }, 'read side is lagging behind a command');
      }
      return result;
    },
  };
  return { ...base, modules: modules(base) };
};

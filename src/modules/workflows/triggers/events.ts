/**
 * `event` triggers and error workflows: a follower of the platform's event log that starts the runs of the enabled
 * workflows listening to each event of their own account.
 *
 * Durable and exactly-once per (event, workflow): the follower stores its checkpoint (the log position it handled)
 * in the read store, so events written while the server was down fire after a restart; it handles events at least
 * once, and each run's id derives from the source event (stream and revision; a custom event's id) and the workflow,
 * so a re-delivery, or a custom event written again (eventRunId), answers the run it started before (runs.start with
 * a taken id) instead of starting a second one. On its very
 * first start it begins at the log's head: events from before the feature existed fire nothing.
 *
 * Error workflows are the `workflowRun.failed` event: a failed run of W fires W's `settings.errorWorkflow` (pinned
 * version) as well as any workflow whose trigger is `workflowRun.failed`; both get the same derived run id.
 *
 * Chains: a run started by an event that another run caused (its failure, an event it emitted, its model call) has
 * that run's depth + 1; runs.start refuses a run past MAX_CHAIN_DEPTH (recorded as failed with CHAIN_TOO_DEEP), and a
 * refused run's failure fires nothing, so the chain ends there.
 *
 * Keys: a run spends under the key that caused its event (chain.ts): the key of a generation or of a settlement
 * (balance.below), else the causing run's key (a failed run, an emitted event); apiKey.* and the other balance moves
 * name none.
 *
 * Payloads (a run's `trigger`; stable, never secrets): every one has `event` (the name) and `at`, plus
 * - generation.completed / generation.failed: `id`, `model`, `provider`, `cost` (nano-dollars), `tokens` {prompt,
 *   completion, reasoning, cached}, `status` ("completed" | "failed"), `finishReason`, `latencyMs`, `apiType`,
 *   `keyId`, `workflowId`/`runId` (the run that made the call, else null), and for a failure `error` {type, status,
 *   message};
 * - balance.below: `balance` and `previousBalance` (nano-dollars: bought + granted − refunded − charged; holds of
 *   calls in flight not counted), `threshold`, `cause` {type, generationId};
 * - apiKey.created / apiKey.revoked: `id`, `name`, `hint` (never the key or its hash), and for created `limit`,
 *   `limitReset`, `expiresAt`;
 * - workflowRun.failed: `runId`, `workflowId`, `workflowName`, `version`, `error` {code, message}, `failedStep`,
 *   `trigger` (the failed run's own trigger);
 * - custom.<name>: `data` (what action.emit sent), `source` {workflowId, runId, step} or null.
 *
 * Interest: the follower reads only the event types some enabled `event` workflow (of any account) can be triggered
 * by, plus failed runs, custom events and the workflow changes; most calls then wake it for nothing. It computes them
 * from the read model as of the position it subscribes after, and at each workflow change, as of that change: when
 * they differ it subscribes again right after the change, so an event after it is read with the new filter (a
 * generation right after a workflow listening to it was created starts its run). When the read model cannot answer,
 * it reads every source type (never fewer than it needs).
 */
import { createHash } from 'node:crypto';
import { Query } from 'mingo';
import { workflowQueries } from '../../../../projections/workflows.js';
import type { ProjectionRunner } from '../../../../projections/runner.js';
import { DomainError } from '../../../errors.js';
import { streamCategory, type AllFilter, type EventStore, type JsonValue, type RecordedEvent } from '../../../eventStore/eventStore.js';
import type { RetryPolicy } from '../../../eventStore/followStatus.js';
import type { Logger } from '../../../logger.js';
import type { ReadStore } from '../../../readStore/readStore.js';
import type { ApiKeyEvent } from '../../apiKeys/apiKey.events.js';
import { API_KEY_CATEGORY, apiKeyStream } from '../../apiKeys/apiKey.events.js';
import { GENERATION_CATEGORY, generationStream, type GenerationEvent } from '../../generations/generation.events.js';
import { LEDGER_CATEGORY, ledgerStream, type LedgerEvent } from '../../ledger/ledger.events.js';
import { payloadFilter } from '../../tables/entryFilter.js';
import { CUSTOM_EVENT_CATEGORY, type CustomEventEmitted } from '../customEvents.js';
import type { PlatformEventName, WorkflowDefinition } from '../definition.js';
import { RUN_ERROR_CODES } from '../run.decider.js';
import { RUN_CATEGORY, runStream, type RunEvent, type RunIdentity } from '../run.events.js';
import { causeOf } from './chain.js';
import { refusedFilterWarning } from './refusedFilter.js';
import type { RunsApi } from '../run.api.js';
import { followForTrigger } from './triggerFollower.js';
import type { WorkflowsApi } from '../workflow.api.js';
import { WORKFLOW_CATEGORY, type WorkflowEvent } from '../workflow.events.js';

/** The read store's checkpoint name for this follower (not a projection: it writes no documents). */
export const EVENT_TRIGGERS_CHECKPOINT = 'workflowEventTriggers';

type Source = RecordedEvent<GenerationEvent | ApiKeyEvent | LedgerEvent | RunEvent | CustomEventEmitted>;

/** The event types the follower may read, each with its stream category (what triggers fire from; see `interpret`). */
const SOURCE_CATEGORIES = {
  GenerationCompleted: GENERATION_CATEGORY,
  GenerationFailed: GENERATION_CATEGORY,
  ApiKeyCreated: API_KEY_CATEGORY,
  ApiKeyRevoked: API_KEY_CATEGORY,
  RunFailed: RUN_CATEGORY,
  CustomEventEmitted: CUSTOM_EVENT_CATEGORY,
  // The balance moves with these (reservations are holds, not counted).
  CreditsPurchased: LEDGER_CATEGORY,
  CreditsGranted: LEDGER_CATEGORY,
  CreditsRefunded: LEDGER_CATEGORY,
  ReservationSettled: LEDGER_CATEGORY,
} as const satisfies Partial<Record<Source['type'], string>>;
type SourceType = keyof typeof SOURCE_CATEGORIES;
const SOURCE_TYPES = Object.keys(SOURCE_CATEGORIES) as SourceType[];

/** The workflow events that can change which workflows an event triggers (received to drop the cache and recompute the interest). */
const WORKFLOW_CHANGES = ['WorkflowCreated', 'WorkflowUpdated', 'WorkflowEnabled', 'WorkflowDisabled', 'WorkflowDeleted'] as const satisfies readonly WorkflowEvent['type'][];

/** Read whoever listens: error workflows and workflowRun.failed (RunFailed), custom.* (any name, cheap and rare). */
const ALWAYS_READ: readonly SourceType[] = ['RunFailed', 'CustomEventEmitted'];

/** The source types a trigger's event name is fired from (custom.* and workflowRun.failed: read always). */
const sourceTypesOf = (event: PlatformEventName | `custom.${string}`): readonly SourceType[] => {
  switch (event) {
    case 'generation.completed':
      return ['GenerationCompleted'];
    case 'generation.failed':
      return ['GenerationFailed'];
    case 'apiKey.created':
      return ['ApiKeyCreated'];
    case 'apiKey.revoked':
      return ['ApiKeyRevoked'];
    case 'balance.below':
      return ['CreditsPurchased', 'CreditsGranted', 'CreditsRefunded', 'ReservationSettled'];
    case 'workflowRun.failed':
    default:
      return [];
  }
};

/** The subscription filter reading these source types and the workflow changes (only their categories: see the store's wake-up check). */
const filterOf = (types: ReadonlySet<SourceType>): AllFilter => {
  const eventTypes = SOURCE_TYPES.filter((type) => types.has(type));
  return { categories: [...new Set([...eventTypes.map((type) => SOURCE_CATEGORIES[type]), WORKFLOW_CATEGORY])], eventTypes: [...eventTypes, ...WORKFLOW_CHANGES] };
};
const FULL_FILTER = filterOf(new Set(SOURCE_TYPES));
const sameFilter = (a: AllFilter, b: AllFilter) => a.eventTypes?.join() === b.eventTypes?.join();

type Payload = { [key: string]: JsonValue };

/** What one source event means for the triggers of its account. */
interface Fired {
  readonly accountId: string;
  readonly name: string;
  /** Balance events: the payload depends on each workflow's threshold (null when it does not cross it). */
  readonly payload: (threshold: number | undefined) => Payload | null;
  /** The run that caused the event, whose depth + 1 the started runs get, and whose key they spend under (null: no run did). */
  readonly causedBy: () => Promise<string | null>;
  /**
   * The API key the event records as its cause (a key's model call, and the settlement of its charge): the started
   * runs spend under it, as a run the key starts does (chain.ts). Null: the event names none (the causing run's then).
   */
  readonly key: string | null;
  /** For a failed run: its pinned definition's error workflow. */
  readonly errorWorkflow?: string;
}

const derivedRunId = (source: string, workflowId: string): string => `run_${createHash('sha256').update(`event\n${source}\n${workflowId}`).digest('hex').slice(0, 40)}`;

/**
 * The run a trigger starts for this event: the same id for every delivery of the event to the workflow. Named by the
 * event's stream and revision, which every source but one is appended at exactly (a write at a taken revision is
 * refused). A custom event is named by its id instead: action.emit appends it with `expectedRevision: 'any'`, and a
 * step run again (its outcome not recorded) appends it again with the same id, which EventStoreDB checks for `any`
 * only against a bounded cache of recent ids (lost on a restart or a leader change): the copy can be written at the
 * next revision, and must start nothing new.
 */
export const eventRunId = (event: Pick<RecordedEvent, 'type' | 'id' | 'stream' | 'revision'>, workflowId: string): string =>
  derivedRunId(event.type === 'CustomEventEmitted' ? `${event.stream}\nid ${event.id}` : `${event.stream}\n${event.revision}`, workflowId);

/** A custom event's run id before it was named by the event's id (see `handle`). */
const revisionRunId = (event: Pick<RecordedEvent, 'stream' | 'revision'>, workflowId: string): string => derivedRunId(`${event.stream}\n${event.revision}`, workflowId);

/** Funds a ledger event adds (negative: takes). */
const fundsDelta = (event: RecordedEvent<LedgerEvent>): number => {
  switch (event.type) {
    case 'CreditsPurchased':
    case 'CreditsGranted':
      return event.data.amount;
    case 'CreditsRefunded':
      return -event.data.amount;
    case 'ReservationSettled':
      return -event.data.charged;
    case 'CreditsReserved':
    case 'ReservationReleased':
    case 'ReservationExpired':
    case 'PurchaseStarted':
    case 'PurchaseFailed':
      return 0;
    default: {
      const _never: never = event;
      return 0;
    }
  }
};

/** Accounts whose balance or event workflows are kept in memory (the oldest entry goes first). */
const MAX_ACCOUNTS = 10_000;

export const createEventTriggers = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  runner: Pick<ProjectionRunner, 'waitFor'>;
  workflows: Pick<WorkflowsApi, 'ownerOf' | 'definitionAt'>;
  runs: Pick<RunsApi, 'start'>;
  logger: Logger;
  retry?: RetryPolicy;
}) => {
  const { logger } = deps;
  const queries = workflowQueries(deps.readStore);
  const chains = { eventStore: deps.eventStore, ownerOf: deps.workflows.ownerOf };
  /** Per account: the funds after the ledger event at `revision` (for balance.below crossings). */
  const balances = new Map<string, { revision: number; funds: number }>();

  const firstEvent = async <E extends RecordedEvent>(stream: string): Promise<E | undefined> => (await deps.eventStore.readStream(stream, { maxCount: 1 }))[0] as E | undefined;


  /** The funds before and after a ledger event (folding the account's stream once, then following it). */
  const balanceAround = async (event: RecordedEvent<LedgerEvent>): Promise<{ before: number; after: number }> => {
    const accountId = event.data.accountId;
    let known = balances.get(accountId);
    if (known?.revision !== event.revision - 1) {
      const earlier = (await deps.eventStore.readStream(ledgerStream(accountId), { maxCount: event.revision })) as RecordedEvent<LedgerEvent>[];
      known = { revision: event.revision - 1, funds: earlier.reduce((funds, e) => funds + fundsDelta(e), 0) };
    }
    const after = known.funds + fundsDelta(event);
    balances.delete(accountId);
    if (balances.size >= MAX_ACCOUNTS) balances.delete(balances.keys().next().value!);
    balances.set(accountId, { revision: event.revision, funds: after });
    return { before: known.funds, after };
  };

  const generationPayload = (event: RecordedEvent<GenerationEvent & { type: 'GenerationCompleted' | 'GenerationFailed' }>, attribution: { workflowId: string; runId: string } | null): Payload => {
    const { data } = event;
    const base: Payload = {
      id: data.generationId,
      model: data.model,
      provider: data.providerSlug,
      cost: data.cost,
      tokens: { prompt: data.usage.prompt, completion: data.usage.completion, reasoning: data.usage.reasoning, cached: data.usage.cached },
      latencyMs: data.latencyMs,
      keyId: data.keyId,
      workflowId: attribution?.workflowId ?? null,
      runId: attribution?.runId ?? null,
      at: data.at,
    };
    return event.type === 'GenerationCompleted'
      ? {
          event: 'generation.completed',
          ...base,
          status: 'completed',
          finishReason: event.data.finishReason,
          // Only when its provider ended the answer with an error mid-generation (finishReason "error").
          ...(event.data.error !== undefined && { error: { type: event.data.error.errorType, status: event.data.error.status, message: event.data.error.message } }),
        }
      : { event: 'generation.failed', ...base, status: 'failed', finishReason: null, error: { type: event.data.errorType, status: event.data.status, message: event.data.message } };
  };

  /** What a source event fires, or null when it fires nothing. */
  const interpret = async (event: Source, listening: (accountId: string, name: string) => Promise<boolean>): Promise<Fired | null> => {
    switch (event.type) {
      case 'GenerationCompleted':
      case 'GenerationFailed': {
        const name = event.type === 'GenerationCompleted' ? 'generation.completed' : 'generation.failed';
        // Most calls have no listener: the extra read below is only for those that do.
        if (!(await listening(event.data.accountId, name))) return null;
        // The request (with the workflow run that made the call, if any) is the stream's first event.
        const first = await firstEvent<RecordedEvent<GenerationEvent>>(generationStream(event.data.generationId));
        const attributed = first?.type === 'GenerationRequested' ? (first.data.workflow ?? null) : null;
        const payload = generationPayload(event, attributed);
        // A run's call is made under the run's key: the call's key is the run's.
        return { accountId: event.data.accountId, name, payload: () => payload, causedBy: async () => attributed?.runId ?? null, key: event.data.keyId };
      }
      case 'ApiKeyCreated': {
        const { keyId, name, hint, limit, limitReset, expiresAt, at } = event.data;
        const payload: Payload = { event: 'apiKey.created', id: keyId, name, hint, limit, limitReset, expiresAt, at };
        // Keys are created and revoked only with a key without a limit (or a management key, or an app's sign-in), and
        // the event does not record which: the runs are the account's.
        return { accountId: event.data.accountId, name: 'apiKey.created', payload: () => payload, causedBy: async () => null, key: null };
      }
      case 'ApiKeyRevoked': {
        const created = await firstEvent<RecordedEvent<ApiKeyEvent>>(apiKeyStream(event.data.keyId));
        if (created?.type !== 'ApiKeyCreated') return null;
        const payload: Payload = { event: 'apiKey.revoked', id: event.data.keyId, name: created.data.name, hint: created.data.hint, at: event.data.at };
        return { accountId: created.data.accountId, name: 'apiKey.revoked', payload: () => payload, causedBy: async () => null, key: null };
      }
      case 'RunFailed': {
        // A run refused for its chain's depth ends the chain: its failure fires nothing.
        if (event.data.error.code === RUN_ERROR_CODES.chain) return null;
        const first = await firstEvent<RecordedEvent<RunEvent>>(event.stream);
        if (first?.type !== 'RunStarted' && first?.type !== 'RunQueued') return null;
        const identity: RunIdentity = first.data;
        const [accountId, definition] = await Promise.all([deps.workflows.ownerOf(identity.workflowId), deps.workflows.definitionAt(identity.workflowId, identity.version)]);
        if (accountId === null || definition === null) return null;
        const payload: Payload = {
          event: 'workflowRun.failed',
          runId: identity.runId,
          workflowId: identity.workflowId,
          workflowName: definition.name,
          version: identity.version,
          error: { code: event.data.error.code, message: event.data.error.message },
          failedStep: event.data.step,
          trigger: identity.trigger,
          at: event.data.at,
        };
        return {
          accountId,
          name: 'workflowRun.failed',
          payload: () => payload,
          causedBy: async () => identity.runId,
          key: null,
          ...(definition.settings.errorWorkflow !== undefined && { errorWorkflow: definition.settings.errorWorkflow }),
        };
      }
      case 'CustomEventEmitted': {
        const { accountId, name, data, source, at } = event.data;
        const payload: Payload = { event: name, data, source: source === null ? null : { ...source }, at };
        return { accountId, name, payload: () => payload, causedBy: async () => source?.runId ?? null, key: null };
      }
      case 'CreditsPurchased':
      case 'CreditsGranted':
      case 'CreditsRefunded':
      case 'ReservationSettled': {
        const accountId = event.data.accountId;
        // The fold is needed only for accounts with a balance trigger; the others are not followed.
        if (!(await listening(accountId, 'balance.below'))) {
          balances.delete(accountId);
          return null;
        }
        const { before, after } = await balanceAround(event);
        const cause = { type: event.type, generationId: event.type === 'ReservationSettled' ? event.data.generationId : null };
        return {
          accountId,
          name: 'balance.below',
          payload: (threshold) =>
            threshold !== undefined && before >= threshold && after < threshold ? { event: 'balance.below', balance: after, previousBalance: before, threshold, cause, at: event.data.at } : null,
          causedBy: async () => null,
          // The balance fell because of this key's call (a settlement); a purchase, a grant or a refund names no key.
          key: event.type === 'ReservationSettled' ? event.data.keyId : null,
        };
      }
      case 'GenerationRequested':
      case 'AttemptStarted':
      case 'AttemptFailed':
      case 'GenerationCancelled':
      case 'UsageOverReported':
      case 'ApiKeyRenamed':
      case 'ApiKeyLimitChanged':
      case 'ApiKeyByokInLimitChanged':
      case 'ApiKeyExpiryChanged':
      case 'ApiKeyDisabled':
      case 'ApiKeyEnabled':
      case 'CreditsReserved':
      case 'ReservationReleased':
      case 'ReservationExpired':
      case 'RunQueued':
      case 'RunStarted':
      case 'StepCarriedOver':
      case 'StepStarted':
      case 'StepSucceeded':
      case 'StepFailed':
      case 'StepSkipped':
      case 'StepWaiting':
      case 'RunSucceeded':
      case 'RunCancelled':
      case 'RunFiltered':
      case 'StepCharged':
      case 'PurchaseStarted':
      case 'PurchaseFailed':
        return null;
      default: {
        const _never: never = event;
        return null;
      }
    }
  };

  /**
   * Per account: its enabled workflows with an `event` trigger, as the read model had them at or after the event that
   * looked them up. Every call's GenerationCompleted and ReservationSettled ask; reading the read model for each cost
   * a round trip to the storage thread and a query there, twice per call, for accounts that mostly have no such
   * workflow. Exact all the same: this follower also receives the workflow events, in log order with the others, and
   * drops the cache at each one (see `handle` below), so an event never sees workflows older than a change before it.
   */
  const eventWorkflows = new Map<string, Promise<{ id: string; createdAt: string; definition: WorkflowDefinition }[]>>();
  const enabledEventWorkflows = async (accountId: string, event: Source) => {
    let found = eventWorkflows.get(accountId);
    if (!found) {
      found = (async () => {
        // The read model must have the workflows as of this event (a workflow enabled just before it).
        await deps.runner.waitFor(event.position, 5_000);
        const docs = await queries.enabledWithTrigger(accountId, 'event');
        return docs.map((doc) => ({ id: doc._id, createdAt: doc.createdAt, definition: JSON.parse(doc.definition) as WorkflowDefinition }));
      })();
      if (eventWorkflows.size >= MAX_ACCOUNTS) eventWorkflows.delete(eventWorkflows.keys().next().value!);
      eventWorkflows.set(accountId, found);
      // A failed read is not kept: the event is retried and reads again.
      found.catch(() => eventWorkflows.get(accountId) === found && eventWorkflows.delete(accountId));
    }
    return found;
  };

  /** The account's enabled workflows whose trigger names this event and that existed when it happened. */
  const listeners = async (accountId: string, name: string, event: Source): Promise<{ id: string; definition: WorkflowDefinition }[]> =>
    (await enabledEventWorkflows(accountId, event)).filter(
      ({ createdAt, definition }) => createdAt <= event.recordedAt && definition.trigger.type === 'event' && definition.trigger.event === name,
    );

  /*
   * The filter is checked again each time (payloadFilter, as at save): one saved before a check that now refuses it (a
   * regex with a lookahead, which would hold the thread for ever) matches nothing, with a warning. A filter that cannot
   * be run matches nothing either: it must not stop the follower every account's event triggers share.
   */
  const warnRefused = refusedFilterWarning(logger, 'event trigger');
  const matches = (workflowId: string, filter: Record<string, unknown> | undefined, payload: Payload): boolean => {
    if (filter === undefined) return true;
    let checked: Record<string, unknown>;
    try {
      checked = payloadFilter(filter);
    } catch (error) {
      warnRefused(workflowId, error);
      return false;
    }
    try {
      return new Query(checked, { scriptEnabled: false }).test(payload);
    } catch {
      return false;
    }
  };

  const handle = async (event: Source): Promise<void> => {
    const found = new Map<string, Promise<{ id: string; definition: WorkflowDefinition }[]>>();
    const lookup = (accountId: string, name: string) => {
      const key = `${accountId}\n${name}`;
      let result = found.get(key);
      if (!result) found.set(key, (result = listeners(accountId, name, event)));
      return result;
    };
    const fired = await interpret(event, async (accountId, name) => (await lookup(accountId, name)).length > 0);
    if (fired === null) return;
    const targets = new Map<string, Payload>();
    for (const { id, definition } of await lookup(fired.accountId, fired.name)) {
      if (definition.trigger.type !== 'event') continue;
      const payload = fired.payload(definition.trigger.threshold);
      if (payload !== null && matches(id, definition.trigger.filter, payload)) targets.set(id, payload);
    }
    if (fired.errorWorkflow !== undefined && (await deps.workflows.ownerOf(fired.errorWorkflow)) === fired.accountId) {
      const payload = fired.payload(undefined);
      if (payload !== null) targets.set(fired.errorWorkflow, payload);
    }
    if (targets.size === 0) return;
    const { place, keyId } = await causeOf(chains, { run: await fired.causedBy(), key: fired.key }, fired.accountId);
    // The trigger starts the runs as the key that caused the event would (runs.start: a run spends under the caller's key).
    const caller = { principal: { accountId: fired.accountId, keyId, roles: new Set<never>() }, requestId: `event-${event.id}` };
    for (const [workflowId, payload] of targets) {
      const runId = eventRunId(event, workflowId);
      // A custom event an earlier version handled started its run under the id named by its revision: delivered again
      // (the checkpoint trails the events handled by up to a second after a crash), it has that run. Only an event in
      // the log when these triggers started can have been handled by an earlier holder (see handledBefore).
      if (event.type === 'CustomEventEmitted' && event.position <= handledBefore && (await firstEvent(runStream(revisionRunId(event, workflowId)))) !== undefined) continue;
      try {
        await deps.runs.start(caller, workflowId, payload, { runId, ...place, readYourWrites: false, whenTooMany: 'record' });
      } catch (error) {
        // A refusal (disabled since, deleted, a payload over the limit) will not change on a retry: log it and go on.
        if (error instanceof DomainError && error.status < 500) {
          logger.warn({ err: error, workflowId, runId, event: fired.name, source: event.stream }, `event trigger: ${fired.name} did not start workflow ${workflowId}: ${error.message}`);
          continue;
        }
        throw error;
      }
    }
  };

  /**
   * The filter the follower reads with: the source types the enabled event workflows (every account's) need, as the
   * read model has them at or after `position`; all of them when it cannot say.
   */
  const interestAt = async (position: number): Promise<AllFilter> => {
    try {
      if (!(await deps.runner.waitFor(position, 5_000))) {
        logger.warn({ position }, 'event triggers: the read models are behind the event log; reading every source event until the next workflow change');
        return FULL_FILTER;
      }
      const types = new Set<SourceType>(ALWAYS_READ);
      for (const doc of await queries.enabledEventTriggers()) {
        const { trigger } = JSON.parse(doc.definition) as WorkflowDefinition;
        if (trigger.type === 'event') for (const type of sourceTypesOf(trigger.event)) types.add(type);
      }
      return filterOf(types);
    } catch (error) {
      logger.warn({ err: error, position }, 'event triggers: could not read which events workflows listen to; reading every source event until the next workflow change');
      return FULL_FILTER;
    }
  };
  let interest = FULL_FILTER;
  /**
   * The log's head when these triggers started (this process took the workflows lease): the events up to it are the
   * only ones an earlier holder (an earlier version among them) may have handled, the checkpoint trailing; the later
   * ones only these triggers handle, under today's run ids, so they need no lookup under an earlier version's (one
   * read per custom event and listening workflow, for good, before: review s45 F6).
   */
  let handledBefore = Number.POSITIVE_INFINITY;
  /** The interest a workflow change computed, for the subscription right after it (any other subscribe computes its own). */
  let prepared: { position: number; filter: AllFilter } | null = null;

  const follower = followForTrigger({
    name: 'event triggers',
    eventStore: deps.eventStore,
    readStore: deps.readStore,
    checkpoint: EVENT_TRIGGERS_CHECKPOINT,
    filter: async (position) => {
      interest = prepared?.position === position ? prepared.filter : await interestAt(position);
      prepared = null;
      return interest;
    },
    batchSize: 500,
    // Platform events from before the first start are history, not news: they start nothing.
    firstStart: 'head',
    handle: {
      one: async (event) => {
        if (streamCategory(event.stream) === WORKFLOW_CATEGORY) {
          // A workflow changed: the events after it look their account's workflows up again (see eventWorkflows), and
          // are read with the interest as of the change (only when it moved: most changes are not to event workflows).
          eventWorkflows.clear();
          const next = await interestAt(event.position);
          if (sameFilter(next, interest)) return;
          prepared = { position: event.position, filter: next };
          return 'resubscribe';
        }
        await handle(event as Source);
      },
    },
    logger,
    ...(deps.retry && { retry: deps.retry }),
  });
  return {
    ...follower,
    async start() {
      // Before the follower reads its checkpoint: every event an earlier holder may have handled is at or below it.
      handledBefore = await deps.eventStore.headPosition();
      return follower.start();
    },
  };
};

export type EventTriggers = ReturnType<typeof createEventTriggers>;

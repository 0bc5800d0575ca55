import { accountQueries, byokKeyDoc, type AccountDoc, type ByokKeyDoc } from '../../../projections/accounts.js';
import type { ProjectionRunner } from '../../../projections/runner.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { foldEvents, handleCommand } from '../../eventStore/handleCommand.js';
import { newId } from '../../ids.js';
import type { Logger } from '../../logger.js';
import type { ReadStore } from '../../readStore/readStore.js';
import type { ApiKeysApi, CreatedApiKey } from '../apiKeys/apiKey.api.js';
import type { CatalogApi } from '../catalog/catalog.api.js';
import type { Catalog } from '../catalog/catalog.js';
import { endpointTag, parseProviderName } from '../catalog/endpointTag.js';
import type { CredentialVault } from '../catalog/credentials.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import { createAuthWrites } from '../auth/authWrites.js';
import type { Caller } from '../auth/principal.js';
import { requireKnownPlan, type Plans } from '../ledger/plans.js';
import { accountDecider, type AccountCommand, type AccountState } from './account.decider.js';
import { accountStream, byokContext, type AccountEvent, type Role } from './account.events.js';
import { adminRosterDecider } from './adminRoster.decider.js';
import { ADMIN_ROSTER_STREAM } from './adminRoster.events.js';
import { byokHint, byokStatus, originOf } from './byok.js';
import { termsForNewAccount } from './account.policy.js';
import { createSignupLimit, signupClient } from './signupLimit.js';

export interface NewAccount {
  readonly name: string;
  readonly email: string | null;
  /** Honoured for admins only (see termsForNewAccount), as `plan` is. */
  readonly roles: readonly Role[];
  readonly plan: string;
  readonly initialKeyName: string;
}

export interface OpenedAccount {
  readonly account: AccountDoc;
  /** A first key for the new account, with its secret (shown this once). */
  readonly initialKey: CreatedApiKey;
}

/** An account as its read model shows it, built from the decided state (a command answers without reading the read model). */
export const accountView = (state: AccountState): AccountDoc => {
  if (state.status === 'none') throw new Error('an account command decided on an account that does not exist');
  const { accountId, name, email, roles, plan, contentLogging, defaultModel, providerPreferences, byokKeys, openedAt, updatedAt } = state;
  return { _id: accountId, name, email, roles: [...roles], plan, contentLogging, defaultModel, providerPreferences, byokKeys: [...byokKeys.values()].map(byokKeyDoc), openedAt, updatedAt };
};

/**
 * A provider list as the account stores it: each entry named as a request's `provider.only` names one, a provider (its
 * slug or its name, any case) or one of its endpoint variants (`provider/fp8`: endpointTag.ts), stored as the slug
 * (`slug/variant`), once. What the catalog does not hold is refused, not kept: a mistyped slug or variant in an
 * ignore list would otherwise leave what it meant in use without a word.
 */
const providerList = (catalog: Pick<Catalog, 'provider' | 'providers' | 'models' | 'endpoints'>, field: 'ignore' | 'allow', names: readonly string[]): string[] => {
  const entries = new Set<string>();
  const problems: string[] = [];
  for (const name of names) {
    const parsed = parseProviderName(name.trim());
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      continue;
    }
    const slug = catalog.provider(parsed.provider)?.slug ?? catalog.providers().find((p) => p.name.toLowerCase() === parsed.provider)?.slug;
    if (slug === undefined) {
      problems.push(`no provider ${JSON.stringify(name)} (a provider slug or name, as GET /api/v1/providers lists them)`);
      continue;
    }
    if (parsed.variant === null) {
      entries.add(slug);
      continue;
    }
    const tag = `${slug}/${parsed.variant}`;
    const tags = new Set(catalog.models().flatMap((m) => catalog.endpoints(m.spec.modelId).filter((e) => e.provider.slug === slug).map((e) => endpointTag(slug, e.quantization))));
    if (tags.has(tag)) entries.add(tag);
    else problems.push(`${slug} has no endpoint variant ${JSON.stringify(parsed.variant)} (its endpoints' tags: ${tags.size > 0 ? [...tags].sort().join(', ') : 'none'})`);
  }
  if (problems.length > 0) throw new ValidationError(`${field}: ${problems.join('; ')}`, { field });
  return [...entries];
};

type PageArgs = Parameters<ReturnType<typeof accountQueries>['page']>[0];

/** The accounts module: open accounts, manage their roles, plan and settings (commands answer from the decision), and read them. */
export const createAccountsApi = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  directory: AuthDirectory;
  runner: ProjectionRunner;
  logger: Logger;
  apiKeys: ApiKeysApi;
  plans: Plans;
  /** The catalog's check of a saved model id (a default model must be one a chat can be answered by). */
  catalog: Pick<CatalogApi, 'modelProblem'>;
  /** The routing catalog, which the providers of the provider lists (and their endpoint variants) and of the BYOK keys must be known to. */
  routing: Pick<Catalog, 'model' | 'provider' | 'providers' | 'models' | 'endpoints'>;
  /** Seals the accounts' own provider keys (BYOK) as providers' keys are sealed. */
  vault: Pick<CredentialVault, 'encrypt'>;
  /** The fee on calls served with an account's own provider key, in basis points of their list price (BYOK_FEE_PERCENT). */
  byokFeeBasisPoints: number;
  selfSignup: boolean;
  /** Accounts opened without a key per client address in any hour (SELF_SIGNUP_PER_HOUR; 0: no limit). */
  selfSignupPerHour: number;
  /**
   * Input & output logging is being turned off for an account: its calls in flight store no content (the content
   * store's cut, generationContent.ts); without it, they still may.
   */
  cutContent?: (accountId: string) => Promise<void>;
  now: () => Date;
}) => {
  const writes = createAuthWrites(deps);
  const queries = accountQueries(deps.readStore);

  const change = async (caller: Caller, command: AccountCommand) => {
    const { state } = await writes.execute(accountStream(command.data.accountId), accountDecider, command, caller);
    return accountView(state);
  };
  const at = () => deps.now().toISOString();
  /**
   * An ADMIN grant or revoke: decided first on the admin roster, one stream appended at its expected revision, where
   * the caller's own role is read again (the edge checked it from the directory, before a concurrent demotion could
   * show), then recorded on the account with the roster's revision of the decision, so that two decisions on one
   * account are recorded in the roster's order whichever arrives first. Were the process to stop between the two, the
   * roster holds the decision and the same mutation again records it on the account (the roster has nothing to add).
   */
  const changeAdmin = async (caller: Caller, accountId: string, admin: boolean) => {
    const actorAccountId = caller.principal?.accountId ?? null;
    const stateOf = async (id: string) => foldEvents(accountDecider, (await deps.eventStore.readStream(accountStream(id))) as RecordedEvent<AccountEvent>[]);
    const [actor, account] = await Promise.all([actorAccountId === null ? null : stateOf(actorAccountId), stateOf(accountId)]);
    const heldBy = (state: AccountState | null) => state?.status === 'open' && state.roles.has('admin');
    const streams = { actorAdmin: actor === null || heldBy(actor), accountOpen: account.status === 'open', accountAdmin: heldBy(account) };
    const decided = await handleCommand(
      deps.eventStore,
      ADMIN_ROSTER_STREAM,
      adminRosterDecider,
      { type: 'ChangeAdminRole', data: { accountId, admin, actorAccountId, streams, at: at() } },
      { metadata: { actor: actorAccountId ?? 'system', correlationId: caller.requestId, at: at() } },
    );
    // The roster's last decision on the account (-1: none, the account's stream already says: nothing to record).
    const rosterRevision = decided.state.accounts.get(accountId)?.revision ?? -1;
    return change(
      caller,
      admin ? { type: 'GrantRole', data: { accountId, role: 'admin', at: at(), rosterRevision } } : { type: 'RevokeRole', data: { accountId, role: 'admin', actorAccountId, at: at(), rosterRevision } },
    );
  };
  const signups = createSignupLimit(deps.selfSignupPerHour);

  return {
    /**
     * Open an account with a first key (admins; anyone when self-signup is on, at most SELF_SIGNUP_PER_HOUR an hour
     * from one client address). The answer holds the key's secret.
     */
    async open(caller: Caller & { readonly clientAddress: string | null }, input: NewAccount): Promise<OpenedAccount> {
      const { roles, plan } = termsForNewAccount(caller.principal, input, deps.selfSignup);
      requireKnownPlan(deps.plans, plan);
      // Only signups are counted (termsForNewAccount let a caller without a key through); an admin opens at will.
      const signup = caller.principal === null ? { client: signupClient(caller.clientAddress), at: deps.now().getTime() } : null;
      if (signup) signups.take(signup.client, signup.at);
      const accountId = newId('acc');
      let state;
      try {
        ({ state } = await writes.execute(
          accountStream(accountId),
          accountDecider,
          { type: 'OpenAccount', data: { accountId, name: input.name, email: input.email, roles, plan, at: at() } },
          caller,
          `signup:${accountId}`,
        ));
      } catch (error) {
        if (signup) signups.giveBack(signup.client, signup.at);
        throw error;
      }
      const initialKey = await deps.apiKeys.create(caller, { accountId, name: input.initialKeyName, limit: null, limitReset: 'never', expiresAt: null });
      return { account: accountView(state), initialKey };
    },
    grantRole: (caller: Caller, accountId: string, role: Role) =>
      role === 'admin' ? changeAdmin(caller, accountId, true) : change(caller, { type: 'GrantRole', data: { accountId, role, at: at() } }),
    revokeRole: (caller: Caller, accountId: string, role: Role) =>
      role === 'admin'
        ? changeAdmin(caller, accountId, false)
        : change(caller, { type: 'RevokeRole', data: { accountId, role, actorAccountId: caller.principal?.accountId ?? null, at: at() } }),
    /**
     * Input & output logging on or off (the caller owns the account or is an admin: checked at the edges). Off: the
     * content store is cut first, so that once this answers no call of the account, in flight or not, on any process,
     * stores content (cut again when it was off already: harmless, and a cut lost to a failure is made then).
     */
    async setContentLogging(caller: Caller, accountId: string, enabled: boolean) {
      if (!enabled && deps.cutContent && deps.directory.account(accountId)) await deps.cutContent(accountId);
      return change(caller, { type: 'SetContentLogging', data: { accountId, enabled, at: at() } });
    },
    /**
     * The model a chat request that names none is answered by (null clears it: such a request is refused again). It
     * must be one routing knows now; a model retired later makes those requests fail as naming it would.
     */
    setDefaultModel(caller: Caller, accountId: string, model: string | null) {
      const id = model?.trim() ?? null;
      const problem = id === null ? null : id === '' ? 'A default model is a model id (null clears it)' : deps.catalog.modelProblem(id);
      if (problem !== null) throw new ValidationError(problem, { field: 'model' });
      return change(caller, { type: 'SetDefaultModel', data: { accountId, model: id, at: at() } });
    },
    /**
     * The account's provider lists (OpenRouter's account-wide provider settings): `ignore` is merged with each request's
     * `provider.ignore`; `allow`, when not empty, admits only its providers (a request's `provider.only` narrows within
     * it). A list left undefined stays as it is; null or empty clears it.
     */
    setProviderPreferences(caller: Caller, accountId: string, lists: { ignore?: readonly string[] | null; allow?: readonly string[] | null }) {
      const list = (field: 'ignore' | 'allow') => {
        const names = lists[field];
        return names === undefined ? undefined : providerList(deps.routing, field, names ?? []);
      };
      return change(caller, { type: 'SetProviderPreferences', data: { accountId, ignore: list('ignore'), allow: list('allow'), at: at() } });
    },
    /**
     * Store the account's own key for a provider (BYOK), replacing the one it had: sealed with the credential vault,
     * bound to the origin the provider's endpoints point at now. Only providers an admin allows take one.
     */
    setByokKey(caller: Caller, accountId: string, input: { readonly provider: string; readonly apiKey: string; readonly fallbackToShared: boolean }) {
      const slug = input.provider.trim().toLowerCase();
      const provider = deps.routing.provider(slug);
      if (!provider) throw new NotFoundError('Provider', input.provider.slice(0, 64));
      const origin = originOf(provider.baseUrl);
      const { status, problem } = byokStatus(provider, { origin });
      if (status !== 'active') throw new ValidationError(`Provider ${slug} does not take keys of its own: ${problem}`, { field: 'provider' });
      // The key goes into a header as it is: printable, one line, of a sane length. Never echoed back.
      if (!/^[\x21-\x7e]{8,4096}$/.test(input.apiKey)) throw new ValidationError('apiKey must be 8 to 4096 printable characters, without spaces or line breaks', { field: 'apiKey' });
      return change(caller, {
        type: 'SetByokKey',
        data: {
          accountId,
          provider: slug,
          encrypted: deps.vault.encrypt(byokContext(accountId, slug), input.apiKey),
          hint: byokHint(input.apiKey),
          origin,
          fallbackToShared: input.fallbackToShared,
          at: at(),
        },
      });
    },
    removeByokKey: (caller: Caller, accountId: string, provider: string) =>
      change(caller, { type: 'RemoveByokKey', data: { accountId, provider: provider.trim().toLowerCase(), at: at() } }),
    /** Whether a stored key is sent now, and if not why (the provider moved its endpoints, or no longer takes keys). */
    byokStatus: (key: ByokKeyDoc) => byokStatus(deps.routing.provider(key.provider), key),
    /** The BYOK fee in percent of the list price (5 for 500 basis points). */
    byokFeePercent: deps.byokFeeBasisPoints / 100,
    /** Move an account to another plan; plans are configuration (PLANS). */
    changePlan(caller: Caller, accountId: string, plan: string) {
      requireKnownPlan(deps.plans, plan);
      return change(caller, { type: 'ChangePlan', data: { accountId, plan, at: at() } });
    },

    async byIds(ids: readonly string[]): Promise<AccountDoc[]> {
      await writes.readYourWrites();
      return queries.byIds(ids);
    },
    /** One page of every account (filter and sort from idPage), optionally only those with a role. */
    async page(page: PageArgs, options: { role?: Role; search?: string } = {}): Promise<AccountDoc[]> {
      await writes.readYourWrites();
      return queries.page(page, options);
    },
  };
};

export type AccountsApi = ReturnType<typeof createAccountsApi>;

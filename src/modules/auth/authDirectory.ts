import { boundedCache } from '../../boundedCache.js';
import { ForbiddenError, UnauthenticatedError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { followEvents } from '../../eventStore/follower.js';
import type { FollowStatus } from '../../eventStore/followStatus.js';
import type { Logger } from '../../logger.js';
import type { AccountEvent, AccountProviderPreferences, ByokKey, Role } from '../accounts/account.events.js';
import type { ApiKeyStatus } from '../apiKeys/apiKey.decider.js';
import { kindOfKey, type ApiKeyEvent, type KeyKind, type LimitReset } from '../apiKeys/apiKey.events.js';
import { APP_AUTHORIZATION_CATEGORY, type AppAuthorizationEvent } from '../apiKeys/appAuth.events.js';
import { hasValidChecksum, hashSecret, sameHash } from '../apiKeys/keyFormat.js';
import { ROOT_ACCOUNT_ID, type Principal } from './principal.js';

/** The stream categories the directory follows. */
export const AUTH_CATEGORIES: readonly string[] = ['account', 'apikey', APP_AUTHORIZATION_CATEGORY];

/** What a restricted key's principal holds of its account's roles: at most `user` (see `Principal.restricted`). */
const USER_ONLY: ReadonlySet<Role> = new Set<Role>(['user']);
const NO_ROLES: ReadonlySet<Role> = new Set<Role>();

export interface KeyEntry {
  readonly keyId: string;
  readonly accountId: string;
  readonly hash: string;
  readonly kind: KeyKind;
  /** Its non-secret label (`sk-sy-v1-…x7Qa`), as OpenRouter's `/api/v1/key` calls it. */
  readonly hint: string;
  name: string;
  status: ApiKeyStatus;
  expiresAt: number | null;
  limit: number | null;
  limitReset: LimitReset;
  /** BYOK calls' list price counts against the limit too. */
  includeByokInLimit: boolean;
  /** Issued to an app ("Sign in with Switchyard"): a restricted key, whatever its limit. */
  readonly app: boolean;
}

export interface AccountEntry {
  readonly accountId: string;
  roles: Set<Role>;
  plan: string;
  /** Input & output logging is on: the gateway stores the account's generations' content. */
  contentLogging: boolean;
  /** The model the gateway answers a chat request that names none with (null: such a request is refused). */
  defaultModel: string | null;
  /** The provider lists the gateway routes the account's requests within (null: none, the request alone decides). */
  providerPreferences: AccountProviderPreferences | null;
  /** Its own provider keys (BYOK, sealed), by provider slug: routing tries them first. */
  byokKeys: Map<string, ByokKey>;
}

export interface AuthDirectory {
  /** Catch up with every account and key event, then follow live ones. */
  start(): Promise<void>;
  /**
   * Resolve the bearer secret to a principal, or throw UnauthenticatedError. Never touches a store. A management key
   * is refused (403): it may call only what `authenticateManagement` guards.
   */
  authenticate(secret: string | null | undefined, now?: number): Principal;
  /** The same for `/api/v1/keys` and `/api/v1/activity`: only a management key passes; any other key is a 403. */
  authenticateManagement(secret: string | null | undefined, now?: number): Principal;
  /** The same for `/api/v1/credits`, which OpenRouter answers to a management key: a key of either kind passes. */
  authenticateEitherKind(secret: string | null | undefined, now?: number): Principal;
  account(accountId: string): AccountEntry | undefined;
  key(keyId: string): KeyEntry | undefined;
  /** Why the key would be refused now (revoked, disabled, expired, unknown), or null when it may call. */
  keyRefusal(keyId: string, now?: number): UnauthenticatedError | null;
  /**
   * Call `onRefused` once, as soon as the key behind `principal` is refused (revoked, disabled, expired) or its account
   * loses a role, so that a long-lived operation (a subscription) ends then instead of keeping the rights it started
   * with. Returns the unwatch.
   */
  watch(principal: Principal, onRefused: (error: UnauthenticatedError) => void): () => void;
  /** Whether the account has an inference key (one that can call GraphQL) that is neither revoked nor expired. */
  hasLiveKey(accountId: string, now?: number): boolean;
  /** How many of the account's keys (of either kind) are not revoked. */
  unrevokedKeyCount(accountId: string): number;
  /**
   * Why an app's sign-in code may no longer be exchanged for a key because of what granted it: the key that gave the
   * consent is refused (revoked, disabled, expired) or now has a spending limit (it could not consent now), or the
   * account lost `user`. Null when the grant still holds. (The code's own checks, verifier, expiry and use, are its
   * stream's.)
   */
  appGrantRefusal(grant: { readonly accountId: string; readonly grantingKeyId?: string | null }, now: number): string | null;
  /** The account's sign-in codes that could still be exchanged (not exchanged, unexpired, grant holding), and the first expiry among them. */
  pendingAppCodes(accountId: string, now: number): { count: number; firstExpiresAt: number | null };
  /** Resolve once the directory has applied the event at `position` (so a revoked key is refused right after the mutation). */
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  /** How its subscription to the event log is doing (for /health). */
  status(): FollowStatus;
  stop(): Promise<void>;
}

/**
 * The write-side view of who may call: accounts with their roles and keys by hash, kept in memory and fed by the
 * event store (not the read models, which may lag). Every process keeps its own, so a change made on one process
 * reaches the others as fast as their subscription delivers it.
 */
export const createAuthDirectory = (deps: { eventStore: EventStore; logger: Logger; adminApiKey?: string }): AuthDirectory => {
  const accounts = new Map<string, AccountEntry>();
  const keysById = new Map<string, KeyEntry>();
  const keysByHash = new Map<string, KeyEntry>();
  const adminHash = deps.adminApiKey ? hashSecret(deps.adminApiKey) : null;
  /** keyId → the checks of the operations watching that key, run whenever the key changes. */
  const watchers = new Map<string, Set<(forced?: UnauthenticatedError) => void>>();
  /** Keys an app's code was exchanged for, until their ApiKeyCreated (the exchange is recorded first). */
  const appKeysToCome = new Set<string>();
  /**
   * accountId → its sign-in codes not yet exchanged (code hash → what granted it, expiry). An account's expired codes
   * are dropped when it grants another or is counted, so each holds about MAX_PENDING_APP_CODES at most.
   */
  const appCodes = new Map<string, Map<string, { readonly grantingKeyId: string | null | undefined; readonly expiresAt: number }>>();
  const accountOfAppCode = new Map<string, string>();
  const forgetAppCode = (codeHash: string) => {
    const accountId = accountOfAppCode.get(codeHash);
    if (accountId === undefined) return;
    accountOfAppCode.delete(codeHash);
    const codes = appCodes.get(accountId);
    codes?.delete(codeHash);
    if (codes?.size === 0) appCodes.delete(accountId);
  };
  const forgetExpiredAppCodes = (accountId: string, now: number) => {
    for (const [codeHash, code] of appCodes.get(accountId) ?? []) if (code.expiresAt <= now) forgetAppCode(codeHash);
  };

  const apply = (recorded: RecordedEvent) => {
    const event = recorded as RecordedEvent<AccountEvent | ApiKeyEvent | AppAuthorizationEvent>;
    switch (event.type) {
      case 'AppAuthorizationGranted': {
        const { codeHash, accountId, grantingKeyId, expiresAt, at } = event.data;
        forgetExpiredAppCodes(accountId, Date.parse(at));
        appCodes.set(accountId, (appCodes.get(accountId) ?? new Map()).set(codeHash, { grantingKeyId, expiresAt: Date.parse(expiresAt) }));
        accountOfAppCode.set(codeHash, accountId);
        return;
      }
      case 'AppAuthorizationExchanged':
        appKeysToCome.add(event.data.keyId);
        forgetAppCode(event.data.codeHash);
        return;
      case 'AccountOpened':
        accounts.set(event.data.accountId, { accountId: event.data.accountId, roles: new Set(event.data.roles), plan: event.data.plan, contentLogging: false, defaultModel: null, providerPreferences: null, byokKeys: new Map() });
        break;
      case 'RoleGranted':
        accounts.get(event.data.accountId)?.roles.add(event.data.role);
        break;
      case 'RoleRevoked':
        accounts.get(event.data.accountId)?.roles.delete(event.data.role);
        break;
      case 'PlanChanged': {
        const account = accounts.get(event.data.accountId);
        if (account) account.plan = event.data.plan;
        break;
      }
      case 'ContentLoggingChanged': {
        const account = accounts.get(event.data.accountId);
        if (account) account.contentLogging = event.data.enabled;
        break;
      }
      case 'DefaultModelChanged': {
        const account = accounts.get(event.data.accountId);
        if (account) account.defaultModel = event.data.model;
        break;
      }
      case 'ProviderPreferencesChanged': {
        const account = accounts.get(event.data.accountId);
        if (account) account.providerPreferences = event.data.preferences;
        break;
      }
      case 'ByokKeySet': {
        const { accountId, ...key } = event.data;
        accounts.get(accountId)?.byokKeys.set(key.provider, key);
        break;
      }
      case 'ByokKeyRemoved':
        accounts.get(event.data.accountId)?.byokKeys.delete(event.data.provider);
        break;
      case 'ApiKeyCreated': {
        const { keyId, accountId, hash, hint, name, limit, limitReset, includeByokInLimit = false, expiresAt } = event.data;
        const entry: KeyEntry = { keyId, accountId, hash, kind: kindOfKey(event.data), hint, name, status: 'active', expiresAt: expiresAt ? Date.parse(expiresAt) : null, limit, limitReset, includeByokInLimit, app: appKeysToCome.delete(keyId) };
        keysById.set(keyId, entry);
        keysByHash.set(hash, entry);
        break;
      }
      case 'ApiKeyLimitChanged': {
        const key = keysById.get(event.data.keyId);
        if (key) {
          key.limit = event.data.limit;
          key.limitReset = event.data.limitReset;
        }
        break;
      }
      case 'ApiKeyByokInLimitChanged': {
        const key = keysById.get(event.data.keyId);
        if (key) key.includeByokInLimit = event.data.includeByokInLimit;
        break;
      }
      case 'ApiKeyExpiryChanged': {
        const key = keysById.get(event.data.keyId);
        if (key) key.expiresAt = event.data.expiresAt ? Date.parse(event.data.expiresAt) : null;
        break;
      }
      case 'ApiKeyDisabled':
      case 'ApiKeyEnabled':
      case 'ApiKeyRevoked': {
        const key = keysById.get(event.data.keyId);
        if (key) key.status = event.type === 'ApiKeyDisabled' ? 'disabled' : event.type === 'ApiKeyEnabled' ? 'active' : 'revoked';
        break;
      }
      case 'ApiKeyRenamed': {
        const key = keysById.get(event.data.keyId);
        if (key) key.name = event.data.name;
        break;
      }
      default: {
        const _never: never = event;
      }
    }
    if ('keyId' in event.data) for (const check of watchers.get(event.data.keyId) ?? []) check();
    // Fewer roles: a live operation was authorized with the old ones, so every operation of the account ends and
    // is authorized again when the client starts it anew.
    if (event.type === 'RoleRevoked') {
      const narrowed = new UnauthenticatedError(`The account lost the role ${event.data.role}: authorize this operation again`);
      for (const [keyId, checks] of watchers) {
        if (keysById.get(keyId)?.accountId === event.data.accountId) for (const check of checks) check(narrowed);
      }
    }
  };

  /** Why a stored key is refused now, or null when it may call. */
  const refusalOf = (key: KeyEntry, now: number): UnauthenticatedError | null => {
    if (key.status === 'revoked') return new UnauthenticatedError('API key has been revoked');
    if (key.status === 'disabled') return new UnauthenticatedError('API key is disabled');
    if (key.expiresAt !== null && key.expiresAt <= now) return new UnauthenticatedError('API key has expired');
    if (!accounts.has(key.accountId)) return new UnauthenticatedError('Invalid API key');
    return null;
  };

  /** The principal behind a secret and the kind of its key (the bootstrap admin key is an inference key). */
  const resolve = (secret: string | null | undefined, now: number): { principal: Principal; kind: KeyKind } => {
    if (!secret) throw new UnauthenticatedError('Missing API key: send Authorization: Bearer <key>');
    const digest = digestOf(secret);
    if (adminHash && sameHash(digest.hash, adminHash)) {
      return { principal: { accountId: ROOT_ACCOUNT_ID, keyId: null, roles: new Set<Role>(['admin']) }, kind: 'inference' };
    }
    if (!digest.wellFormed) throw new UnauthenticatedError('Invalid API key');
    const key = keysByHash.get(digest.hash);
    if (!key) throw new UnauthenticatedError('Invalid API key');
    const refused = refusalOf(key, now);
    const account = accounts.get(key.accountId);
    if (refused || !account) throw refused ?? new UnauthenticatedError('Invalid API key');
    const restricted = key.limit !== null || key.app;
    const roles = restricted ? (account.roles.has('user') ? USER_ONLY : NO_ROLES) : account.roles;
    return { principal: { accountId: account.accountId, keyId: key.keyId, roles, restricted }, kind: key.kind };
  };

  const appGrantRefusal: AuthDirectory['appGrantRefusal'] = ({ accountId, grantingKeyId }, now) => {
    const account = accounts.get(accountId);
    if (!account) return 'The account that authorized this app no longer exists';
    if (!account.roles.has('user') && !account.roles.has('admin')) return 'The account that authorized this app no longer has the role user, which calling models needs';
    // Null: the environment's admin key, which cannot be revoked; undefined: a grant recorded before keys were named.
    if (grantingKeyId == null) return null;
    const key = keysById.get(grantingKeyId);
    const why = !key ? 'Invalid API key' : (refusalOf(key, now)?.message ?? (key.limit !== null || key.app ? 'it now has a spending limit' : null));
    return why === null ? null : `The key that authorized this app can no longer do so (${why}): ask the user to authorize the app again`;
  };

  const follower = followEvents(deps.eventStore, { categories: AUTH_CATEGORIES }, apply, { name: 'auth directory', logger: deps.logger });

  /**
   * Secrets seen recently → their SHA-256 and whether their checksum holds. Hashing twice and checking the checksum
   * cost ~25 µs of every request; a key's status is still looked up on every call, so revocation is unaffected.
   */
  const digestOf = boundedCache(10_000, (secret: string) => ({ hash: hashSecret(secret), wellFormed: hasValidChecksum(secret) }));

  return {
    start: () => follower.start(),

    authenticate(secret, now = Date.now()) {
      const { principal, kind } = resolve(secret, now);
      if (kind === 'management') {
        // Short: a WebSocket close reason (which carries it) holds at most 123 bytes.
        throw new ForbiddenError('This is a management key: it can only call /api/v1/keys, /activity and /credits');
      }
      return principal;
    },

    authenticateManagement(secret, now = Date.now()) {
      const { principal, kind } = resolve(secret, now);
      if (kind !== 'management') {
        throw new ForbiddenError('This endpoint needs a management key; create one with the GraphQL mutation createApiKey(kind: MANAGEMENT)');
      }
      return principal;
    },

    authenticateEitherKind: (secret, now = Date.now()) => resolve(secret, now).principal,

    watch(principal, onRefused) {
      const { keyId } = principal;
      // The ADMIN_API_KEY of the environment cannot be revoked while the process runs.
      if (keyId === null) return () => undefined;
      let timer: NodeJS.Timeout | undefined;
      const unwatch = () => {
        clearTimeout(timer);
        const checks = watchers.get(keyId);
        checks?.delete(check);
        if (checks?.size === 0) watchers.delete(keyId);
      };
      // Run on every event of the key, and at its expiry (no event marks that moment).
      const check = (forced?: UnauthenticatedError) => {
        const key = keysById.get(keyId);
        const refused = forced ?? (key ? refusalOf(key, Date.now()) : new UnauthenticatedError('Invalid API key'));
        if (refused) {
          unwatch();
          onRefused(refused);
          return;
        }
        clearTimeout(timer);
        if (key?.expiresAt != null) {
          // setTimeout holds at most 2^31-1 ms (about 24 days); a later expiry re-arms on the way.
          timer = setTimeout(check, Math.min(Math.max(key.expiresAt - Date.now(), 0), 2 ** 31 - 1));
          timer.unref();
        }
      };
      watchers.set(keyId, (watchers.get(keyId) ?? new Set()).add(check));
      check();
      return unwatch;
    },

    account: (accountId) => accounts.get(accountId),
    key: (keyId) => keysById.get(keyId),
    keyRefusal: (keyId, now = Date.now()) => {
      const key = keysById.get(keyId);
      return key ? refusalOf(key, now) : new UnauthenticatedError('Invalid API key');
    },
    hasLiveKey: (accountId, now = Date.now()) =>
      [...keysById.values()].some((k) => k.accountId === accountId && k.kind === 'inference' && k.status !== 'revoked' && (k.expiresAt === null || k.expiresAt > now)),

    unrevokedKeyCount: (accountId) => {
      let count = 0;
      for (const k of keysById.values()) if (k.accountId === accountId && k.status !== 'revoked') count += 1;
      return count;
    },

    appGrantRefusal,
    pendingAppCodes: (accountId, now) => {
      forgetExpiredAppCodes(accountId, now);
      let count = 0;
      let firstExpiresAt: number | null = null;
      for (const code of appCodes.get(accountId)?.values() ?? []) {
        if (appGrantRefusal({ accountId, grantingKeyId: code.grantingKeyId }, now) !== null) continue;
        count += 1;
        if (firstExpiresAt === null || code.expiresAt < firstExpiresAt) firstExpiresAt = code.expiresAt;
      }
      return { count, firstExpiresAt };
    },

    waitFor: (target, timeoutMs) => follower.waitFor(target, timeoutMs),
    status: () => follower.status(),

    stop: () => follower.stop(),
  };
};

import { checkUrlInput } from '../../urlInput.js';
import { createHash, randomBytes } from 'node:crypto';
import { apiKeyQueries, type ApiKeyDoc } from '../../../projections/apiKeys.js';
import type { ProjectionRunner } from '../../../projections/runner.js';
import type { SwitchyardPubSub } from '../../core.js';
import { ConflictError, ForbiddenError, NotFoundError, RateLimitedError, ValidationError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { foldEvents, handleCommand } from '../../eventStore/handleCommand.js';
import { newId } from '../../ids.js';
import type { Logger } from '../../logger.js';
import type { ReadStore } from '../../readStore/readStore.js';
import { activityRows, type ActivityRow } from '../../../projections/usageDaily.js';
import type { AuthDirectory, KeyEntry } from '../auth/authDirectory.js';
import { createAuthWrites } from '../auth/authWrites.js';
import type { Caller, Principal } from '../auth/principal.js';
import { apiKeyDecider, type ApiKeyCommand, type ApiKeyState } from './apiKey.decider.js';
import { apiKeyStream, type KeyKind, type LimitReset } from './apiKey.events.js';
import { appAuthorizationDecider, INVALID_CODE, type AppAuthorizationCommand } from './appAuth.decider.js';
import { appAuthorizationStream, type AppAuthorizationEvent, type CodeChallengeMethod } from './appAuth.events.js';
import { generateApiKey } from './keyFormat.js';
import { createRateWindow } from '../../rateWindow.js';

/** The most keys (of either kind) an account holds that are not revoked. */
export const MAX_UNREVOKED_KEYS = 1_000;
/** The most keys an account is issued in any minute (GraphQL, the keys API and app sign-ins together; per process). */
export const KEYS_PER_MINUTE = 50;
const MINUTE_MS = 60_000;

export interface NewApiKey {
  readonly accountId: string;
  readonly name: string;
  /** Nano-dollars per window, or null for none. */
  readonly limit: number | null;
  readonly limitReset: LimitReset;
  readonly expiresAt: string | null;
  /** Inference unless said otherwise. */
  readonly kind?: KeyKind;
  /** BYOK calls' list price counts against the limit too (false unless said). */
  readonly includeByokInLimit?: boolean;
}

export interface CreatedApiKey {
  readonly key: ApiKeyDoc;
  /** The key itself: it exists only here, never in an event or a read model. */
  readonly secret: string;
}

/** A key as its read model shows it, built from the decided state (a command answers without reading the read model). */
export const apiKeyView = (state: ApiKeyState): ApiKeyDoc => {
  if (state.status === 'none') throw new Error('a key command decided on a key that does not exist');
  const { keyId, accountId, kind, name, hint, limit, limitReset, includeByokInLimit, expiresAt, status, createdAt, updatedAt } = state;
  return { _id: keyId, accountId, kind, name, hint, limit, limitReset, includeByokInLimit, expiresAt, status, createdAt, updatedAt };
};

/** How long the console's code waits for the app's exchange. */
export const APP_CODE_TTL_MS = 10 * 60_000;
/**
 * The most sign-in codes an account has waiting to be exchanged (unexpired, their grant still holding). A person
 * consents to a few apps at a time; without a bound, a key held for a moment could stock codes to turn into keys later,
 * and write grants to the log without end.
 */
export const MAX_PENDING_APP_CODES = 20;
/** RFC 7636's code verifier: 43-128 unreserved characters (a plain challenge is a verifier). */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** An S256 challenge: BASE64URL of 32 bytes, unpadded. Our codes have the same shape. */
const BASE64URL_32 = /^[A-Za-z0-9_-]{43}$/;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The app's callback URL: https (http only on a loopback host, for apps on the user's machine). */
const checkCallbackUrl = (raw: string): URL =>
  checkUrlInput(raw, {
    refuse: (why) => new ValidationError(`callbackUrl ${why}`, { param: 'callbackUrl' }),
    notAUrl: 'must be an absolute URL such as https://app.example/callback',
    scheme: (url) => (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) ? null : 'must use https (http only on localhost, 127.0.0.1 or [::1])'),
    credentials: 'must not carry a user name or password',
  });

const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

export interface AppAuthorizationRequest {
  readonly callbackUrl: string;
  readonly codeChallenge: string;
  readonly codeChallengeMethod: CodeChallengeMethod;
  /** Null: "App at <host>". */
  readonly keyName: string | null;
  readonly limit: number | null;
}

type PageArgs = Parameters<ReturnType<typeof apiKeyQueries>['pageForAccount']>[1];

/** The API keys module: issue and manage keys (commands answer from the decision), and read them. */
export const createApiKeysApi = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  directory: AuthDirectory;
  runner: ProjectionRunner;
  pubsub: SwitchyardPubSub;
  logger: Logger;
  now: () => Date;
}) => {
  const writes = createAuthWrites(deps);
  const queries = apiKeyQueries(deps.readStore);
  // Slots are taken before a key is written and given back if it is not (rateWindow.ts).
  const issues = createRateWindow(KEYS_PER_MINUTE, MINUTE_MS);
  /** Per account, the grants of this process being written (not yet in the directory's count). */
  const grantsInFlight = new Map<string, number>();

  const change = async (caller: Caller, command: ApiKeyCommand) => {
    const { state } = await writes.execute(apiKeyStream(command.data.keyId), apiKeyDecider, command, caller);
    return apiKeyView(state);
  };
  const at = () => deps.now().toISOString();

  /**
   * An exchange's command. Not through `writes`: nothing waits for the auth directory here (it reads only the exchange,
   * to know the key it names is an app's, and that key's creation comes after it through `writeKey`). A grant goes
   * through `writes`, so the directory counts it before the next consent is decided.
   */
  const appAuthorization = (codeHash: string, command: AppAuthorizationCommand, caller: Caller, actor: string) =>
    handleCommand(deps.eventStore, appAuthorizationStream(codeHash), appAuthorizationDecider, command, {
      metadata: { actor: caller.principal?.accountId ?? actor, correlationId: caller.requestId, at: deps.now().toISOString() },
    });

  /**
   * Every check of a new key, then its slot in the account's minute, taken before the key is written: the caller gives
   * it back (`issues.giveBack(accountId, now)`) if the key is not written.
   */
  const admit = (input: NewApiKey, now: Date): void => {
    if (input.expiresAt !== null && Date.parse(input.expiresAt) <= now.getTime()) throw new ValidationError('expiresAt must be in the future');
    const kind = input.kind ?? 'inference';
    // A management key never calls a model, so a spending limit on it would mean nothing.
    if (kind === 'management' && input.limit !== null) throw new ValidationError('A management key cannot spend: create it without a limit');
    if (!deps.directory.account(input.accountId)) throw new NotFoundError('Account', input.accountId);
    // Keys are records every process keeps in memory: an account cannot mint them without end (revoke some first).
    if (deps.directory.unrevokedKeyCount(input.accountId) >= MAX_UNREVOKED_KEYS) {
      throw new ConflictError(`An account holds at most ${MAX_UNREVOKED_KEYS} keys that are not revoked: revoke keys it no longer uses first`, { limit: MAX_UNREVOKED_KEYS });
    }
    const slot = issues.take(input.accountId, now.getTime());
    if (!slot.taken) {
      throw new RateLimitedError(`An account is issued at most ${KEYS_PER_MINUTE} keys a minute: try again in ${Math.ceil(slot.retryAfterMs / 1000)} s`, slot.retryAfterMs, { limit: KEYS_PER_MINUTE });
    }
  };

  /** Write a key `admit` let in. */
  const writeKey = async (caller: Caller, input: NewApiKey, keyId: string, now: Date): Promise<CreatedApiKey> => {
    const { secret, hash, hint } = generateApiKey();
    const { state } = await writes.execute(
      apiKeyStream(keyId),
      apiKeyDecider,
      { type: 'CreateApiKey', data: { keyId, hash, hint, ...input, kind: input.kind ?? 'inference', includeByokInLimit: input.includeByokInLimit ?? false, at: now.toISOString() } },
      caller,
      input.accountId,
    );
    return { key: apiKeyView(state), secret };
  };

  const issue = async (caller: Caller, input: NewApiKey, keyId: string): Promise<CreatedApiKey> => {
    const now = deps.now();
    admit(input, now);
    try {
      return await writeKey(caller, input, keyId, now);
    } catch (error) {
      issues.giveBack(input.accountId, now.getTime());
      throw error;
    }
  };

  return {
    /** Create a key for an existing account; the answer holds its secret, shown this once. */
    create: (caller: Caller, input: NewApiKey): Promise<CreatedApiKey> => issue(caller, input, newId('key')),
    /**
     * The console's consent to an app (OpenRouter's OAuth PKCE): a one-time code bound to the app's callback URL and
     * PKCE challenge, valid APP_CODE_TTL_MS. The answer is the callback URL with `code` added, where the console goes.
     * The code names the consenting key, and is worth a key only while that key could consent (see exchangeAppCode);
     * an account has at most MAX_PENDING_APP_CODES waiting.
     */
    async authorizeApp(caller: Caller & { principal: Principal }, input: AppAuthorizationRequest): Promise<{ redirectUrl: string; expiresAt: string }> {
      const callback = checkCallbackUrl(input.callbackUrl);
      const challengeOk = input.codeChallengeMethod === 'S256' ? BASE64URL_32.test(input.codeChallenge) : VERIFIER.test(input.codeChallenge);
      if (!challengeOk) {
        const shape = input.codeChallengeMethod === 'S256' ? 'BASE64URL(SHA-256(code_verifier)), 43 characters' : 'the code verifier itself, 43-128 characters of A-Z a-z 0-9 - . _ ~';
        throw new ValidationError(`codeChallenge must be ${shape}`, { param: 'codeChallenge' });
      }
      if (input.limit !== null && (!Number.isSafeInteger(input.limit) || input.limit <= 0)) throw new ValidationError('limit must be a positive number of nano-dollars', { param: 'limit' });
      const keyName = input.keyName?.trim() || `App at ${callback.host}`.slice(0, 100);
      if (keyName.length > 100) throw new ValidationError('keyName must be at most 100 characters', { param: 'keyName' });
      const { accountId, keyId: grantingKeyId } = caller.principal;
      const now = deps.now();
      // The directory counts the codes written (a grant returns once it has applied it); this process's grants being
      // written count too, so concurrent consents cannot all pass.
      const pending = deps.directory.pendingAppCodes(accountId, now.getTime());
      const inFlight = grantsInFlight.get(accountId) ?? 0;
      if (pending.count + inFlight >= MAX_PENDING_APP_CODES) {
        const retryAfterMs = Math.max((pending.firstExpiresAt ?? now.getTime() + APP_CODE_TTL_MS) - now.getTime(), 1_000);
        throw new RateLimitedError(
          `An account has at most ${MAX_PENDING_APP_CODES} app sign-in codes waiting to be exchanged: try again in ${Math.ceil(retryAfterMs / 1000)} s, when the oldest expires (an exchanged code, or one whose key was revoked, frees its place at once)`,
          retryAfterMs,
          { limit: MAX_PENDING_APP_CODES },
        );
      }
      const code = randomBytes(32).toString('base64url');
      const codeHash = sha256Hex(code);
      const expiresAt = new Date(now.getTime() + APP_CODE_TTL_MS).toISOString();
      grantsInFlight.set(accountId, inFlight + 1);
      try {
        await writes.execute(
          appAuthorizationStream(codeHash),
          appAuthorizationDecider,
          {
            type: 'GrantAppAuthorization',
            data: { codeHash, accountId, grantingKeyId, callbackUrl: callback.href, codeChallenge: input.codeChallenge, codeChallengeMethod: input.codeChallengeMethod, keyName, limit: input.limit, expiresAt, at: now.toISOString() },
          },
          caller,
        );
      } finally {
        const left = (grantsInFlight.get(accountId) ?? 1) - 1;
        if (left > 0) grantsInFlight.set(accountId, left);
        else grantsInFlight.delete(accountId);
      }
      const redirect = new URL(callback.href);
      redirect.searchParams.set('code', code);
      return { redirectUrl: redirect.href, expiresAt };
    },

    /**
     * `POST /api/v1/auth/keys`: an app's code and PKCE verifier for a new key on the account that granted the code.
     * Every check comes before the exchange is recorded, so a refused exchange (the key that consented is refused or
     * limited, the account lost `user`, the account's key cap or minute is full) leaves the code usable until it
     * expires. The exchange is recorded before the key is created, so a code yields one key even when sent twice at
     * once.
     */
    async exchangeAppCode(requestId: string, input: { code: string; verifier: string; method: CodeChallengeMethod | null }): Promise<{ secret: string; accountId: string; keyId: string }> {
      if (!VERIFIER.test(input.verifier)) throw new ValidationError('code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)', { param: 'code_verifier' });
      if (!BASE64URL_32.test(input.code)) throw new ForbiddenError(INVALID_CODE);
      const codeHash = sha256Hex(input.code);
      const keyId = newId('key');
      const caller: Caller = { principal: null, requestId };
      const now = deps.now();
      const command: AppAuthorizationCommand = { type: 'ExchangeAppAuthorization', data: { codeHash, verifier: input.verifier, method: input.method, keyId, at: now.toISOString() } };
      // The code and its verifier first (the one 403 that tells nothing), on the code as it stands.
      const current = foldEvents(appAuthorizationDecider, (await deps.eventStore.readStream(appAuthorizationStream(codeHash))) as RecordedEvent<AppAuthorizationEvent>[]);
      appAuthorizationDecider.decide(command, current);
      if (current.status !== 'granted') throw new Error('an authorization code the decider let through is not in the granted state');
      const { grant } = current;
      const refused = deps.directory.appGrantRefusal(grant, now.getTime());
      if (refused !== null) throw new ForbiddenError(refused);
      const newKey: NewApiKey = { accountId: grant.accountId, name: grant.keyName, limit: grant.limit, limitReset: 'never', expiresAt: null };
      admit(newKey, now);
      try {
        // Decided again on the code as it is then: of concurrent exchanges one is recorded, the others get the 403.
        await appAuthorization(codeHash, command, caller, 'app');
        const created = await writeKey(caller, newKey, keyId, now);
        return { secret: created.secret, accountId: grant.accountId, keyId };
      } catch (error) {
        issues.giveBack(grant.accountId, now.getTime());
        throw error;
      }
    },

    rename: (caller: Caller, keyId: string, name: string) => change(caller, { type: 'RenameApiKey', data: { keyId, name, at: at() } }),
    /** Set or clear (null) the spending limit and its reset window. */
    setLimit: (caller: Caller, keyId: string, limit: number | null, limitReset: LimitReset) => {
      // A limited key is restricted (Principal.restricted): limiting the key one calls with would lock its holder out
      // of the account's keys, perhaps for good when it is the account's only key without a limit.
      if (limit !== null && caller.principal?.keyId === keyId) {
        throw new ValidationError("A key cannot put a limit on itself: a key with a limit cannot manage the account's keys. Set it from another key of the account without a limit", { param: 'id' });
      }
      // As at its creation: it never calls a model, and a limit would only make it restricted, a manager of no keys.
      if (limit !== null && deps.directory.key(keyId)?.kind === 'management') {
        throw new ValidationError('A management key cannot spend: it takes no limit', { param: 'id' });
      }
      return change(caller, { type: 'SetApiKeyLimit', data: { keyId, limit, limitReset, at: at() } });
    },
    /** Whether BYOK calls' list price counts against the key's limit as well as their fee (OpenRouter's include_byok_in_limit). */
    setByokInLimit: (caller: Caller, keyId: string, includeByokInLimit: boolean) =>
      change(caller, { type: 'SetApiKeyByokInLimit', data: { keyId, includeByokInLimit, at: at() } }),
    /** Set a new expiry (in the future) or clear it (null: the key never expires). */
    setExpiry: (caller: Caller, keyId: string, expiresAt: string | null) => {
      const now = deps.now();
      if (expiresAt !== null && Date.parse(expiresAt) <= now.getTime()) throw new ValidationError('expiresAt must be in the future');
      return change(caller, { type: 'SetApiKeyExpiry', data: { keyId, expiresAt, at: now.toISOString() } });
    },
    disable: (caller: Caller, keyId: string) => change(caller, { type: 'DisableApiKey', data: { keyId, at: at() } }),
    enable: (caller: Caller, keyId: string) => change(caller, { type: 'EnableApiKey', data: { keyId, at: at() } }),
    revoke: (caller: Caller, keyId: string) => change(caller, { type: 'RevokeApiKey', data: { keyId, at: at() } }),

    /** Policy: the account a key belongs to, from the write side (so a key is manageable the moment it exists). */
    ownerOf: (keyId: string): string | null => deps.directory.key(keyId)?.accountId ?? null,

    async byIds(ids: readonly string[]): Promise<ApiKeyDoc[]> {
      await writes.readYourWrites();
      return queries.byIds(ids);
    },
    /** One page of an account's keys (filter and sort from idPage); revoked keys only when asked for. */
    async pageForAccount(accountId: string, page: PageArgs, includeRevoked: boolean): Promise<ApiKeyDoc[]> {
      await writes.readYourWrites();
      return queries.pageForAccount(accountId, page, includeRevoked);
    },
    /**
     * What a management key may manage: an inference key of its own account that is not deleted (revoked). Anything
     * else is "not found", so a key of another account cannot even be told to exist. Decided from the write side.
     */
    managedKey(principal: Principal, keyId: string): KeyEntry {
      const key = deps.directory.key(keyId);
      if (!key || key.accountId !== principal.accountId || key.kind !== 'inference' || key.status === 'revoked') throw new NotFoundError('API key', keyId);
      return key;
    },
    /** A key of the caller's account, of any kind or status (activity of a deleted key is still history), else 404. */
    keyOfAccount(principal: Principal, keyId: string): KeyEntry {
      const key = deps.directory.key(keyId);
      if (!key || key.accountId !== principal.accountId) throw new NotFoundError('API key', keyId);
      return key;
    },
    /** OpenRouter's key list: the account's inference keys, newest first. */
    async inferenceKeysPage(accountId: string, page: { offset: number; limit: number; includeDisabled: boolean }): Promise<ApiKeyDoc[]> {
      await writes.readYourWrites();
      return queries.inferenceKeysPage(accountId, page);
    },
    /** Usage per day × model × provider from the usageDaily read model (never by scanning generations). */
    activity: (accountId: string, query: { from: string; to: string; keyId: string | null }): Promise<ActivityRow[]> => activityRows(deps.readStore, accountId, query),
    /** Every change to the account's keys, after the read model stored it. */
    changes: (accountId: string) => deps.pubsub.subscribe('apiKeyChanged', accountId),
  };
};

export type ApiKeysApi = ReturnType<typeof createApiKeysApi>;

import { apiKeyQueries, type ApiKeyDoc } from '../../../projections/apiKeys.js';
import type { ProjectionRunner } from '../../../projections/runner.js';
import type { SwitchyardPubSub } from '../../core.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { newId } from '../../ids.js';
import type { Logger } from '../../logger.js';
import type { ReadStore } from '../../readStore/readStore.js';
import { activityRows, type ActivityRow } from '../../../projections/usageDaily.js';
import type { AuthDirectory, KeyEntry } from '../auth/authDirectory.js';
import { createAuthWrites } from '../auth/authWrites.js';
import type { Caller, Principal } from '../auth/principal.js';
import { apiKeyDecider, type ApiKeyCommand, type ApiKeyState } from './apiKey.decider.js';
import { apiKeyStream, type KeyKind, type LimitReset } from './apiKey.events.js';
import { generateApiKey } from './keyFormat.js';

export interface NewApiKey {
  readonly accountId: string;
  readonly name: string;
  /** Nano-dollars per window, or null for none. */
  readonly limit: number | null;
  readonly limitReset: LimitReset;
  readonly expiresAt: string | null;
  /** Inference unless said otherwise. */
  readonly kind?: KeyKind;
}

export interface CreatedApiKey {
  readonly key: ApiKeyDoc;
  /** The key itself: it exists only here, never in an event or a read model. */
  readonly secret: string;
}

/** A key as its read model shows it, built from the decided state (a command answers without reading the read model). */
export const apiKeyView = (state: ApiKeyState): ApiKeyDoc => {
  if (state.status === 'none') throw new Error('a key command decided on a key that does not exist');
  const { keyId, accountId, kind, name, hint, limit, limitReset, expiresAt, status, createdAt, updatedAt } = state;
  return { _id: keyId, accountId, kind, name, hint, limit, limitReset, expiresAt, status, createdAt, updatedAt };
};

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

  const change = async (caller: Caller, command: ApiKeyCommand) => {
    const { state } = await writes.execute(apiKeyStream(command.data.keyId), apiKeyDecider, command, caller);
    return apiKeyView(state);
  };
  const at = () => deps.now().toISOString();

  return {
    /** Create a key for an existing account; the answer holds its secret, shown this once. */
    async create(caller: Caller, input: NewApiKey): Promise<CreatedApiKey> {
      const now = deps.now();
      if (input.expiresAt !== null && Date.parse(input.expiresAt) <= now.getTime()) throw new ValidationError('expiresAt must be in the future');
      const kind = input.kind ?? 'inference';
      // A management key never calls a model, so a spending limit on it would mean nothing.
      if (kind === 'management' && input.limit !== null) throw new ValidationError('A management key cannot spend: create it without a limit');
      if (!deps.directory.account(input.accountId)) throw new NotFoundError('Account', input.accountId);
      const keyId = newId('key');
      const { secret, hash, hint } = generateApiKey();
      const { state } = await writes.execute(
        apiKeyStream(keyId),
        apiKeyDecider,
        { type: 'CreateApiKey', data: { keyId, hash, hint, ...input, kind, at: now.toISOString() } },
        caller,
        input.accountId,
      );
      return { key: apiKeyView(state), secret };
    },
    rename: (caller: Caller, keyId: string, name: string) => change(caller, { type: 'RenameApiKey', data: { keyId, name, at: at() } }),
    /** Set or clear (null) the spending limit and its reset window. */
    setLimit: (caller: Caller, keyId: string, limit: number | null, limitReset: LimitReset) =>
      change(caller, { type: 'SetApiKeyLimit', data: { keyId, limit, limitReset, at: at() } }),
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

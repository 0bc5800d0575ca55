/**
 * Named secrets of an account for workflow steps (`action.githubComment`'s `token`), in the `wfsecrets-{accountId}`
 * stream. A value is sealed by the credential vault (AES-256-GCM under SWITCHYARD_MASTER_KEY, as provider keys are)
 * under a context naming the account and the secret, so a sealed value copied elsewhere does not open. Values never
 * leave the server: the API lists names, and only a step of the account's own run opens one.
 *
 * No read model: an account has a handful of secrets, so its stream is folded on each read.
 */
import { ForbiddenError, NotFoundError, UnauthenticatedError, ValidationError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { foldEvents, handleCommand, type Decider } from '../../eventStore/handleCommand.js';
import type { Caller, Principal } from '../auth/principal.js';
import type { CredentialVault } from '../catalog/credentials.js';

export type SecretSet = { readonly type: 'SecretSet'; readonly data: { readonly accountId: string; readonly name: string; readonly sealed: string; readonly at: string } };
export type SecretDeleted = { readonly type: 'SecretDeleted'; readonly data: { readonly accountId: string; readonly name: string; readonly at: string } };
export type SecretEvent = SecretSet | SecretDeleted;

export const secretsStream = (accountId: string): string => `wfsecrets-${accountId}`;

export const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
export const MAX_SECRET_BYTES = 8 * 1024;
export const MAX_SECRETS = 100;

interface StoredSecret {
  readonly sealed: string;
  readonly updatedAt: string;
}
type SecretsState = ReadonlyMap<string, StoredSecret>;
type SecretCommand = { readonly type: 'SetSecret'; readonly data: SecretSet['data'] } | { readonly type: 'DeleteSecret'; readonly data: SecretDeleted['data'] };

const secretsDecider: Decider<SecretsState, SecretCommand, SecretEvent> = {
  initialState: () => new Map(),
  evolve: (state, event) => {
    const next = new Map(state);
    switch (event.type) {
      case 'SecretSet':
        return next.set(event.data.name, { sealed: event.data.sealed, updatedAt: event.data.at });
      case 'SecretDeleted':
        next.delete(event.data.name);
        return next;
      default: {
        const _never: never = event;
        return state;
      }
    }
  },
  decide: (command, state) => {
    switch (command.type) {
      case 'SetSecret':
        if (!state.has(command.data.name) && state.size >= MAX_SECRETS) throw new ValidationError(`An account keeps at most ${MAX_SECRETS} secrets: delete one first`, { field: 'name' });
        return [{ type: 'SecretSet', data: command.data }];
      case 'DeleteSecret':
        if (!state.has(command.data.name)) throw new NotFoundError('Secret', command.data.name);
        return [{ type: 'SecretDeleted', data: command.data }];
      default: {
        const _never: never = command;
        throw new Error('unknown secrets command');
      }
    }
  },
};

/** The vault's context: a sealed value opens for this account's secret of this name only. */
export const secretSealContext = (accountId: string, name: string) => `secret:${accountId}:${name}`;

export interface SecretInfo {
  readonly name: string;
  readonly updatedAt: string;
}

export const createSecretsApi = (deps: { eventStore: EventStore; vault: Pick<CredentialVault, 'canEncrypt' | 'encrypt' | 'decrypt'>; now: () => Date }) => {
  const load = async (accountId: string): Promise<SecretsState> =>
    foldEvents(secretsDecider, (await deps.eventStore.readStream(secretsStream(accountId))) as RecordedEvent<SecretEvent>[]);
  /** Designers (and admins) manage their account's secrets. */
  const designer = (caller: Caller): Principal => {
    const principal = caller.principal;
    if (!principal) throw new UnauthenticatedError();
    if (!principal.roles.has('designer') && !principal.roles.has('admin')) throw new ForbiddenError('Managing secrets needs the designer role');
    return principal;
  };
  const checkName = (name: string) => {
    if (!SECRET_NAME.test(name)) throw new ValidationError('A secret name is a letter then up to 63 letters, digits or _ (e.g. GITHUB_TOKEN)', { field: 'name' });
  };
  const execute = (principal: Principal, caller: Caller, command: SecretCommand) =>
    handleCommand(deps.eventStore, secretsStream(principal.accountId), secretsDecider, command, { metadata: { actor: principal.accountId, correlationId: caller.requestId, at: command.data.at } });

  return {
    /** Store (or replace) a named secret of the caller's account, sealed; answers its name, never its value. */
    async set(caller: Caller, name: string, value: string): Promise<SecretInfo> {
      const principal = designer(caller);
      checkName(name);
      if (value.length === 0) throw new ValidationError('A secret value must not be empty', { field: 'value' });
      if (Buffer.byteLength(value) > MAX_SECRET_BYTES) throw new ValidationError(`A secret value is at most ${MAX_SECRET_BYTES} bytes`, { field: 'value' });
      if (!deps.vault.canEncrypt) throw new ValidationError('Secrets are stored encrypted, and this server has no SWITCHYARD_MASTER_KEY to encrypt them with', { field: 'value' });
      const at = deps.now().toISOString();
      const sealed = deps.vault.encrypt(secretSealContext(principal.accountId, name), value);
      await execute(principal, caller, { type: 'SetSecret', data: { accountId: principal.accountId, name, sealed, at } });
      return { name, updatedAt: at };
    },
    async delete(caller: Caller, name: string): Promise<SecretInfo> {
      const principal = designer(caller);
      checkName(name);
      const at = deps.now().toISOString();
      await execute(principal, caller, { type: 'DeleteSecret', data: { accountId: principal.accountId, name, at } });
      return { name, updatedAt: at };
    },
    /** The names of the caller's account's secrets (never their values). */
    async list(caller: Caller): Promise<SecretInfo[]> {
      const principal = designer(caller);
      return [...(await load(principal.accountId))].map(([name, secret]) => ({ name, updatedAt: secret.updatedAt })).sort((a, b) => a.name.localeCompare(b.name));
    },
    /** For a step of the account's own run: the value, or why there is none (a message safe to show the designer). */
    async open(accountId: string, name: string): Promise<{ value: string } | { problem: string }> {
      if (!SECRET_NAME.test(name)) return { problem: `"${name}" is not a secret name` };
      const stored = (await load(accountId)).get(name);
      if (!stored) return { problem: `There is no secret named ${name} in this account (set it with setSecret)` };
      const opened = deps.vault.decrypt(secretSealContext(accountId, name), stored.sealed);
      return opened.secret === null ? { problem: `The secret ${name} cannot be read: ${opened.problem ?? 'unknown'}` } : { value: opened.secret };
    },
  };
};

export type SecretsApi = ReturnType<typeof createSecretsApi>;

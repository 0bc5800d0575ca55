import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../config.js';
import { ForbiddenError, ValidationError } from '../../errors.js';
import { dataFileError } from '../../sqlite/privateFiles.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { byokContext, type ByokKeySet } from '../accounts/account.events.js';
import { secretSealContext, type SecretSet } from '../workflows/secrets.js';
import { webhookSecretContext, type WebhookSecretRotated } from '../workflows/workflow.events.js';
import type { CredentialRef, ProviderRegistered } from './provider.events.js';

/**
 * Which environment variables may hold a provider's key (PROVIDER_CREDENTIAL_ENV_ALLOW): exact names, and prefixes
 * written `NAME*`. Anything else, ADMIN_API_KEY and SWITCHYARD_MASTER_KEY included, is never read for a provider.
 */
export interface EnvAllowList {
  readonly names: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

export const parseEnvAllowList = (entries: readonly string[]): EnvAllowList => ({
  names: new Set(entries.filter((e) => !e.endsWith('*'))),
  prefixes: entries.filter((e) => e.endsWith('*')).map((e) => e.slice(0, -1)),
});

/** The server's own secrets, never a provider's key whatever the allow-list says. */
const NEVER_ALLOWED = new Set(['ADMIN_API_KEY', 'SWITCHYARD_MASTER_KEY']);

const envAllowed = (allow: EnvAllowList, name: string) =>
  !NEVER_ALLOWED.has(name) && (allow.names.has(name) || allow.prefixes.some((prefix) => name.startsWith(prefix)));

/**
 * Provider API keys (and workflows' webhook secrets) at rest: AES-256-GCM under a key derived (scrypt, once at boot) from SWITCHYARD_MASTER_KEY.
 * The provider slug is the additional authenticated data, so a ciphertext copied onto another provider does not
 * decrypt. Format: `v1.<iv>.<tag>.<ciphertext>`, each base64url.
 */
export interface CredentialVault {
  readonly canEncrypt: boolean;
  /** Seal a secret under a context (its AAD: a provider slug, or `webhook:<workflowId>`), so it opens only there. */
  encrypt(context: string, plain: string): string;
  /** Throws FORBIDDEN unless the operator's allow-list admits this variable name. */
  checkEnvName(name: string): void;
  /**
   * The secret a credential names, or null and why (env var unset or not allowed, no master key, bad ciphertext).
   * Checked again at every resolution, so an event written before the allow-list existed cannot read a variable:
   * an environment variable is read only for a provider an admin registered (`trusted`), and only if allowed.
   */
  resolve(providerSlug: string, credential: CredentialRef, trusted: boolean): { secret: string | null; problem: string | null };
  /**
   * Decrypt what `encrypt` sealed under the same context (a provider slug, or another owner's namespaced name such
   * as a workflow's webhook secret, `webhook:<workflowId>`); null and why when it cannot.
   */
  decrypt(context: string, sealed: string): { secret: string | null; problem: string | null };
}

const SALT = 'switchyard-provider-credentials-v1';

export const createCredentialVault = (options: { masterKey: string | undefined; envAllow: EnvAllowList; env?: Record<string, string | undefined> }): CredentialVault => {
  const { envAllow } = options;
  const env = options.env ?? process.env;
  const key = options.masterKey ? scryptSync(options.masterKey, SALT, 32) : null;
  const decrypt = (context: string, sealed: string): { secret: string | null; problem: string | null } => {
    if (!key) return { secret: null, problem: 'the secret is stored encrypted but SWITCHYARD_MASTER_KEY is not set' };
    const [version, iv, tag, data] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || data === undefined) return { secret: null, problem: 'the stored secret is not a v1 ciphertext' };
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
      return { secret: plain, problem: null };
    } catch {
      return { secret: null, problem: 'the stored secret does not decrypt with this SWITCHYARD_MASTER_KEY' };
    }
  };
  return {
    canEncrypt: key !== null,
    encrypt(context, plain) {
      if (!key) throw new ValidationError('Storing a secret needs SWITCHYARD_MASTER_KEY, which this server does not have (in production mode it must be set)');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context));
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
    },
    checkEnvName(name) {
      if (!envAllowed(envAllow, name)) {
        throw new ForbiddenError(`Environment variable ${name} is not one a provider key may be read from (PROVIDER_CREDENTIAL_ENV_ALLOW)`);
      }
    },
    resolve(providerSlug, credential, trusted) {
      if (credential === null) return { secret: null, problem: null };
      if ('env' in credential) {
        if (!trusted) return { secret: null, problem: `environment variable ${credential.env} was named by a provider not registered by an admin` };
        if (!envAllowed(envAllow, credential.env)) return { secret: null, problem: `environment variable ${credential.env} is not allowed by PROVIDER_CREDENTIAL_ENV_ALLOW` };
        const value = env[credential.env];
        return value ? { secret: value, problem: null } : { secret: null, problem: `environment variable ${credential.env} is not set` };
      }
      return decrypt(providerSlug, credential.encrypted);
    },
    decrypt,
  };
};

export const MASTER_KEY_FILE = 'master.key';

/** The events that hold a secret sealed under the master key, what each seals, and the secret with its vault context. */
const SEALING_EVENTS: Record<string, { readonly kind: string; readonly sealed: (data: unknown) => { readonly context: string; readonly sealed: string } | null }> = {
  ProviderRegistered: {
    kind: 'provider key',
    sealed: (data) => {
      const { slug, credential } = data as ProviderRegistered['data'];
      return typeof credential === 'object' && credential !== null && 'encrypted' in credential ? { context: slug, sealed: credential.encrypted } : null;
    },
  },
  ByokKeySet: {
    kind: 'BYOK key',
    sealed: (data) => {
      const { accountId, provider, encrypted } = data as ByokKeySet['data'];
      return typeof encrypted === 'string' ? { context: byokContext(accountId, provider), sealed: encrypted } : null;
    },
  },
  WebhookSecretRotated: {
    kind: 'webhook signing secret',
    sealed: (data) => {
      const { workflowId, secretEncrypted } = data as WebhookSecretRotated['data'];
      return typeof secretEncrypted === 'string' ? { context: webhookSecretContext(workflowId), sealed: secretEncrypted } : null;
    },
  },
  SecretSet: {
    kind: 'workflow secret',
    sealed: (data) => {
      const { accountId, name, sealed } = data as SecretSet['data'];
      return typeof sealed === 'string' ? { context: secretSealContext(accountId, name), sealed } : null;
    },
  },
};
const SEALED_PAGE = 5_000;

/** The secrets the event log holds sealed under a master key: how many by kind (`provider key`: 2), and the newest. */
export interface SealedSecrets {
  readonly counts: ReadonlyMap<string, number>;
  readonly newest: { readonly kind: string; readonly context: string; readonly sealed: string } | null;
}

/** A scan of the few event types that seal a secret (the embedded store reads them by its type index). */
export const readSealedSecrets = async (eventStore: Pick<EventStore, 'readAll'>): Promise<SealedSecrets> => {
  const counts = new Map<string, number>();
  let newest: SealedSecrets['newest'] = null;
  for (let after = 0; ; ) {
    const page = await eventStore.readAll({ after, maxCount: SEALED_PAGE, filter: { eventTypes: Object.keys(SEALING_EVENTS) } });
    for (const event of page) {
      const sealing = SEALING_EVENTS[event.type];
      const secret = sealing?.sealed(event.data);
      if (!sealing || !secret) continue;
      counts.set(sealing.kind, (counts.get(sealing.kind) ?? 0) + 1);
      newest = { kind: sealing.kind, ...secret };
    }
    if (page.length < SEALED_PAGE) return { counts, newest };
    after = page[page.length - 1]!.position;
  }
};

/** How many secrets the event log holds sealed under a master key, by kind (`provider key`: 2). */
export const countSealedSecrets = async (eventStore: Pick<EventStore, 'readAll'>): Promise<ReadonlyMap<string, number>> => (await readSealedSecrets(eventStore)).counts;

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

const describeSealed = (counts: ReadonlyMap<string, number>) => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return `${plural(total, 'secret')} sealed in the event log (${[...counts].map(([kind, n]) => plural(n, kind)).join(', ')})`;
};

/** Names a sealed secret in SWITCHYARD_MASTER_KEY_REPLACES: a digest of its ciphertext, which tells nothing of any key. */
const sealedId = (sealed: string) => createHash('sha256').update(sealed).digest('hex').slice(0, 16);

/**
 * Whether the master key in use opens the secrets sealed in the event log, checked at start so that a wrong key (another
 * SWITCHYARD_MASTER_KEY, a master.key replaced by another) stops the start in one line instead of failing each
 * provider key, BYOK key and webhook or workflow secret at use while /health says ok. The newest sealed secret is the
 * one tried: it was sealed under the key in use when it was written, so a key replaced on purpose (the old one lost for
 * good) passes again once one secret is sealed under the new one. Until then the operator takes the new key by naming
 * what it replaces (`replaces`, SWITCHYARD_MASTER_KEY_REPLACES): the id this refusal prints, of that newest secret, so
 * a variable left set accepts no other key once a secret is sealed under the new one. A store with nothing sealed
 * takes any key. `from` says where the key came from (`SWITCHYARD_MASTER_KEY`, or the key file's path), undefined when
 * the server has none (production mode without SWITCHYARD_MASTER_KEY): then anything sealed stops the start too, since
 * none of it would open (each provider key a 503 at use, each BYOK key refused, each signed webhook call a 401).
 */
export const checkMasterKey = async (deps: {
  eventStore: Pick<EventStore, 'readAll'>;
  vault: Pick<CredentialVault, 'decrypt'>;
  from: string | undefined;
  replaces: string | undefined;
}): Promise<{ readonly outcome: 'nothing sealed' | 'opens' } | { readonly outcome: 'replaced'; readonly unopenable: string }> => {
  const { counts, newest } = await readSealedSecrets(deps.eventStore);
  if (!newest) return { outcome: 'nothing sealed' };
  if (deps.from === undefined) {
    throw new ConfigError(
      `SWITCHYARD_MASTER_KEY is not set, and none of the ${describeSealed(counts)} opens without the key used to seal it: set it to that key. ` +
        `If that key is lost for good, set a new one and start with SWITCHYARD_MASTER_KEY_REPLACES=${sealedId(newest.sealed)} (the secrets sealed under the lost key stay unopenable: set them again).`,
    );
  }
  if (deps.vault.decrypt(newest.context, newest.sealed).secret !== null) return { outcome: 'opens' };
  const id = sealedId(newest.sealed);
  if (deps.replaces === id) return { outcome: 'replaced', unopenable: describeSealed(counts) };
  const fromFile = deps.from !== 'SWITCHYARD_MASTER_KEY';
  throw new ConfigError(
    `the master key in ${deps.from} does not open the ${describeSealed(counts)}: the newest, a ${newest.kind}, does not decrypt under it. ` +
      (fromFile ? 'Restore the file from a backup of DATA_DIR (mode 0600), or set SWITCHYARD_MASTER_KEY to the key they were sealed under. ' : 'Set SWITCHYARD_MASTER_KEY to the key they were sealed under. ') +
      `If that key is lost for good, start with SWITCHYARD_MASTER_KEY_REPLACES=${id} to use this one (the secrets sealed under the lost key stay unopenable: set them again)` +
      (deps.replaces === undefined ? '.' : ` (SWITCHYARD_MASTER_KEY_REPLACES=${deps.replaces} names no secret this key replaces).`),
  );
};

/**
 * The embedded mode's master key when SWITCHYARD_MASTER_KEY is unset: read from DATA_DIR/master.key, or generated
 * there on first start (`generated: true`). The new key is written to a temporary file opened with O_EXCL and mode
 * 0600, then linked into place, which fails if the file exists: two starts cannot both create one, and nobody ever
 * reads a half-written key.
 *
 * A missing file is a first start only when nothing is sealed yet (`sealedSecrets`, asked then): otherwise the key was
 * lost (or SWITCHYARD_MASTER_KEY was unset), and a new one would leave every provider key, BYOK key and webhook or
 * workflow secret unopenable while the server looked healthy. That is a ConfigError naming the file, and no key is made.
 */
export const loadOrCreateMasterKey = async (
  dataDir: string,
  options: { sealedSecrets?: () => Promise<ReadonlyMap<string, number>> } = {},
): Promise<{ key: string; file: string; generated: boolean }> => {
  const file = join(dataDir, MASTER_KEY_FILE);
  const read = async () => {
    const key = (await readFile(file, 'utf8')).trim();
    if (key.length < 32) throw new ValidationError(`${file} does not hold a master key (at least 32 characters); restore it from a backup or set SWITCHYARD_MASTER_KEY`);
    return key;
  };
  try {
    const key = await read();
    // A key file restored from a backup may have come back with a wider mode.
    await chmod(file, 0o600).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPERM') throw error;
    });
    return { key, file, generated: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw dataFileError(file, error) ?? error;
  }
  const sealed = (await options.sealedSecrets?.()) ?? new Map<string, number>();
  const total = [...sealed.values()].reduce((a, b) => a + b, 0);
  if (total > 0) {
    throw new ConfigError(
      `${file} is missing, but the event log holds ${plural(total, 'secret')} sealed under the master key it held ` +
        `(${[...sealed].map(([kind, n]) => plural(n, kind)).join(', ')}): restore it from a backup of DATA_DIR (mode 0600), or set ` +
        'SWITCHYARD_MASTER_KEY to that key. If it is lost for good, write a new key of 32 characters or more into the file, start with the SWITCHYARD_MASTER_KEY_REPLACES that start names, and set those secrets again (the sealed ones cannot be opened).',
    );
  }
  const key = randomBytes(32).toString('base64url');
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600).catch((error: unknown) => {
    throw dataFileError(file, error, 'created') ?? error;
  });
  try {
    await handle.writeFile(`${key}\n`);
    await handle.sync();
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw dataFileError(file, error, 'written') ?? error;
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, file);
    return { key, file, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw dataFileError(file, error, 'created') ?? error;
    return { key: await read(), file, generated: false };
  } finally {
    await unlink(temporary);
  }
};

import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../config.js';
import { ForbiddenError, ValidationError } from '../../errors.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import type { ByokKeySet } from '../accounts/account.events.js';
import type { SecretSet } from '../workflows/secrets.js';
import type { WebhookSecretRotated } from '../workflows/workflow.events.js';
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

/** The events that hold a secret sealed under the master key, what each seals, and whether this one holds one. */
const SEALING_EVENTS: Record<string, { readonly kind: string; readonly holdsOne: (data: unknown) => boolean }> = {
  ProviderRegistered: {
    kind: 'provider key',
    holdsOne: (data) => {
      const { credential } = data as ProviderRegistered['data'];
      return typeof credential === 'object' && credential !== null && 'encrypted' in credential;
    },
  },
  ByokKeySet: { kind: 'BYOK key', holdsOne: (data) => typeof (data as ByokKeySet['data']).encrypted === 'string' },
  WebhookSecretRotated: { kind: 'webhook signing secret', holdsOne: (data) => typeof (data as WebhookSecretRotated['data']).secretEncrypted === 'string' },
  SecretSet: { kind: 'workflow secret', holdsOne: (data) => typeof (data as SecretSet['data']).sealed === 'string' },
};
const SEALED_PAGE = 5_000;

/**
 * How many secrets the event log holds sealed under a master key, by kind (`provider key`: 2). Read only when the
 * key file is missing: a scan of the few event types that seal one.
 */
export const countSealedSecrets = async (eventStore: Pick<EventStore, 'readAll'>): Promise<ReadonlyMap<string, number>> => {
  const counts = new Map<string, number>();
  for (let after = 0; ; ) {
    const page = await eventStore.readAll({ after, maxCount: SEALED_PAGE, filter: { eventTypes: Object.keys(SEALING_EVENTS) } });
    for (const event of page) {
      const sealing = SEALING_EVENTS[event.type];
      if (sealing?.holdsOne(event.data)) counts.set(sealing.kind, (counts.get(sealing.kind) ?? 0) + 1);
    }
    if (page.length < SEALED_PAGE) return counts;
    after = page[page.length - 1]!.position;
  }
};

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

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
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const sealed = (await options.sealedSecrets?.()) ?? new Map<string, number>();
  const total = [...sealed.values()].reduce((a, b) => a + b, 0);
  if (total > 0) {
    throw new ConfigError(
      `${file} is missing, but the event log holds ${plural(total, 'secret')} sealed under the master key it held ` +
        `(${[...sealed].map(([kind, n]) => plural(n, kind)).join(', ')}): restore it from a backup of DATA_DIR (mode 0600), or set ` +
        'SWITCHYARD_MASTER_KEY to that key. If it is lost for good, write a new key of 32 characters or more into the file and set those secrets again (the sealed ones cannot be opened).',
    );
  }
  const key = randomBytes(32).toString('base64url');
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${key}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, file);
    return { key, file, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { key: await read(), file, generated: false };
  } finally {
    await unlink(temporary);
  }
};

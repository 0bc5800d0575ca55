import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { ValidationError } from '../../errors.js';
import type { CredentialRef } from './provider.events.js';

/**
 * Provider API keys at rest: AES-256-GCM under a key derived (scrypt, once at boot) from SWITCHYARD_MASTER_KEY.
 * The provider slug is the additional authenticated data, so a ciphertext copied onto another provider does not
 * decrypt. Format: `v1.<iv>.<tag>.<ciphertext>`, each base64url.
 */
export interface CredentialVault {
  readonly canEncrypt: boolean;
  encrypt(providerSlug: string, plain: string): string;
  /** The secret a credential names, or null when it is missing (env var unset, no master key, bad ciphertext). */
  resolve(providerSlug: string, credential: CredentialRef): { secret: string | null; problem: string | null };
}

const SALT = 'switchyard-provider-credentials-v1';

export const createCredentialVault = (masterKey: string | undefined, env: Record<string, string | undefined> = process.env): CredentialVault => {
  const key = masterKey ? scryptSync(masterKey, SALT, 32) : null;
  return {
    canEncrypt: key !== null,
    encrypt(providerSlug, plain) {
      if (!key) throw new ValidationError('Storing a provider key needs SWITCHYARD_MASTER_KEY (or pass credentialEnv to name an environment variable instead)');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(providerSlug));
      const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
    },
    resolve(providerSlug, credential) {
      if (credential === null) return { secret: null, problem: null };
      if ('env' in credential) {
        const value = env[credential.env];
        return value ? { secret: value, problem: null } : { secret: null, problem: `environment variable ${credential.env} is not set` };
      }
      if (!key) return { secret: null, problem: 'the provider key is encrypted but SWITCHYARD_MASTER_KEY is not set' };
      const [version, iv, tag, data] = credential.encrypted.split('.');
      if (version !== 'v1' || !iv || !tag || data === undefined) return { secret: null, problem: 'the stored provider key is not a v1 ciphertext' };
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(providerSlug));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
        return { secret: plain, problem: null };
      } catch {
        return { secret: null, problem: 'the stored provider key does not decrypt with this SWITCHYARD_MASTER_KEY' };
      }
    },
  };
};

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Generated API keys: `sk-sy-v1-` + 43 base62 characters (256 random bits) + a 6-character checksum.
 * The checksum lets us refuse a mistyped or forged key without touching any store, and the fixed prefix lets
 * secret scanners recognise a leaked key.
 */
export const KEY_PREFIX = 'sk-sy-v1-';
const BODY_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

const toBase62 = (bytes: Buffer, length: number): string => {
  let n = BigInt(`0x${bytes.toString('hex')}`);
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out;
};

const checksumOf = (body: string): string => toBase62(createHash('sha256').update(body).digest().subarray(0, 5), CHECKSUM_LENGTH);

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export interface GeneratedKey {
  readonly secret: string;
  readonly hash: string;
  readonly hint: string;
}

export const generateApiKey = (): GeneratedKey => {
  const body = toBase62(randomBytes(32), BODY_LENGTH);
  const secret = `${KEY_PREFIX}${body}${checksumOf(body)}`;
  return { secret, hash: hashSecret(secret), hint: keyHint(secret) };
};

export const keyHint = (secret: string): string => `${secret.slice(0, KEY_PREFIX.length + 3)}…${secret.slice(-4)}`;

/** True when the key has our format and its checksum matches. Pure: no store is consulted. */
export const hasValidChecksum = (secret: string): boolean => {
  if (!KEY_PATTERN.test(secret)) return false;
  const body = secret.slice(KEY_PREFIX.length, KEY_PREFIX.length + BODY_LENGTH);
  const given = Buffer.from(secret.slice(KEY_PREFIX.length + BODY_LENGTH));
  return timingSafeEqual(given, Buffer.from(checksumOf(body)));
};

/** Constant-time equality of two hex digests. */
export const sameHash = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

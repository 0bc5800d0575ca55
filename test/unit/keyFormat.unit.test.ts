import { describe, expect, it } from 'vitest';
import { KEY_PREFIX, generateApiKey, hasValidChecksum, hashSecret, sameHash } from '../../src/modules/apiKeys/keyFormat.js';

describe('API key format', () => {
  it('has the recognisable prefix, 256 random bits and a checksum', () => {
    const keys = Array.from({ length: 200 }, () => generateApiKey());
    for (const { secret, hash, hint } of keys) {
      expect(secret.startsWith(KEY_PREFIX)).toBe(true);
      expect(secret).toMatch(/^sk-sy-v1-[0-9A-Za-z]{49}$/);
      expect(hasValidChecksum(secret)).toBe(true);
      expect(hash).toBe(hashSecret(secret));
      expect(hint.endsWith(secret.slice(-4))).toBe(true);
      expect(hint).not.toContain(secret.slice(KEY_PREFIX.length + 3, -4));
    }
    expect(new Set(keys.map((k) => k.secret)).size).toBe(keys.length);
  });

  it('rejects every single-character change (a typo or a forgery) by checksum alone', () => {
    const { secret } = generateApiKey();
    let rejected = 0;
    for (let i = KEY_PREFIX.length; i < secret.length; i++) {
      const replacement = secret[i] === 'a' ? 'b' : 'a';
      const mutated = secret.slice(0, i) + replacement + secret.slice(i + 1);
      if (!hasValidChecksum(mutated)) rejected++;
    }
    // A 30-bit checksum lets through about one change in a billion; across 49 positions we expect none.
    expect(rejected).toBe(secret.length - KEY_PREFIX.length);
  });

  it('rejects keys of the wrong shape', () => {
    for (const bad of ['', 'sk-sy-v1-', 'sk-or-v1-abc', `${generateApiKey().secret}x`, 'Bearer x', 'sk-sy-v1-' + '!'.repeat(49)]) {
      expect(hasValidChecksum(bad)).toBe(false);
    }
  });

  it('compares hashes in constant time and only equal ones match', () => {
    const a = hashSecret('a');
    expect(sameHash(a, hashSecret('a'))).toBe(true);
    expect(sameHash(a, hashSecret('b'))).toBe(false);
    expect(sameHash(a, a.slice(1))).toBe(false);
  });
});

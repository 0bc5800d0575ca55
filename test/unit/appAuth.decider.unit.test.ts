import { createHash } from 'node:crypto';
import { describe, it } from 'vitest';
import { ConflictError, ForbiddenError } from '../../src/errors.js';
import { appAuthorizationDecider } from '../../src/modules/apiKeys/appAuth.decider.js';
import type { AppAuthorizationGranted } from '../../src/modules/apiKeys/appAuth.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const given = deciderSpec(appAuthorizationDecider);
const VERIFIER = 'v'.repeat(43) + 'erifier-of-the-app_0123456789';
const granted = (over: Partial<AppAuthorizationGranted['data']> = {}): AppAuthorizationGranted => ({
  type: 'AppAuthorizationGranted',
  data: {
    codeHash: 'h1',
    accountId: 'acc_1',
    callbackUrl: 'https://app.example/cb',
    codeChallenge: createHash('sha256').update(VERIFIER).digest('base64url'),
    codeChallengeMethod: 'S256',
    keyName: 'App at app.example',
    limit: null,
    expiresAt: '2026-12-03T10:10:00.000Z',
    at: '2026-12-03T10:00:00.000Z',
    ...over,
  },
});
const exchange = (over: { verifier?: string; method?: 'S256' | 'plain' | null; at?: string } = {}) => ({
  type: 'ExchangeAppAuthorization' as const,
  data: { codeHash: 'h1', verifier: over.verifier ?? VERIFIER, method: over.method ?? null, keyId: 'key_1', at: over.at ?? '2026-12-03T10:05:00.000Z' },
});

describe('app authorization decider', () => {
  it('exchanges a granted code once, for its verifier, before it expires', () => {
    given([granted()]).when(exchange()).then([{ type: 'AppAuthorizationExchanged', data: { codeHash: 'h1', keyId: 'key_1', at: '2026-12-03T10:05:00.000Z' } }]);
    given([granted()]).when(exchange({ method: 'S256' })).then([{ type: 'AppAuthorizationExchanged', data: { codeHash: 'h1', keyId: 'key_1', at: '2026-12-03T10:05:00.000Z' } }]);
    given([granted({ codeChallenge: VERIFIER, codeChallengeMethod: 'plain' })]).when(exchange({ method: 'plain' })).then([
      { type: 'AppAuthorizationExchanged', data: { codeHash: 'h1', keyId: 'key_1', at: '2026-12-03T10:05:00.000Z' } },
    ]);
  });

  it('refuses, with one message for every case, an unknown, spent or expired code, another method and another verifier', () => {
    const invalid = /^Invalid code or code_verifier/;
    given([]).when(exchange()).thenThrows(ForbiddenError, invalid);
    given([granted(), { type: 'AppAuthorizationExchanged', data: { codeHash: 'h1', keyId: 'key_0', at: '2026-12-03T10:01:00.000Z' } }]).when(exchange()).thenThrows(ForbiddenError, invalid);
    given([granted()]).when(exchange({ at: '2026-12-03T10:10:00.000Z' })).thenThrows(ForbiddenError, invalid);
    given([granted()]).when(exchange({ method: 'plain' })).thenThrows(ForbiddenError, invalid);
    given([granted()]).when(exchange({ verifier: `${VERIFIER}x` })).thenThrows(ForbiddenError, invalid);
    // The plain method compares the verifier itself: the S256 challenge sent as a verifier is not it.
    given([granted({ codeChallenge: VERIFIER, codeChallengeMethod: 'plain' })]).when(exchange({ verifier: createHash('sha256').update(VERIFIER).digest('base64url') })).thenThrows(ForbiddenError, invalid);
  });

  it('never grants the same code twice', () => {
    given([granted()]).when({ type: 'GrantAppAuthorization', data: granted().data }).thenThrows(ConflictError);
  });
});

import { describe, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { providerHandleDecider } from '../../src/modules/catalog/providerHandle.decider.js';
import type { ProviderHandleEvent } from '../../src/modules/catalog/providerHandle.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const given = deciderSpec(providerHandleDecider);
const at = '2026-01-01T00:00:00.000Z';
const claimed = (slug: string): ProviderHandleEvent => ({ type: 'ProviderHandleClaimed', data: { handle: 'pam co', slug, at } });
const claim = (slug: string, replacing: string | null = null) => ({ type: 'ClaimProviderHandle' as const, data: { handle: 'pam co', slug, replacing, at } });

describe('provider handle decider', () => {
  it('a free handle is claimed', () => given([]).when(claim('pam')).then([claimed('pam')]));
  it('a handle claimed by the same provider again changes nothing (a retried registration)', () => given([claimed('pam')]).when(claim('pam')).then([]));
  it("another provider's handle is a CONFLICT naming that provider", () => given([claimed('pam')]).when(claim('pete')).thenThrows(ConflictError, /already names provider pam/));
  it('a claim the caller found stale (its provider registered under other handles) is taken over', () =>
    given([claimed('pam')]).when(claim('pete', 'pam')).then([claimed('pete')]));
  it('a stale claim seen for one provider does not let a claim by another through', () =>
    given([claimed('pam'), claimed('paula')]).when(claim('pete', 'pam')).thenThrows(ConflictError));
});

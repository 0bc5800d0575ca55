/**
 * BYOK's pure parts: the fee and its inverse (exact integers, rounded up), the deciders (who may make a provider
 * BYOK-capable or move its endpoints, at most one key per provider and a bounded number), the ledger's key windows
 * with and without include_byok_in_limit, and the key's status against the provider's current origin.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ForbiddenError, NotFoundError, ValidationError } from '../../src/errors.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { byokFee, byokListBudget } from '../../src/gateway/pricing.js';
import { accountDecider } from '../../src/modules/accounts/account.decider.js';
import { MAX_BYOK_KEYS, type AccountEvent, type ByokKey } from '../../src/modules/accounts/account.events.js';
import { byokHint, byokStatus } from '../../src/modules/accounts/byok.js';
import { providerDecider } from '../../src/modules/catalog/provider.decider.js';
import type { ProviderEvent } from '../../src/modules/catalog/provider.events.js';
import { ledgerDecider, type LedgerCommand } from '../../src/modules/ledger/ledger.decider.js';
import type { LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const at = '2026-11-25T10:00:00.000Z';

describe('the BYOK fee', () => {
  it('is the basis points of the list price, rounded up to the nano-dollar', () => {
    expect(byokFee(16_003, 500)).toBe(801);
    expect(byokFee(16_000, 500)).toBe(800);
    expect(byokFee(0, 500)).toBe(0);
    expect(byokFee(1, 500)).toBe(1);
    expect(byokFee(16_003, 0)).toBe(0);
    expect(byokFee(Number.MAX_SAFE_INTEGER, 10_000)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('has an exact inverse: the largest list price whose fee (and, for a key counting it, the list price too) fits a budget', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), fc.integer({ min: 1, max: 10_000 }), fc.boolean(), (budget, bp, withList) => {
        const most = byokListBudget(budget, bp, withList);
        const held = (list: number) => byokFee(list, bp) + (withList ? list : 0);
        expect(held(most)).toBeLessThanOrEqual(budget);
        // Past the largest safe integer every list price fits: the answer is clamped there, not the exact inverse.
        if (most < Number.MAX_SAFE_INTEGER) expect(held(most + 1)).toBeGreaterThan(budget);
      }),
    );
    expect(byokListBudget(5, 0)).toBe(Number.MAX_SAFE_INTEGER);
    // fast-check's counterexample (a CI run): a 0.01% fee on ~$900 fits any list price a safe integer holds.
    expect(byokListBudget(900_719_925_475, 1)).toBe(Number.MAX_SAFE_INTEGER);
    expect(byokFee(Number.MAX_SAFE_INTEGER, 1)).toBeLessThanOrEqual(900_719_925_475);
  });
});

describe('providers', () => {
  const registered: ProviderEvent = {
    type: 'ProviderRegistered',
    data: { slug: 'acme', name: 'Acme', protocol: 'openai', baseUrl: 'https://api.acme.test/v1', credential: null, headers: {}, ownerAccountId: 'acc_owner', trusted: false, at },
  };
  const owner = { accountId: 'acc_owner', admin: false };
  const admin = { accountId: 'acc_root', admin: true };
  const given = deciderSpec(providerDecider);

  it('are made BYOK-capable by an admin only, once per change', () => {
    const set = (allowed: boolean, actor = admin) => ({ type: 'SetByok' as const, data: { providerSlug: 'acme', actor, allowed, at } });
    const allowed: ProviderEvent = { type: 'ProviderByokSet', data: { providerSlug: 'acme', allowed: true, at, decidedBy: admin } };
    given([registered]).when(set(true)).then([allowed]);
    given([registered, allowed]).when(set(true)).then([]);
    given([registered]).when(set(true, owner)).thenThrows(ForbiddenError, /Only an admin/);
    given([]).when(set(true)).thenThrows(NotFoundError);
  });

  it('are pointed at another base URL by their owner or an admin, a valid one', () => {
    const move = (baseUrl: string, actor = owner) => ({ type: 'ChangeBaseUrl' as const, data: { providerSlug: 'acme', freeModels: [], actor, baseUrl, at } });
    given([registered]).when(move('https://elsewhere.test/v1')).then([{ type: 'ProviderBaseUrlChanged', data: { providerSlug: 'acme', baseUrl: 'https://elsewhere.test/v1', at, decidedBy: owner } }]);
    given([registered]).when(move('https://api.acme.test/v1')).then([]);
    given([registered]).when(move('https://elsewhere.test/v1', { accountId: 'acc_other', admin: false })).thenThrows(ForbiddenError);
    given([registered]).when(move('ftp://elsewhere.test')).thenThrows(ValidationError, /baseUrl/);
    given([registered]).when(move('https://user:secret@elsewhere.test/v1')).thenThrows(ValidationError, /user name or password/);
  });

  it('lose the admin’s BYOK allowance when their owner moves them to another origin (an admin must allow it again)', () => {
    const move = (baseUrl: string, actor = owner) => ({ type: 'ChangeBaseUrl' as const, data: { providerSlug: 'acme', freeModels: [], actor, baseUrl, at } });
    const allowed: ProviderEvent = { type: 'ProviderByokSet', data: { providerSlug: 'acme', allowed: true, at, decidedBy: admin } };
    const moved = (baseUrl: string, actor = owner): ProviderEvent => ({ type: 'ProviderBaseUrlChanged', data: { providerSlug: 'acme', baseUrl, at, decidedBy: actor } });
    given([registered, allowed]).when(move('https://elsewhere.test/v1')).then([
      moved('https://elsewhere.test/v1'),
      { type: 'ProviderByokSet', data: { providerSlug: 'acme', allowed: false, at, decidedBy: owner } },
    ]);
    // The same origin (keys are bound to it), an admin's move, or a provider not allowed: the allowance is as it was.
    given([registered, allowed]).when(move('https://api.acme.test/v2')).then([moved('https://api.acme.test/v2')]);
    given([registered, allowed]).when(move('https://elsewhere.test/v1', admin)).then([moved('https://elsewhere.test/v1', admin)]);
    given([registered]).when(move('https://elsewhere.test/v1')).then([moved('https://elsewhere.test/v1')]);
  });
});

describe('accounts', () => {
  const opened: AccountEvent = { type: 'AccountOpened', data: { accountId: 'acc_1', name: 'A', email: null, roles: ['user'], plan: 'free', at } };
  const key = (provider: string): ByokKey & { accountId: string } => ({ accountId: 'acc_1', provider, encrypted: 'v1.a.b.c', hint: '…abcd', origin: 'https://api.acme.test', fallbackToShared: true, at });
  const given = deciderSpec(accountDecider);

  it('hold one key per provider (a new one replaces it) and at most MAX_BYOK_KEYS', () => {
    given([opened]).when({ type: 'SetByokKey', data: key('acme') }).then([{ type: 'ByokKeySet', data: key('acme') }]);
    const full: AccountEvent[] = [opened, ...Array.from({ length: MAX_BYOK_KEYS }, (_, i): AccountEvent => ({ type: 'ByokKeySet', data: key(`p${i}`) }))];
    expect(foldEvents(accountDecider, full)).toMatchObject({ byokKeys: expect.any(Map) });
    given(full).when({ type: 'SetByokKey', data: key('p3') }).then([{ type: 'ByokKeySet', data: key('p3') }]);
    given(full).when({ type: 'SetByokKey', data: key('one-more') }).thenThrows(ValidationError, /at most 20/);
    given(full).when({ type: 'RemoveByokKey', data: { accountId: 'acc_1', provider: 'p3', at } }).then([{ type: 'ByokKeyRemoved', data: { accountId: 'acc_1', provider: 'p3', at } }]);
    given([opened]).when({ type: 'RemoveByokKey', data: { accountId: 'acc_1', provider: 'acme', at } }).thenThrows(NotFoundError);
  });

  it("send a key only while the provider allows it and points at the key's origin", () => {
    const provider = { byok: true, baseUrl: 'https://api.acme.test/v1', protocol: 'openai' as const };
    expect(byokStatus(provider, { origin: 'https://api.acme.test' })).toEqual({ status: 'active', problem: null });
    expect(byokStatus({ ...provider, baseUrl: 'https://api.acme.test:8443/v1' }, { origin: 'https://api.acme.test' }).status).toBe('needs_confirmation');
    expect(byokStatus({ ...provider, byok: false }, { origin: 'https://api.acme.test' }).status).toBe('provider_not_allowed');
    expect(byokStatus(undefined, { origin: 'https://api.acme.test' }).status).toBe('provider_unknown');
    expect(byokHint('sk-0123456789abcdef')).toBe('…cdef');
    expect(byokHint('short-key')).toBe('…');
  });
});

describe('the ledger', () => {
  const acc = 'acc_1';
  const noFree = { perMinute: null, perDay: null };
  const granted: LedgerEvent = { type: 'CreditsGranted', data: { accountId: acc, amount: 1_000_000, reason: 't', grantedBy: 'acc_root', at } };
  const reserve = (generationId: string, amount: number, keyAmount?: number, limit: number | null = null): LedgerCommand => ({
    type: 'Reserve',
    data: { accountId: acc, generationId, keyId: 'key_1', amount, ...(keyAmount !== undefined && { keyAmount }), free: false, keyLimit: { limit, reset: 'never' }, freeTier: noFree, at },
  });
  const run = (commands: LedgerCommand[]) => {
    let state = foldEvents(ledgerDecider, [granted]);
    const events: LedgerEvent[] = [granted];
    for (const command of commands) {
      for (const event of ledgerDecider.decide(command, state)) {
        events.push(event);
        state = ledgerDecider.evolve(state, event);
      }
    }
    return { state, events };
  };
  const settle = (generationId: string, actual: number, upstreamCost: number): LedgerCommand => ({
    type: 'Settle',
    data: { accountId: acc, generationId, actual, usage: null, byok: { upstreamCost }, at },
  });

  it('counts only the fee against a key by default, and keeps the list price apart as byok usage', () => {
    const { state, events } = run([reserve('g1', 1_000), settle('g1', 801, 16_003)]);
    expect(events.at(-1)).toMatchObject({ type: 'ReservationSettled', data: { actual: 801, charged: 801, byok: { upstreamCost: 16_003, inKeyLimit: 0 } } });
    expect(state.keys.get('key_1')?.lifetime).toBe(801);
    expect(state.byokKeys.get('key_1')?.lifetime).toBe(16_003);
    expect(state.settled).toBe(801);
  });

  it('with include_byok_in_limit holds and counts the list price against the key, never beyond what it held', () => {
    const { state, events } = run([reserve('g1', 1_000, 21_000, 50_000), settle('g1', 801, 16_003)]);
    expect(events[1]).toMatchObject({ type: 'CreditsReserved', data: { amount: 1_000, keyAmount: 21_000 } });
    expect(events.at(-1)).toMatchObject({ type: 'ReservationSettled', data: { keyReserved: 21_000, byok: { upstreamCost: 16_003, inKeyLimit: 16_003 } } });
    expect(state.keys.get('key_1')?.lifetime).toBe(801 + 16_003);
    // A list price above what the key held counts only up to it.
    const over = run([reserve('g2', 1_000, 10_000), settle('g2', 801, 16_003)]);
    expect(over.state.keys.get('key_1')?.lifetime).toBe(10_000);
    expect(over.state.byokKeys.get('key_1')?.lifetime).toBe(16_003);
    // A key limit refuses on what the key would hold, while the credits would pay the fee.
    expect(() => ledgerDecider.decide(reserve('g3', 1_000, 60_000, 50_000), foldEvents(ledgerDecider, [granted]))).toThrow(/Key limit exceeded/);
    // Released: the key gets back all it held.
    const released = run([reserve('g4', 1_000, 21_000), { type: 'Release', data: { accountId: acc, generationId: 'g4', reason: 'failed', at } }]);
    expect(released.state.keys.get('key_1')?.lifetime).toBe(0);
    expect(released.events.at(-1)).toMatchObject({ type: 'ReservationReleased', data: { reserved: 1_000, keyReserved: 21_000 } });
  });
});

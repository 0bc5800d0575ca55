import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'graphql-ws';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { DEADLINE_MS, eventually } from '../support/eventually.js';

const USD = 1_000_000_000;
const run = promisify(execFile);
let h: Harness;
let user: { id: string; key: string; keyId: string };

const openUser = async (name: string) => {
  const { body } = await h.gql(`mutation($n: String!) { openAccount(name: $n) { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } } }`, { n: name });
  const p = body.data.openAccount;
  return { id: p.account.id as string, key: p.initialKey.secret as string, keyId: p.initialKey.key.id as string };
};
const PURCHASE = `mutation($amount: Money!, $pm: String!, $idem: String) {
  purchaseCredits(amount: $amount, paymentMethod: $pm, idempotencyKey: $idem) {
    __typename
    ... on Purchase { paymentRef amount fee total balance { available availableUsd purchased lifetimePurchased fees } }
    ... on DomainError { code message details }
  }
}`;
const BALANCE = '{ balance { purchased granted refunded settled reserved available availableUsd } }';
const rest = async (path: string, key: string) => {
  const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  h = await startHarness();
  user = await openUser('Payer');
});
afterAll(async () => {
  await h.stop();
});

describe('buying credits', () => {
  it('buys credits with the 5.5% / $0.80 minimum fee on top, and shows them over GraphQL and REST', async () => {
    const { body } = await h.gql(PURCHASE, { amount: 10 * USD, pm: 'pm_card_visa', idem: 'first' }, user.key);
    expect(body.data.purchaseCredits).toMatchObject({ __typename: 'Purchase', amount: 10 * USD, fee: 0.8 * USD, total: 10.8 * USD });
    expect(body.data.purchaseCredits.balance).toEqual({ available: 10 * USD, availableUsd: '10.00', purchased: 10 * USD, lifetimePurchased: 10 * USD, fees: 0.8 * USD });
    const credits = await rest('/api/v1/credits', user.key);
    expect(credits.body.data).toMatchObject({ total_credits: 10, total_usage: 0, total_credits_nanos: 10 * USD, total_usage_nanos: 0 });
  });

  it('a retried purchase with the same idempotency key is not credited twice', async () => {
    const again = await h.gql(PURCHASE, { amount: 10 * USD, pm: 'pm_card_visa', idem: 'first' }, user.key);
    expect(again.body.data.purchaseCredits.balance.available).toBe(10 * USD);
  });

  it('a declined payment credits nothing (its hold under the cap is given back); a zero, negative or sub-cent amount is a typed error and writes nothing', async () => {
    const declined = await h.gql(PURCHASE, { amount: 5 * USD, pm: 'pm_card_declined' }, user.key);
    expect(declined.body.data.purchaseCredits).toMatchObject({ __typename: 'DomainError', code: 'PAYMENT_FAILED', details: { decline_code: 'generic_decline' } });
    const entries = await h.gql('{ ledgerEntries(first: 2) { edges { node { type effect amount } } } }', {}, user.key);
    expect(entries.body.data.ledgerEntries.edges.map((e: any) => e.node)).toEqual([
      { type: 'PurchaseFailed', effect: 0, amount: 5 * USD },
      { type: 'PurchaseStarted', effect: 0, amount: 5 * USD },
    ]);
    expect((await h.gql(BALANCE, {}, user.key)).body.data.balance).toMatchObject({ purchased: 10 * USD, available: 10 * USD });
    const head = await h.running.core.eventStore.headPosition();
    const subCent = await h.gql(PURCHASE, { amount: 10_000_001, pm: 'pm_card_visa' }, user.key);
    expect(subCent.body.data.purchaseCredits).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/whole number of cents/) });
    for (const amount of [0, -5 * USD]) {
      const bad = await h.gql(PURCHASE, { amount, pm: 'pm_card_visa' }, user.key);
      expect(bad.body.errors?.[0]?.extensions?.code ?? bad.body.data?.purchaseCredits?.code).toBe('VALIDATION');
    }
    const fractional = await h.gql(PURCHASE, { amount: 1.5, pm: 'pm_card_visa' }, user.key);
    expect(fractional.body.errors[0].message).toMatch(/integer number of nano-dollars/);
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
  });
});

describe('grants and refunds (admin)', () => {
  const GRANT = `mutation($id: ID!, $amount: Money!) { grantCredits(accountId: $id, amount: $amount, reason: "welcome") { __typename ... on Balance { granted available } ... on DomainError { code message } } }`;
  const REFUND = `mutation($id: ID!, $amount: Money!) { refundCredits(accountId: $id, amount: $amount, reason: "asked") { __typename ... on Balance { refunded available } ... on DomainError { code message } } }`;

  it('admins grant credits; users cannot; unknown accounts are NOT_FOUND', async () => {
    expect((await h.gql(GRANT, { id: user.id, amount: 2 * USD })).body.data.grantCredits).toEqual({ __typename: 'Balance', granted: 2 * USD, available: 12 * USD });
    expect((await h.gql(GRANT, { id: user.id, amount: USD }, user.key)).body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect((await h.gql(GRANT, { id: 'acc_nobody', amount: USD })).body.data.grantCredits).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refunds never exceed purchases', async () => {
    const head = await h.running.core.eventStore.headPosition();
    expect((await h.gql(REFUND, { id: user.id, amount: 11 * USD })).body.data.refundCredits).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/exceeds what was purchased/) });
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
    expect((await h.gql(REFUND, { id: user.id, amount: USD })).body.data.refundCredits).toEqual({ __typename: 'Balance', refunded: USD, available: 11 * USD });
  });

  it('under an idempotency key a grant or refund sent again is applied once; another amount under it is a CONFLICT', async () => {
    const keyed = (field: string) =>
      `mutation($id: ID!, $amount: Money!, $key: String) { ${field}(accountId: $id, amount: $amount, reason: "retried", idempotencyKey: $key) { __typename ... on Balance { granted refunded available } ... on DomainError { code message } } }`;
    const GRANT_KEYED = keyed('grantCredits');
    const REFUND_KEYED = keyed('refundCredits');
    const payer = await openUser('Retried grants');
    await h.gql(PURCHASE, { amount: 10 * USD, pm: 'pm_card_visa', idem: 'retried' }, payer.key);
    for (let i = 0; i < 2; i++) {
      expect((await h.gql(GRANT_KEYED, { id: payer.id, amount: 3 * USD, key: 'grant-1' })).body.data.grantCredits).toEqual({ __typename: 'Balance', granted: 3 * USD, refunded: 0, available: 13 * USD });
    }
    expect((await h.gql(GRANT_KEYED, { id: payer.id, amount: 4 * USD, key: 'grant-1' })).body.data.grantCredits).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/used for another grant \(\$3\.00\)/) });
    // Sent at once, too: one grant.
    await Promise.all(Array.from({ length: 5 }, () => h.gql(GRANT_KEYED, { id: payer.id, amount: USD, key: 'grant-2' })));
    for (let i = 0; i < 2; i++) {
      expect((await h.gql(REFUND_KEYED, { id: payer.id, amount: 2 * USD, key: 'refund-1' })).body.data.refundCredits).toEqual({ __typename: 'Balance', granted: 4 * USD, refunded: 2 * USD, available: 12 * USD });
    }
    // Without a key, each request is its own grant, as before.
    await h.gql(GRANT_KEYED, { id: payer.id, amount: USD, key: null });
    expect((await h.gql(GRANT_KEYED, { id: payer.id, amount: USD, key: null })).body.data.grantCredits).toMatchObject({ granted: 6 * USD });
    // A key is an Idempotency-Key's 1 to 255 visible ASCII characters, as everywhere else: anything else is refused
    // before anything is written. Halves of surrogate pairs were taken, and hashed as UTF-8 (each one U+FFFD), so two
    // different keys were one and the second grant was lost (QA s45 regress #2).
    const head = await h.running.core.eventStore.headPosition();
    for (const key of ['k'.repeat(256), '', 'with space', 'order-\ud83d', 'order-\udc00', 'order-\ufffd', 'ключ']) {
      for (const mutation of [GRANT_KEYED, REFUND_KEYED]) {
        expect((await h.gql(mutation, { id: payer.id, amount: USD, key })).body.data, JSON.stringify(key)).toMatchObject({ [mutation === GRANT_KEYED ? 'grantCredits' : 'refundCredits']: { code: 'VALIDATION', message: expect.stringContaining('1 to 255 visible ASCII characters') } });
      }
      expect((await h.gql(PURCHASE, { amount: USD, pm: 'pm_card_visa', idem: key }, payer.key)).body.data.purchaseCredits, JSON.stringify(key)).toMatchObject({ code: 'VALIDATION' });
    }
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
    expect((await h.gql(GRANT_KEYED, { id: payer.id, amount: USD, key: 'k'.repeat(255) })).body.data.grantCredits).toMatchObject({ granted: 7 * USD });
  });
});

describe('spending (as the gateway drives the ledger)', () => {
  it('reserves, settles, and shows usage, entries, key windows and limits', async () => {
    const { ledger } = h.running.core;
    const limit = await h.gql(
      `mutation($id: ID!) { setApiKeyLimit(id: $id, limit: ${3 * USD}, limitReset: DAILY) { ... on ApiKey { limit } } }`,
      { id: user.keyId },
    );
    expect(limit.body.data.setApiKeyLimit.limit).toBe(3 * USD);
    const usage = (model: string, provider: string) => ({ model, provider, promptTokens: 100, completionTokens: 50, reasoningTokens: 5, cachedTokens: 10 });
    await ledger.reserve({ accountId: user.id, keyId: user.keyId, generationId: 'gen-a', amount: USD, freeModel: false });
    await ledger.settle({ accountId: user.id, generationId: 'gen-a', actual: 0.25 * USD, usage: usage('openai/gpt-4o-mini', 'openai') });
    await ledger.reserve({ accountId: user.id, keyId: user.keyId, generationId: 'gen-b', amount: USD, freeModel: false });
    await ledger.settle({ accountId: user.id, generationId: 'gen-b', actual: 0.5 * USD, usage: usage('anthropic/claude-3.5-haiku', 'anthropic') });
    await ledger.reserve({ accountId: user.id, keyId: user.keyId, generationId: 'gen-c', amount: 2 * USD, freeModel: false });
    // 0.25 + 0.5 charged + 2 held = 2.75 of the 3 daily: 0.3 more is over the limit.
    await expect(ledger.reserve({ accountId: user.id, keyId: user.keyId, generationId: 'gen-d', amount: 0.3 * USD, freeModel: false })).rejects.toMatchObject({
      code: 'KEY_LIMIT_REACHED',
      status: 402,
    });
    await ledger.release({ accountId: user.id, generationId: 'gen-c', reason: 'provider failed' });
    await h.running.core.runner.waitFor(ledger.lastPosition);

    const balance = await h.gql(BALANCE, {}, user.key);
    expect(balance.body.data.balance).toMatchObject({ settled: 0.75 * USD, reserved: 0, available: 10.25 * USD, availableUsd: '10.25' });

    const byModel = await h.gql(`{ usage(groupBy: MODEL) { group requests promptTokens completionTokens reasoningTokens cachedTokens cost } }`, {}, user.key);
    expect(byModel.body.data.usage).toEqual([
      { group: 'anthropic/claude-3.5-haiku', requests: 1, promptTokens: 100, completionTokens: 50, reasoningTokens: 5, cachedTokens: 10, cost: 0.5 * USD },
      { group: 'openai/gpt-4o-mini', requests: 1, promptTokens: 100, completionTokens: 50, reasoningTokens: 5, cachedTokens: 10, cost: 0.25 * USD },
    ]);
    const today = new Date().toISOString().slice(0, 10);
    const byDay = await h.gql(`query($d: String) { usage(groupBy: DAY, from: $d, to: $d) { group requests cost } }`, { d: today }, user.key);
    expect(byDay.body.data.usage).toEqual([{ group: today, requests: 2, cost: 0.75 * USD }]);
    const byKey = await h.gql(`{ usage(groupBy: KEY) { group cost } }`, {}, user.key);
    expect(byKey.body.data.usage).toEqual([{ group: user.keyId, cost: 0.75 * USD }]);
    const badRange = await h.gql(`{ usage(groupBy: DAY, from: "2026-12-01", to: "2026-11-01") { group } }`, {}, user.key);
    expect(badRange.body.errors[0].extensions.code).toBe('VALIDATION');

    const key = await h.gql(`query($id: ID!) { apiKey(id: $id) { limit limitRemaining usage { daily weekly monthly lifetime } } }`, { id: user.keyId }, user.key);
    expect(key.body.data.apiKey).toEqual({ limit: 3 * USD, limitRemaining: 2.25 * USD, usage: { daily: 0.75 * USD, weekly: 0.75 * USD, monthly: 0.75 * USD, lifetime: 0.75 * USD } });
    const restKey = await rest('/api/v1/key', user.key);
    expect(restKey.body.data).toMatchObject({ limit: 3, limit_reset: 'daily', limit_remaining: 2.25, usage: 0.75, usage_daily: 0.75, is_free_tier: false, limit_remaining_nanos: 2.25 * USD });
    // OpenRouter's BYOK fields: Switchyard has no BYOK, so nothing counts against the limit or is used on own keys.
    expect(restKey.body.data).toMatchObject({ include_byok_in_limit: false, byok_usage: 0, byok_usage_daily: 0, byok_usage_weekly: 0, byok_usage_monthly: 0 });
    // The older path community clients still call answers the same.
    expect((await rest('/api/v1/auth/key', user.key)).body).toEqual(restKey.body);

    // A relay connection, newest first: forwards with first/after, backwards with last/before.
    const types = (r: any) => r.body.data.ledgerEntries.edges.map((e: any) => e.node.type);
    const first = await h.gql(`{ ledgerEntries(first: 3) { edges { cursor node { type effect generationId } } pageInfo { hasNextPage endCursor } } }`, {}, user.key);
    expect(types(first)).toEqual(['ReservationReleased', 'CreditsReserved', 'ReservationSettled']);
    expect(first.body.data.ledgerEntries.pageInfo.hasNextPage).toBe(true);
    const next = await h.gql(`query($c: String) { ledgerEntries(first: 100, after: $c) { edges { node { type } } pageInfo { hasNextPage startCursor } } }`, { c: first.body.data.ledgerEntries.pageInfo.endCursor }, user.key);
    expect(types(next)).toEqual([
      'CreditsReserved',
      'ReservationSettled',
      'CreditsReserved',
      'CreditsRefunded',
      'CreditsGranted',
      'PurchaseFailed',
      'PurchaseStarted',
      'CreditsPurchased',
      'PurchaseStarted',
    ]);
    expect(next.body.data.ledgerEntries.pageInfo.hasNextPage).toBe(false);
    const back = await h.gql(`query($c: String) { ledgerEntries(last: 2, before: $c) { edges { node { type } } pageInfo { hasPreviousPage } } }`, { c: next.body.data.ledgerEntries.pageInfo.startCursor }, user.key);
    expect(types(back)).toEqual(['CreditsReserved', 'ReservationSettled']);
    expect(back.body.data.ledgerEntries.pageInfo.hasPreviousPage).toBe(true);
    const badCursor = await h.gql(`{ ledgerEntries(after: "acc_root") { edges { cursor } } }`, {}, user.key);
    expect(badCursor.body.errors[0].extensions.code).toBe('VALIDATION');
  });

  it("lists a restricted key (a spending limit) the account's credits and its own calls' entries only, never another key's generation ids", async () => {
    const owner = await openUser('Ledger owner');
    await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: ${10 * USD}, reason: "test") { __typename } }`, { id: owner.id });
    const created = await h.gql(`mutation { createApiKey(name: "app", limit: ${USD}, limitReset: NEVER) { ... on CreatedApiKey { secret key { id } } } }`, {}, owner.key);
    const app = { key: created.body.data.createApiKey.secret as string, keyId: created.body.data.createApiKey.key.id as string };
    const call = (key: string) => new OpenAI({ apiKey: key, baseURL: `${h.url}/api/v1`, maxRetries: 0 }).chat.completions.create({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 });
    const ownerCall = await call(owner.key);
    const appCall = await call(app.key);
    const ENTRY = 'cursor node { type generationId keyId }';
    type Entry = { type: string; generationId: string | null; keyId: string | null };
    const list = async (key: string): Promise<Entry[]> => (await h.gql(`{ ledgerEntries(first: 100) { edges { ${ENTRY} } } }`, {}, key)).body.data.ledgerEntries.edges.map((e: any) => e.node as Entry);
    // Both calls settled (the ledger is read from its stream).
    const all = await eventually('both calls settled', async () => {
      const entries = await list(owner.key);
      return entries.filter((e) => e.type === 'ReservationSettled').length === 2 ? entries : null;
    });
    expect(new Set(all.map((e) => e.generationId))).toEqual(new Set([null, ownerCall.id, appCall.id]));

    const seen = await list(app.key);
    expect(seen).toEqual(all.filter((e) => e.generationId === null || e.keyId === app.keyId));
    expect(seen.map((e) => e.type)).toEqual(['ReservationSettled', 'CreditsReserved', 'CreditsGranted']);
    expect(seen.some((e) => e.generationId === ownerCall.id)).toBe(false);
    // Paged one by one, forwards and backwards, it is the same list.
    const forwards: Entry[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = (await h.gql(`query($a: String) { ledgerEntries(first: 1, after: $a) { edges { ${ENTRY} } pageInfo { hasNextPage endCursor } } }`, { a: after }, app.key)).body.data.ledgerEntries;
      forwards.push(...page.edges.map((e: any) => e.node));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(forwards).toEqual(seen);
    const last = (await h.gql(`{ ledgerEntries(last: 2) { edges { ${ENTRY} } pageInfo { hasPreviousPage } } }`, {}, app.key)).body.data.ledgerEntries;
    expect(last.edges.map((e: any) => e.node)).toEqual(seen.slice(-2));
    expect(last.pageInfo.hasPreviousPage).toBe(true);
  });

  it('streams balance changes over graphql-ws after the read model has them', async () => {
    const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${user.key}` } });
    const received: { available: number; granted: number }[] = [];
    const stop = client.subscribe<{ balanceChanged: { available: number; granted: number } }>(
      { query: 'subscription { balanceChanged { available granted } }' },
      { next: (v) => received.push(v.data!.balanceChanged), error: () => undefined, complete: () => undefined },
    );
    // graphql-ws does not acknowledge a subscription: grant a nano-dollar until a change arrives.
    for (const deadline = Date.now() + DEADLINE_MS; received.length === 0 && Date.now() < deadline; ) {
      await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1, reason: "ping") { __typename } }`, { id: user.id });
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(received.length).toBeGreaterThan(0);
    const { body } = await h.gql(BALANCE, {}, user.key);
    // Each change carries the balance as stored; the last one to arrive is the balance now (the change of the last
    // grant may still be on its way when the balance is read: a wait of 100 ms was a bet on a loaded host).
    const now = { available: body.data.balance.available, granted: body.data.balance.granted };
    await eventually('the last change to carry the balance now', () => received.at(-1)?.available === now.available && received.at(-1)?.granted === now.granted);
    stop();
    expect(received.at(-1)).toEqual(now);
    expect(body.data.balance.granted).toBeGreaterThan(2 * USD);
    await client.dispose();
  });

  it('changes plans by configuration only', async () => {
    const change = `mutation($id: ID!, $p: String!) { changePlan(accountId: $id, plan: $p) { __typename ... on Account { plan } ... on DomainError { code message } } }`;
    expect((await h.gql(change, { id: user.id, p: 'pro' })).body.data.changePlan).toEqual({ __typename: 'Account', plan: 'pro' });
    expect((await h.gql(change, { id: user.id, p: 'platinum' })).body.data.changePlan).toMatchObject({ code: 'VALIDATION' });
    expect((await h.gql(change, { id: user.id, p: 'free' }, user.key)).body.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('billing audit', () => {
  it('finds no difference when healthy, and reports a corrupted read model field by field', async () => {
    const AUDIT = `query($id: ID) { billingAudit(accountId: $id) { ok eventsReplayed accountsChecked differences { accountId model field expected actual } } }`;
    const healthy = await h.gql(AUDIT, {});
    expect(healthy.body.data.billingAudit).toMatchObject({ ok: true, differences: [] });
    expect(healthy.body.data.billingAudit.eventsReplayed).toBeGreaterThan(5);
    expect((await h.gql(AUDIT, {}, user.key)).body.errors[0].extensions.code).toBe('FORBIDDEN');

    await h.running.core.readStore.collection('balances').updateOne({ _id: user.id }, { $inc: { settled: 1 } });
    const broken = await h.gql(AUDIT, { id: user.id });
    expect(broken.body.data.billingAudit.ok).toBe(false);
    expect(broken.body.data.billingAudit.differences).toEqual([{ accountId: user.id, model: 'balances', field: 'settled', expected: 0.75 * USD, actual: 0.75 * USD + 1 }]);
    await h.running.core.readStore.collection('balances').updateOne({ _id: user.id }, { $inc: { settled: -1 } });
  });

  it("checks each generation's recorded cost against what the ledger settled", async () => {
    const AUDIT = `query($id: ID) { billingAudit(accountId: $id) { ok differences { model documentId field expected actual } } }`;
    const res = await fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 20 }),
    });
    expect(res.status).toBe(200);
    await h.running.core.gateway.idle();
    expect((await h.gql(AUDIT, { id: user.id })).body.data.billingAudit).toEqual({ ok: true, differences: [] });
    // A generation record whose cost the ledger never settled is a billing difference.
    await h.running.core.eventStore.append('generation-gen-forged', [
      {
        type: 'GenerationCompleted',
        data: { generationId: 'gen-forged', accountId: user.id, keyId: null, endpointId: null, providerSlug: null, providerName: null, model: null, usage: { prompt: 1, completion: 1, reasoning: 0, cached: 0, cacheWrite: 0 }, usageSource: 'provider', cost: 5, streamed: false, latencyMs: 1, generationTimeMs: 1, at: new Date().toISOString(), upstreamId: null, finishReason: 'stop', nativeFinishReason: null },
      },
    ]);
    await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition());
    expect((await h.gql(AUDIT, { id: user.id })).body.data.billingAudit.differences).toEqual([
      { model: 'generations', documentId: 'gen-forged', field: 'cost', expected: null, actual: 5 },
    ]);
  });

  it('compares the read models at their own position: with them held back behind new charges, a healthy ledger reports no difference', async () => {
    const AUDIT = `query($id: ID) { billingAudit(accountId: $id) { ok differences { model field expected actual } } }`;
    const forged = { model: 'generations', field: 'cost', expected: null, actual: 5 };
    await h.running.core.runner.pause();
    try {
      const res = await fetch(`${h.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'Charge me while the read models wait' }], max_tokens: 20 }),
      });
      expect(res.status).toBe(200);
      await h.running.core.gateway.idle();
      // The ledger has the reservation and its settlement; the balances read model has neither yet. The only
      // difference is the generation the test before forged.
      expect((await h.gql(AUDIT, { id: user.id })).body.data.billingAudit.differences).toEqual([forged]);
    } finally {
      await h.running.core.runner.resume();
    }
    await h.running.core.runner.waitFor(await h.running.core.eventStore.headPosition());
    expect((await h.gql(AUDIT, { id: user.id })).body.data.billingAudit.differences).toEqual([forged]);
  });

  it('`npm run audit` replays the ledger on disk and exits 1 on a difference', async () => {
    const dir = h.dataDir;
    await h.stop({ keepData: true });
    const cli = (args: string[] = []) =>
      run(process.execPath, ['--import', 'tsx', 'src/cli/audit.ts', ...args], { env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'silent' }, cwd: join(import.meta.dirname, '../..') });
    // The forged generation record above is still there: the full audit reports it.
    const forged = await cli().catch((error: { code: number; stdout: string }) => error);
    expect((forged as { stdout: string }).stdout).toMatch(/DIFFERENCE generations gen-forged cost/);
    const readStore = await openEmbeddedReadStore({ dir });
    await readStore.collection('usageDaily').updateOne({ accountId: user.id, model: 'openai/gpt-4o-mini' }, { $set: { promptTokens: 1 } });
    await readStore.close();
    const failed = await cli(['--account', user.id]).catch((error: { code: number; stdout: string }) => error);
    expect((failed as { stdout: string }).stdout).not.toMatch(/OK/);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stdout: string }).stdout).toMatch(/DIFFERENCE usageDaily .*openai\/gpt-4o-mini.* promptTokens: events say 100, read model has 1/);
    h = await startHarness({}, dir);
  });
});

describe('`npm run audit` after a crash', () => {
  it('brings read models that are behind the log up to it first, so it reports no difference that is only lag', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { openSqliteEventStore } = await import('../../src/eventStore/sqliteEventStore.js');
    const { ledgerStream } = await import('../../src/modules/ledger/ledger.events.js');
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-audit-lag-'));
    try {
      const app = await startHarness({}, dir);
      const opened = await app.gql('mutation { openAccount(name: "Lagging") { ... on OpenAccountPayload { account { id } } } }');
      const accountId = opened.body.data.openAccount.account.id as string;
      await app.gql('mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "first") { __typename } }', { id: accountId });
      await app.stop({ keepData: true });
      // A grant the read models never saw, as if the server died right after appending it (the same event again).
      const events = openSqliteEventStore({ dir, synchronous: 'full' });
      const stream = await events.readStream(ledgerStream(accountId));
      const grant = stream.find((event) => event.type === 'CreditsGranted')!;
      await events.append(ledgerStream(accountId), [{ type: grant.type, data: grant.data }], { expectedRevision: stream.at(-1)!.revision });
      await events.close();
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/audit.ts', '--account', accountId], { env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'silent' }, cwd: join(import.meta.dirname, '../..') });
      expect(stdout).toContain('OK: read models match the ledger');
      // And the balance the read models now hold counts it.
      const readStore = await openEmbeddedReadStore({ dir });
      const [balance] = await readStore.collection('balances').find({ _id: accountId });
      await readStore.close();
      expect(balance).toMatchObject({ granted: 2_000_000_000 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('days in usage queries', () => {
  it('a day that is not on the calendar is refused as a malformed one is, by every query that takes days', async () => {
    const refusal = (body: any) => ({ code: body.errors?.[0]?.extensions?.code, message: body.errors?.[0]?.message as string | undefined });
    for (const day of ['2025-13-45', '2025-02-30', '2023-02-29', '2025-04-31', 'notadate']) {
      const usage = await h.gql(`query($d: String) { usage(groupBy: MODEL, from: $d) { group } }`, { d: day }, user.key);
      expect(refusal(usage.body), day).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/must be a day, YYYY-MM-DD/) });
      const traffic = await h.gql(`query($d: String) { providerTraffic(to: $d) { day } }`, { d: day });
      expect(refusal(traffic.body), day).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/must be a day, YYYY-MM-DD/) });
    }
    // Real days, a leap day among them, are answered.
    for (const day of ['2024-02-29', '2025-12-31']) {
      const { body } = await h.gql(`query($d: String) { usage(groupBy: MODEL, from: $d) { group } }`, { d: day }, user.key);
      expect(body.errors, day).toBeUndefined();
    }
  });
});

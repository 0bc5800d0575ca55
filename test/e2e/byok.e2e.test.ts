/**
 * BYOK (bring your own provider key), over real HTTP with the official `openai` SDK and fake OpenAI-compatible
 * upstreams that record the Authorization header they receive: an account's own key reaches the upstream for that
 * account only, its endpoints are tried first and billed a fee of BYOK_FEE_PERCENT of the list price (exact, rounded
 * up), the shared key serves when the own key fails unless fallbackToShared is false, the key is bound to the origin
 * the provider pointed at when it was set, only an admin makes a provider BYOK-capable, the key never comes back in any
 * answer or event, include_byok_in_limit counts the list price against a key's limit, and parallel BYOK calls on an
 * account with little credit never overspend.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerDecider } from '../../src/modules/ledger/ledger.decider.js';
import { ledgerStream, type LedgerEvent } from '../../src/modules/ledger/ledger.events.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { authorizationsDuring, FEE, LIST, PRICES, USAGE } from '../support/byokFixture.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, promptBound, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'byok/chat';
const hi = [{ role: 'user' as const, content: 'hi' }];
const OWN_KEY = 'sk-users-own-provider-key-7f3a9c';

let h: GatewayHarness;
/** The provider `byok-acme`'s upstream: accepts any key and records what it received. */
let acme: FakeProvider;
let other: FakeProvider;

const account = (credits = 1_000_000_000) => h.openAccount({ credits });

const SET_KEY = `mutation ($provider: String!, $apiKey: String!, $fallback: Boolean, $accountId: ID) {
  setByokKey(provider: $provider, apiKey: $apiKey, fallbackToShared: $fallback, accountId: $accountId) {
    ... on Account { byokKeys { provider hint origin fallbackToShared createdAt status problem } } ... on DomainError { code message } } }`;
const setKey = async (who: Account, options: { provider?: string; apiKey?: string; fallback?: boolean } = {}) =>
  (await h.gql(SET_KEY, { provider: options.provider ?? 'byok-acme', apiKey: options.apiKey ?? OWN_KEY, fallback: options.fallback ?? true }, who.key)).body;
const listKeys = async (who: Account) => (await h.gql('{ me { byokKeys { provider hint origin fallbackToShared status problem } } }', {}, who.key)).body.data.me.byokKeys;

const chatOk = async (who: Account, body: Record<string, unknown> = {}) => {
  const res = await h.chat(who.key, { model: MODEL, messages: hi, ...body });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as { id: string; provider: string; usage: { cost: number; is_byok: boolean; cost_details: { upstream_inference_cost: number | null } } };
};

const setProviderByok = async (key: string, provider: string, allowed: boolean) =>
  (await h.gql(`mutation ($p: String!, $a: Boolean!) { setProviderByok(provider: $p, allowed: $a) { ... on Provider { slug byok } ... on DomainError { code message } } }`, { p: provider, a: allowed }, key)).body;

beforeAll(async () => {
  h = await startGatewayHarness();
  acme = await startFakeProvider('openai');
  acme.setDefault({ text: 'ok', usage: USAGE });
  h.fakes.push(acme);
  await h.fakeEndpoint({ protocol: 'openai', slug: 'byok-acme', model: MODEL, prices: PRICES, reuse: acme });
  expect(await setProviderByok(ADMIN_KEY, 'byok-acme', true)).toEqual({ data: { setProviderByok: { slug: 'byok-acme', byok: true } } });
  other = await startFakeProvider('openai');
  other.setDefault({ text: 'other', usage: USAGE });
  h.fakes.push(other);
  // Dearer: the default route prefers byok-acme.
  await h.fakeEndpoint({ protocol: 'openai', slug: 'byok-other', model: MODEL, prices: { prompt: 2_000, completion: 4_000 }, reuse: other });
});

afterAll(async () => {
  await h?.stop();
});

describe('an account with its own key for a provider', () => {
  it("sends the account's key to the upstream, and the provider's shared key for everyone else", async () => {
    const own = await account();
    const shared = await account();
    const set = await setKey(own);
    expect(set.data.setByokKey.byokKeys).toEqual([
      { provider: 'byok-acme', hint: `…${OWN_KEY.slice(-4)}`, origin: new URL(acme.url).origin, fallbackToShared: true, createdAt: expect.any(String), status: 'ACTIVE', problem: null },
    ]);
    expect(await authorizationsDuring(acme, () => chatOk(own))).toEqual([`Bearer ${OWN_KEY}`]);
    expect(await authorizationsDuring(acme, () => chatOk(shared))).toEqual([`Bearer ${FAKE_API_KEY}`]);
  });

  it('is tried first, ahead of provider.order and price sorting', async () => {
    const own = await account();
    await setKey(own);
    const sent = await authorizationsDuring(acme, async () => {
      const answer = await chatOk(own, { provider: { order: ['byok-other'] } });
      expect(answer.provider).toBe('byok-acme');
    });
    expect(sent).toEqual([`Bearer ${OWN_KEY}`]);

    // On a dearer provider too, and it is the one endpoint allow_fallbacks: false leaves.
    expect(await setProviderByok(ADMIN_KEY, 'byok-other', true)).toMatchObject({ data: { setProviderByok: { byok: true } } });
    const dear = await account();
    await setKey(dear, { provider: 'byok-other' });
    const toOther = await authorizationsDuring(other, async () => {
      expect((await chatOk(dear, { provider: { allow_fallbacks: false } })).provider).toBe('byok-other');
    });
    expect(toOther).toEqual([`Bearer ${OWN_KEY}`]);
  });

  it('is charged the fee on the list price, exactly, with is_byok and the upstream cost on REST (whole and streamed) and the generation record', async () => {
    const own = await account(1_000_000_000);
    await setKey(own);
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: own.key });
    const answer = (await client.chat.completions.create({ model: MODEL, messages: hi })) as unknown as { id: string; usage: Record<string, any> };
    expect(answer.usage).toMatchObject({ cost: FEE / 1e9, is_byok: true, cost_details: { upstream_inference_cost: LIST / 1e9 } });

    const streamed = await h.chat(own.key, { model: MODEL, messages: hi, stream: true });
    const { events, done } = await readSseResponse(streamed);
    expect(done).toBe(true);
    const last = events.findLast((e) => e.usage);
    expect(last.usage).toMatchObject({ cost: FEE / 1e9, is_byok: true, cost_details: { upstream_inference_cost: LIST / 1e9 } });

    const balance = await h.settledBalance(own.accountId);
    expect(balance.settled).toBe(2 * FEE);
    expect(balance.available).toBe(1_000_000_000 - 2 * FEE);
    const record = await h.generation(own.key, answer.id);
    expect(record).toMatchObject({ is_byok: true, upstream_inference_cost: LIST / 1e9, total_cost: FEE / 1e9, usage: FEE / 1e9, provider_name: 'byok-acme' });
    expect(record.switchyard).toMatchObject({ cost_nanodollars: FEE, upstream_inference_cost_nanodollars: LIST });
    const graphql = (await h.gql('query ($id: ID!) { generation(id: $id) { cost isByok upstreamCost } }', { id: answer.id }, own.key)).body;
    expect(graphql.data.generation).toEqual({ cost: FEE, isByok: true, upstreamCost: LIST });

    // The ledger's settlement names the BYOK call and carries the list price.
    const settled = (await h.running.core.eventStore.readStream(ledgerStream(own.accountId))).filter((e) => e.type === 'ReservationSettled') as unknown as LedgerEvent[];
    expect(settled.map((e) => e.type === 'ReservationSettled' && [e.data.actual, e.data.byok])).toEqual([
      [FEE, { upstreamCost: LIST, inKeyLimit: 0 }],
      [FEE, { upstreamCost: LIST, inKeyLimit: 0 }],
    ]);

    // An account without a key pays the list price for the same call.
    const plain = await account(1_000_000_000);
    const full = await chatOk(plain);
    expect(full.usage).toMatchObject({ cost: LIST / 1e9, is_byok: false, cost_details: { upstream_inference_cost: null } });
    expect((await h.settledBalance(plain.accountId)).settled).toBe(LIST);
  });
});

describe('when the own key fails', () => {
  it("falls back to the provider's shared key (charged in full) when fallbackToShared is true", async () => {
    const own = await account();
    await setKey(own, { fallback: true });
    acme.script({ status: 500 });
    let answer!: Awaited<ReturnType<typeof chatOk>>;
    expect(await authorizationsDuring(acme, async () => (answer = await chatOk(own)))).toEqual([`Bearer ${OWN_KEY}`, `Bearer ${FAKE_API_KEY}`]);
    expect(answer.usage).toMatchObject({ cost: LIST / 1e9, is_byok: false });
    expect((await h.settledBalance(own.accountId)).settled).toBe(LIST);
  });

  it("never uses the provider's shared key when fallbackToShared is false, but still other providers", async () => {
    const own = await account();
    await setKey(own, { fallback: false });
    acme.script({ status: 500 });
    let answer!: Awaited<ReturnType<typeof chatOk>>;
    const toOther = await authorizationsDuring(other, async () => {
      expect(await authorizationsDuring(acme, async () => (answer = await chatOk(own)))).toEqual([`Bearer ${OWN_KEY}`]);
    });
    expect(toOther).toEqual([`Bearer ${FAKE_API_KEY}`]);
    expect(answer.provider).toBe('byok-other');

    // Kept to the provider alone, it fails rather than use the shared key.
    acme.script({ status: 500 });
    acme.script({ status: 500 });
    const sent = await authorizationsDuring(acme, async () => {
      const res = await h.chat(own.key, { model: MODEL, messages: hi, provider: { only: ['byok-acme'] } });
      expect(res.status).toBeGreaterThanOrEqual(500);
    });
    expect(sent).toEqual([`Bearer ${OWN_KEY}`, `Bearer ${OWN_KEY}`]);
    expect((await h.settledBalance(own.accountId)).reserved).toBe(0);
  });

  it('keeps to the provider ignore and only lists', async () => {
    const own = await account();
    await setKey(own);
    const sent = await authorizationsDuring(acme, async () => {
      expect((await chatOk(own, { provider: { ignore: ['byok-acme'] } })).provider).toBe('byok-other');
    });
    expect(sent).toEqual([]);
  });
});

describe('the trust boundary', () => {
  it('lets only an admin make a provider BYOK-capable, and takes keys only for such providers', async () => {
    const owner = await h.openAccount({ roles: ['user', 'provider'], credits: 1_000_000_000 });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'byok-tenant', model: 'byok-tenant/chat', prices: PRICES, owner: owner.key });
    const refused = await setProviderByok(owner.key, 'byok-tenant', true);
    expect(refused.data?.setProviderByok ?? null).toBeNull();
    expect(JSON.stringify(refused.errors ?? refused.data)).toMatch(/FORBIDDEN|admin/i);
    const user = await account();
    expect((await setKey(user, { provider: 'byok-tenant' })).data.setByokKey).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('does not take keys of its own') });
    expect((await setKey(user, { provider: 'switchyard' })).data.setByokKey).toMatchObject({ code: 'VALIDATION' });
  });

  it('never sends a key to an origin the provider moved its endpoints to after the key was set', async () => {
    const recorder = await startFakeProvider('openai');
    recorder.setDefault({ text: 'recorded', usage: USAGE });
    h.fakes.push(recorder);
    const owner = await h.openAccount({ roles: ['user', 'provider'] });
    await h.fakeEndpoint({ protocol: 'openai', slug: 'byok-mover', model: 'byok-mover/chat', prices: PRICES, owner: owner.key, reuse: acme });
    await setProviderByok(ADMIN_KEY, 'byok-mover', true);
    const withFallback = await account();
    const strict = await account();
    await setKey(withFallback, { provider: 'byok-mover' });
    await setKey(strict, { provider: 'byok-mover', fallback: false });

    // The provider (another tenant) points its endpoints at a server that records headers.
    const moved = await h.gql(
      `mutation ($b: String!) { setProviderBaseUrl(provider: "byok-mover", baseUrl: $b) { ... on Provider { slug baseUrl } ... on DomainError { code message } } }`,
      { b: recorder.baseUrl },
      owner.key,
    );
    expect(moved.body.data.setProviderBaseUrl).toEqual({ slug: 'byok-mover', baseUrl: recorder.baseUrl });

    const sent = await authorizationsDuring(recorder, async () => {
      const answer = await chatOk(withFallback, { model: 'byok-mover/chat' });
      expect(answer.usage).toMatchObject({ is_byok: false, cost: LIST / 1e9 });
      const res = await h.chat(strict.key, { model: 'byok-mover/chat', messages: hi });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain('fallbackToShared: false');
    });
    expect(sent).toEqual([`Bearer ${FAKE_API_KEY}`]);
    expect(recorder.requests.some((r) => JSON.stringify(r).includes(OWN_KEY))).toBe(false);
    // Moved by its owner to another origin, the provider lost the admin's allowance: no key is set for it until an
    // admin looks at the new origin and allows it again.
    expect(await listKeys(withFallback)).toEqual([expect.objectContaining({ provider: 'byok-mover', origin: new URL(acme.url).origin, status: 'PROVIDER_NOT_ALLOWED' })]);
    expect((await setKey(withFallback, { provider: 'byok-mover' })).data.setByokKey).toMatchObject({ code: 'VALIDATION' });
    await setProviderByok(ADMIN_KEY, 'byok-mover', true);
    expect(await listKeys(withFallback)).toEqual([
      expect.objectContaining({ provider: 'byok-mover', origin: new URL(acme.url).origin, status: 'NEEDS_CONFIRMATION', problem: expect.stringContaining(new URL(recorder.url).origin) }),
    ]);

    // Set again, the key is bound to the new origin and goes there.
    expect((await setKey(withFallback, { provider: 'byok-mover' })).data.setByokKey.byokKeys[0]).toMatchObject({ origin: new URL(recorder.url).origin, status: 'ACTIVE' });
    expect(await authorizationsDuring(recorder, () => chatOk(withFallback, { model: 'byok-mover/chat' }))).toEqual([`Bearer ${OWN_KEY}`]);
  });

  it('never shows the key: not in answers, listings, errors, records or events', async () => {
    const own = await account();
    const answers = [JSON.stringify(await setKey(own)), JSON.stringify(await listKeys(own))];
    answers.push(JSON.stringify(await setKey(own, { apiKey: `${OWN_KEY} with a space` })));
    answers.push(JSON.stringify(await setKey(own, { provider: 'no-such-provider' })));
    const res = await h.chat(own.key, { model: MODEL, messages: hi });
    answers.push(await res.text());
    const { id } = JSON.parse(answers.at(-1)!) as { id: string };
    answers.push(JSON.stringify(await h.generation(own.key, id)));
    answers.push(JSON.stringify((await h.gql(`{ generation(id: "${id}") { id cost } }`, {}, own.key)).body));
    answers.push(await (await fetch(`${h.url}/api/v1/key`, { headers: { authorization: `Bearer ${own.key}` } })).text());
    answers.push(JSON.stringify((await h.gql('{ accounts(first: 100) { edges { node { byokKeys { hint origin } } } } }', {}, ADMIN_KEY)).body));
    for (const answer of answers) expect(answer).not.toContain(OWN_KEY);
    expect(answers.join('\n')).not.toContain(OWN_KEY.slice(0, 12));
    const events = await h.running.core.eventStore.readAll();
    expect(JSON.stringify(events)).not.toContain(OWN_KEY);
    expect(JSON.stringify(events)).toContain('ByokKeySet');
  });
});

describe('an upstream that quotes the credentials it received back in its error', () => {
  /** What many OpenAI-compatible servers answer a refused key with: the Authorization header as received. */
  const echo = (status: number, authorization: string) => ({
    status,
    body: { error: { message: `Incorrect API key provided: ${authorization}. You can find your API key at https://example.invalid/keys.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
  });
  const everythingSaid = async (who: Account, res: Response) => {
    const text = await res.text();
    const id = res.headers.get('x-generation-id')!;
    const record = JSON.stringify(await h.generation(who.key, id));
    const admin = JSON.stringify((await h.gql(`{ generation(id: "${id}") { id attempts error } }`, {}, ADMIN_KEY)).body);
    const events = JSON.stringify(await h.running.core.eventStore.readAll());
    return { text, record, all: [text, record, admin, events].join('\n') };
  };

  it("never passes the account's own key on: not in the answer, the record or the events, whole or streamed (its last four characters name it)", async () => {
    const own = await account();
    await setKey(own, { fallback: false });
    // A refused own key is not tried again (and, without fallbackToShared, nothing else is).
    acme.script(echo(401, `Bearer ${OWN_KEY}`));
    const whole = await everythingSaid(own, await h.chat(own.key, { model: MODEL, messages: hi, provider: { only: ['byok-acme'] } }));
    expect(whole.text).toContain(`Incorrect API key provided: Bearer …${OWN_KEY.slice(-4)}`);
    // The key refused is the account's own, and the answer says so (not "Switchyard's credentials").
    expect(JSON.parse(whole.text).error.message).toMatch(/^\S+ refused your own provider key \(BYOK\) for it: check it, or replace it with setByokKey /);
    expect(whole.all).not.toContain(OWN_KEY);
    // A 400 passes the upstream's message on to the client; streamed, the error comes before any token.
    acme.script(echo(400, `Bearer ${OWN_KEY}`));
    const streamed = await everythingSaid(own, await h.chat(own.key, { model: MODEL, messages: hi, stream: true, provider: { only: ['byok-acme'] } }));
    expect(streamed.text).toContain(`Bearer …${OWN_KEY.slice(-4)}`);
    expect(streamed.all).not.toContain(OWN_KEY);
  });

  it("never passes the provider's shared key on either, nor text shaped like a key that Switchyard did not send", async () => {
    const shared = await account();
    acme.script(echo(400, `Bearer ${FAKE_API_KEY}; also tried sk-proj-0123456789abcdefghij and key=AIzaSyA0123456789abcdefghijklmnopqrstu`));
    const said = await everythingSaid(shared, await h.chat(shared.key, { model: MODEL, messages: hi, provider: { only: ['byok-acme'] } }));
    expect(said.text).toContain('Incorrect API key provided: Bearer …-key; also tried …ghij and key=…rstu');
    for (const secret of [FAKE_API_KEY, 'sk-proj-0123456789abcdefghij', 'AIzaSyA0123456789abcdefghijklmnopqrstu']) expect(said.all).not.toContain(secret);
    // Refused on the provider's shared key, the credentials are Switchyard's.
    acme.script(echo(401, `Bearer ${FAKE_API_KEY}`));
    const refused = await h.chat(shared.key, { model: MODEL, messages: hi, provider: { only: ['byok-acme'] } });
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/^\S+ refused Switchyard's credentials for it /);
  });
});

describe('include_byok_in_limit', () => {
  const keyReport = async (key: string) => ((await (await fetch(`${h.url}/api/v1/key`, { headers: { authorization: `Bearer ${key}` } })).json()) as { data: Record<string, any> }).data;
  const CREATE = `mutation ($accountId: ID, $limit: Money, $include: Boolean) {
    createApiKey(name: "limited", accountId: $accountId, limit: $limit, limitReset: NEVER, includeByokInLimit: $include) { ... on CreatedApiKey { secret key { id includeByokInLimit } } ... on DomainError { code message } } }`;

  it('counts only the fee against a key by default, the list price too when set; /api/v1/key reports byok_usage from the events', async () => {
    const own = await account();
    await setKey(own);
    const made = async (include: boolean) => (await h.gql(CREATE, { accountId: own.accountId, limit: 1_000_000_000, include }, ADMIN_KEY)).body.data.createApiKey;
    const feeOnly = await made(false);
    const withList = await made(true);
    expect(withList.key.includeByokInLimit).toBe(true);
    for (const key of [feeOnly.secret, withList.secret]) {
      const res = await h.chat(key, { model: MODEL, messages: hi });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    await h.settledBalance(own.accountId);
    expect(await keyReport(feeOnly.secret)).toMatchObject({ include_byok_in_limit: false, usage_nanos: FEE, byok_usage_nanos: LIST, byok_usage: LIST / 1e9, byok_usage_daily: LIST / 1e9, limit_remaining_nanos: 1_000_000_000 - FEE });
    expect(await keyReport(withList.secret)).toMatchObject({ include_byok_in_limit: true, usage_nanos: FEE + LIST, byok_usage_nanos: LIST, byok_usage_monthly: LIST / 1e9, limit_remaining_nanos: 1_000_000_000 - FEE - LIST });

    // The billing audit replays the ledger and finds the read models (usage rows with their BYOK list price) agree.
    await h.running.core.gateway.idle();
    const audit = (await h.gql('query ($id: ID) { billingAudit(accountId: $id) { ok differences { model field expected actual } } }', { id: own.accountId }, ADMIN_KEY)).body;
    expect(audit.data.billingAudit).toEqual({ ok: true, differences: [] });

    // The numbers are the ledger's events folded: replaying the account's stream gives them again.
    let state = ledgerDecider.initialState();
    for (const event of await h.running.core.eventStore.readStream(ledgerStream(own.accountId))) state = ledgerDecider.evolve(state, event as unknown as LedgerEvent);
    expect(state.byokKeys.get(withList.key.id)?.lifetime).toBe(LIST);
    expect(state.keys.get(withList.key.id)?.lifetime).toBe(FEE + LIST);
    expect(state.keys.get(feeOnly.key.id)?.lifetime).toBe(FEE);
  });

  it("refuses a call whose list price would pass the key's limit only when the key includes BYOK", async () => {
    const own = await account();
    await setKey(own, { fallback: false });
    // max_tokens 100: the worst case is 14 (the prompt's most tokens) × 1,000 + 100 × 3,001 = 314,100 list, a fee of 15,705.
    const limit = 100_000;
    const made = async (include: boolean) => (await h.gql(CREATE, { accountId: own.accountId, limit, include }, ADMIN_KEY)).body.data.createApiKey.secret as string;
    const body = { model: MODEL, messages: hi, max_tokens: 100, provider: { only: ['byok-acme'] } };
    expect((await h.chat(await made(false), body)).status).toBe(200);
    const refused = await h.chat(await made(true), body);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { metadata: { limit_source: string } } }).error.metadata.limit_source).toBe('key_limit');

    // Through the management API: the flag is set, read back, and changed.
    const management = (await h.gql(`mutation ($a: ID) { createApiKey(name: "m", kind: MANAGEMENT, accountId: $a) { ... on CreatedApiKey { secret } } }`, { a: own.accountId }, ADMIN_KEY)).body.data.createApiKey.secret as string;
    const api = (method: string, path: string, payload?: unknown) =>
      fetch(`${h.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${management}`, 'content-type': 'application/json' }, ...(payload !== undefined && { body: JSON.stringify(payload) }) });
    const created = (await (await api('POST', '/keys', { name: 'rest', include_byok_in_limit: true })).json()) as { data: { hash: string; include_byok_in_limit: boolean } };
    expect(created.data.include_byok_in_limit).toBe(true);
    const patched = (await (await api('PATCH', `/keys/${created.data.hash}`, { include_byok_in_limit: false })).json()) as { data: { include_byok_in_limit: boolean; byok_usage: number } };
    expect(patched.data).toMatchObject({ include_byok_in_limit: false, byok_usage: 0 });
  });
});

describe('concurrency', () => {
  it('never overspends: many parallel BYOK calls on an account with little credit', async () => {
    // max_tokens 50: each call may cost up to 14 (the prompt's most tokens: 2 bytes, 4 for the message, 8 for the reply)
    // × 1,000 + 50 × 3,001 = 164,050 list, a fee of 8,203 (8,202.5 rounded up). Credit for 5 at once.
    const worstFee = 8_203;
    expect(worstFee).toBe(Math.ceil(((promptBound(hi) * 1_000 + 50 * 3_001) * 5) / 100));
    const credits = 5 * worstFee + 100;
    const own = await account(credits);
    await setKey(own, { fallback: false });
    acme.setDefault({ text: 'ok', usage: USAGE, latencyMs: 30 });
    try {
      const results = await Promise.all(Array.from({ length: 30 }, () => h.chat(own.key, { model: MODEL, messages: hi, max_tokens: 50, provider: { only: ['byok-acme'] } })));
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
      expect(statuses.every((s) => s === 200 || s === 402)).toBe(true);
      const costs = await Promise.all(results.filter((r) => r.status === 200).map(async (r) => ((await r.json()) as { usage: { cost: number } }).usage.cost));
      const balance = await h.settledBalance(own.accountId);
      expect(balance.reserved).toBe(0);
      expect(balance.available).toBeGreaterThanOrEqual(0);
      expect(balance.settled).toBe(costs.length * FEE);
      expect(balance.settled).toBeLessThanOrEqual(credits);
      expect(balance.uncollected).toBe(0);
    } finally {
      acme.setDefault({ text: 'ok', usage: USAGE });
    }
  });
});

/**
 * The write budget (WRITES_PER_MINUTE): what an account may change through the API in a minute, over GraphQL (HTTP and
 * graphql-ws, each mutation field one change, every alias counted) and REST (key and preset changes). Past it a request
 * is refused whole with RATE_LIMITED and writes nothing; model calls, reads, other accounts and admins go on.
 */
import { createClient } from 'graphql-ws';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PER_MINUTE = 60;

let h: GatewayHarness;

const UPDATE = `{ __typename ... on Preset { version } ... on DomainError { code message } }`;
/** One operation updating the preset `n` times (aliases u0, u1, …), each with its own temperature. */
const updates = (n: number, from = 0) =>
  `mutation { ${Array.from({ length: n }, (_, i) => `u${i}: updatePreset(slug: "p", config: { model: "test/budget", temperature: ${((from + i) % 100) / 100} }) ${UPDATE}`).join(' ')} }`;
const preset = async (who: Account) => (await h.gql(`{ presets { slug version } }`, {}, who.key)).body.data.presets.find((p: { slug: string }) => p.slug === 'p');

const freshAccount = async (name: string) => {
  const who = await h.openAccount({ credits: 1_000_000_000, name });
  const made = await h.gql(`mutation { createPreset(slug: "p", name: "P", config: { model: "test/budget" }) ${UPDATE} }`, {}, who.key);
  expect(made.body.data.createPreset).toMatchObject({ __typename: 'Preset', version: 1 });
  return who;
};

/** Spends what is left of the account's minute (one change went on createPreset). */
const spendAll = async (who: Account) => {
  const left = PER_MINUTE - 1;
  for (let done = 0; done < left; ) {
    const n = Math.min(30, left - done);
    const res = await h.gql(updates(n, done), {}, who.key);
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    done += n;
  }
  expect((await preset(who)).version).toBe(PER_MINUTE);
};

const expectRefused = (body: { data?: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] }) => {
  expect(body.data ?? null).toBeNull();
  expect(body.errors).toHaveLength(1);
  const extensions = body.errors![0]!.extensions;
  expect(extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'write_rate', limit: PER_MINUTE });
  expect(extensions['retry_after_ms']).toBeGreaterThan(0);
  expect(extensions['retry_after_ms']).toBeLessThanOrEqual(60_000);
  expect(body.errors![0]!.message).toMatch(/at most 60 changes a minute/);
};

beforeAll(async () => {
  h = await startGatewayHarness({ WRITES_PER_MINUTE: String(PER_MINUTE) });
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'fake-budget', model: 'test/budget', prices: { prompt: 100, completion: 100 } });
  fake.setDefault({ usage: { promptTokens: 5, completionTokens: 5 } });
});
afterAll(async () => {
  await h?.stop();
});

describe('GraphQL mutations', () => {
  it('past the budget a mutation is refused and writes nothing; reads, model calls and other accounts go on', async () => {
    const alice = await freshAccount('alice');
    const bob = await freshAccount('bob');
    await spendAll(alice);

    const refused = await h.gql(updates(1, 7), {}, alice.key);
    expectRefused(refused.body);
    expect((await preset(alice)).version).toBe(PER_MINUTE);

    // A model call is billed, not budgeted: through GraphQL and REST alike.
    const sent = await h.gql(`mutation { sendPrompt(input: { model: "test/budget", messages: [{ role: USER, content: "hi" }] }) { __typename ... on SendPromptResult { completion } ... on DomainError { code message } } }`, {}, alice.key);
    expect(sent.body.data.sendPrompt.__typename, JSON.stringify(sent.body)).toBe('SendPromptResult');
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: alice.key, maxRetries: 0 });
    expect((await client.chat.completions.create({ model: 'test/budget', messages: [{ role: 'user', content: 'hi' }] })).choices).toHaveLength(1);

    // Another account's minute is its own; an admin has none.
    expect((await h.gql(updates(3), {}, bob.key)).body.data.u2).toMatchObject({ __typename: 'Preset', version: 4 });
    expect((await h.gql(`mutation { createPreset(slug: "p", name: "P", config: { model: "test/budget" }) ${UPDATE} }`, {}, ADMIN_KEY)).body.errors).toBeUndefined();
    for (let i = 0; i < 3; i++) expect((await h.gql(updates(30, i * 30), {}, ADMIN_KEY)).body.errors).toBeUndefined();
    const adminPreset = (await h.gql(`{ presets { slug version } }`, {}, ADMIN_KEY)).body.data.presets.find((p: { slug: string }) => p.slug === 'p');
    expect(adminPreset.version).toBe(91);
  });

  it('an operation needing more than is left is refused whole; every alias counts, a skipped field does not', async () => {
    const carol = await freshAccount('carol');
    // 1 + 49 spent: 10 left.
    expect((await h.gql(updates(30), {}, carol.key)).body.errors).toBeUndefined();
    expect((await h.gql(updates(19, 30), {}, carol.key)).body.errors).toBeUndefined();
    expect((await preset(carol)).version).toBe(50);

    expectRefused((await h.gql(updates(11), {}, carol.key)).body);
    expect((await preset(carol)).version).toBe(50);

    // Skipped: not run, not counted. 10 fields run, of 12 written.
    const skipping = `mutation ($no: Boolean!) { a: updatePreset(slug: "p", config: { model: "test/budget" }) @skip(if: $no) ${UPDATE} b: updatePreset(slug: "p", config: { model: "test/budget" }) @include(if: false) ${UPDATE} ${updates(10).slice('mutation { '.length, -2)} }`;
    const ran = await h.gql(skipping, { no: true }, carol.key);
    expect(ran.body.errors, JSON.stringify(ran.body.errors)).toBeUndefined();
    expect((await preset(carol)).version).toBe(60);
    expectRefused((await h.gql(updates(1), {}, carol.key)).body);
  });

  it('over graphql-ws too', async () => {
    const dave = await freshAccount('dave');
    await spendAll(dave);
    const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${dave.key}` } });
    try {
      const result = await new Promise<{ data?: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] }>((resolve, reject) => {
        let last: unknown;
        client.subscribe({ query: updates(1) }, { next: (value) => (last = value), error: reject, complete: () => resolve(last as never) });
      });
      expectRefused(result);
    } finally {
      await client.dispose();
    }
    expect((await preset(dave)).version).toBe(PER_MINUTE);
  });
});

describe('REST changes', () => {
  it("a key's and a preset's changes take from the same minute: 429 with Retry-After, nothing written", async () => {
    const erin = await freshAccount('erin');
    const management = (await h.gql(`mutation { createApiKey(name: "provisioning", kind: MANAGEMENT) { ... on CreatedApiKey { secret } } }`, {}, erin.key)).body.data.createApiKey.secret as string;
    // Keys are changed with the management key, presets saved with an inference key: one account's minute.
    const rest = (method: string, path: string, body: unknown) =>
      fetch(`${h.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${path.startsWith('/keys') ? management : erin.key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const made = await rest('POST', '/keys', { name: 'second' });
    expect(made.status).toBe(201);
    const { data: key } = (await made.json()) as { data: { hash: string } };
    // 1 (createPreset) + 1 (the management key) + 1 (the key) + 56 + 1 (the rename below) = 60.
    expect((await h.gql(updates(30), {}, erin.key)).body.errors).toBeUndefined();
    expect((await h.gql(updates(26, 30), {}, erin.key)).body.errors).toBeUndefined();
    expect((await rest('PATCH', `/keys/${key.hash}`, { name: 'renamed' })).status).toBe(200);

    for (const [method, path, body] of [
      ['PATCH', `/keys/${key.hash}`, { name: 'again' }],
      ['DELETE', `/keys/${key.hash}`, undefined],
      ['POST', '/keys', { name: 'third' }],
      ['POST', '/presets/p/chat/completions', { model: 'test/budget', temperature: 0.9, messages: [] }],
    ] as const) {
      const res = await rest(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/at most 60 changes a minute/);
    }
    const keys = (await (await fetch(`${h.url}/api/v1/keys`, { headers: { authorization: `Bearer ${management}` } })).json()) as { data: { name: string; disabled: boolean }[] };
    const names = keys.data.map((k) => k.name);
    expect(names).toContain('renamed');
    expect(names).not.toContain('again');
    expect(names).not.toContain('third');
    expect((await preset(erin)).version).toBe(57);
  });
});

describe('REST table entries and runs', () => {
  it('an entry added and a run started with a key take from the minute, as insertEntry and runWorkflow do', async () => {
    const frank = await h.openAccount({ roles: ['user', 'designer'], name: 'frank' });
    expect((await h.gql(`mutation { createTable(name: "inbox") { __typename } }`, {}, frank.key)).body.data.createTable.__typename).toBe('Table');
    const definition = { name: 'Echo', trigger: { type: 'manual' }, steps: [{ key: 'echo', type: 'action.transform', input: { expression: '=trigger.body' } }] };
    const workflow = (await h.gql(`mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }`, { d: definition }, frank.key)).body.data.createWorkflow.id as string;
    const post = (path: string, body: unknown) =>
      fetch(`${h.url}/api/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${frank.key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // 2 spent above; 57 entries and 1 run make 60.
    for (let i = 0; i < 57; i++) expect((await post('/tables/inbox/entries', { i })).status).toBe(201);
    expect((await post(`/workflows/${workflow}/runs`, { n: 1 })).status).toBe(202);

    const entry = await post('/tables/inbox/entries', { i: 57 });
    expect(entry.status).toBe(429);
    expect(Number(entry.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await post(`/workflows/${workflow}/runs`, { n: 2 })).status).toBe(429);
    expect((await h.gql(`{ tables { name entryCount } }`, {}, frank.key)).body.data.tables).toEqual([{ name: 'inbox', entryCount: 57 }]);
    const runs = (await h.gql('query ($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id } } } }', { id: workflow }, frank.key)).body.data.workflowRuns.edges;
    expect(runs).toHaveLength(1);
  });
});

describe("a workflow's webhook", () => {
  it("starts at most the budget's runs a minute, counted per workflow: its owner's own changes (rotating the secret) go on", async () => {
    const gina = await h.openAccount({ roles: ['user', 'designer'], name: 'gina' });
    const definition = { name: 'Hook', trigger: { type: 'webhook', respond: 'async' }, steps: [{ key: 'echo', type: 'action.transform', input: { expression: '=trigger.body' } }] };
    const workflow = (await h.gql(`mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }`, { d: definition }, gina.key)).body.data.createWorkflow.id as string;
    const rotate = async () => (await h.gql(`mutation ($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } ... on DomainError { code } } }`, { id: workflow }, gina.key)).body.data.rotateWebhookSecret;
    const secret = (await rotate()).secret as string;
    expect((await h.gql(`mutation ($id: ID!) { enableWorkflow(id: $id) { __typename } }`, { id: workflow }, gina.key)).body.data.enableWorkflow.__typename).toBe('Workflow');
    const hook = (n: number) =>
      fetch(`${h.url}/api/v1/workflows/${workflow}/webhook`, { method: 'POST', headers: { 'x-switchyard-webhook-secret': secret, 'content-type': 'application/json' }, body: JSON.stringify({ n }) });
    for (let i = 0; i < PER_MINUTE; i++) expect((await hook(i)).status).toBe(202);
    const refused = await hook(PER_MINUTE);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/webhook starts at most 60 runs a minute/);
    // The owner's minute is its own: 3 changes so far, the new secret is the fourth.
    expect((await rotate()).secret).toMatch(/./);
    const runs = (await h.gql('query ($id: ID!) { workflowRuns(workflowId: $id, first: 100) { edges { node { id } } } }', { id: workflow }, gina.key)).body;
    expect(runs.data.workflowRuns.edges, JSON.stringify(runs.errors)).toHaveLength(PER_MINUTE);
  });
});

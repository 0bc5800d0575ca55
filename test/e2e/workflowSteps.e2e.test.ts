/**
 * The workflow step runners of searches and actions, built from the started app's own pieces (the catalog and
 * generations APIs, the gateway's outbound policy) and called as the executor will call them: models searched
 * through the catalog's listing, a model call billed once per idempotency key, HTTP through the outbound policy.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/modules/auth/principal.js';
import { createOutboundPolicy } from '../../src/modules/outbound/outboundPolicy.js';
import { createStepRunners } from '../../src/modules/workflows/steps/index.js';
import { stepGenerationId } from '../../src/modules/workflows/steps/model.js';
import { StepError, type StepContext, type StepRunners } from '../../src/modules/workflows/steps/step.js';
import { newId } from '../../src/ids.js';
import { wholeAnswer } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let runners: StepRunners;
/** The same runners with HTTP calls cut after 500 ms, for the call that never answers. */
let hurried: StepRunners;
let user: Account;
let target: { url: string; requests: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[]; close(): Promise<void> };

/** A local HTTP target: answers by path, records what it received. */
const startTarget = async () => {
  const requests: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      switch (req.url) {
        case '/json':
          return json(200, { answer: 42, items: ['a', 'b'] });
        case '/created':
          return json(201, { ok: true, received: body === '' ? null : (JSON.parse(body) as unknown) });
        case '/html':
          return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not json</html>');
        case '/big':
          return json(200, { blob: 'x'.repeat(5000) });
        case '/redirect':
          return res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
        case '/missing':
          return json(404, { error: 'no such thing' });
        case '/broken':
          return json(503, { error: 'down for a moment' });
        case '/hang':
          return; // never answers
        default:
          return json(500, { error: 'unexpected path' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()),
  };
};

const principalOf = (account: Account): Principal => ({ accountId: account.accountId, keyId: account.keyId, roles: new Set(['user']) });

const contextFor = (account: Account, overrides: Partial<StepContext> = {}): StepContext => {
  const runId = newId('run');
  return { runId, workflowId: 'wf_steps', stepKey: 'answer', attempt: 1, idempotencyKey: `${runId}.answer.1`, principal: principalOf(account), budgetLeft: 1_000_000_000_000, signal: new AbortController().signal, ...overrides };
};

/** The StepError a runner failed with (the test fails if it succeeded or threw anything else). */
const stepError = async (promise: Promise<unknown>): Promise<StepError> => {
  const error = await promise.then(
    (result) => {
      throw new Error(`expected a StepError, got ${JSON.stringify(result)}`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StepError);
  return error as StepError;
};

/** What the emit and GitHub steps need (not exercised here). */
const newStepDeps = (core: typeof h.running.core) => ({ eventStore: core.eventStore, now: () => new Date(), secrets: core.modules.secrets, githubApiUrl: 'http://127.0.0.1:9' });

beforeAll(async () => {
  h = await startGatewayHarness(); // OUTBOUND_ALLOW=127.0.0.1, as the app harness sets it
  const core = h.running.core;
  // A long HTTP timeout where the target answers (a pause of a loaded host must not turn an answer into a TIMEOUT), a
  // short one for the call that never answers.
  const runnersWith = (timeoutMs: number) =>
    createStepRunners({ catalog: core.modules.catalog, generations: core.modules.generations, tables: core.modules.tables, outbound: core.gateway.upstream.policy, ...newStepDeps(core), httpLimits: { timeoutMs, maxResponseBytes: 1000 } });
  runners = runnersWith(30_000);
  hurried = runnersWith(500);
  user = await h.openAccount({ credits: 1_000_000_000 });
  target = await startTarget();
  await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-cheap', model: 'steps/cheap', prices: { prompt: 100, completion: 200 }, contextLength: 16_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-dear', model: 'steps/dear', prices: { prompt: 1000, completion: 2000 }, contextLength: 64_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-tiny', model: 'steps/tiny', prices: { prompt: 10, completion: 20 }, contextLength: 1000 });
});
afterAll(async () => {
  await target.close();
  await h.stop();
});

describe('search.models', () => {
  it('lists the matching models cheapest first, first being the cheapest', async () => {
    const { output, cost } = await runners['search.models']!({ search: 'steps/', minContextLength: 8000, sort: 'price' }, contextFor(user));
    expect(cost).toBe(0);
    const result = output as { items: { id: string; contextLength: number; prices: { prompt: number; completion: number }; providers: string[] }[]; first: { id: string } | null; count: number };
    expect(result.items.map((m) => m.id)).toEqual(['steps/cheap', 'steps/dear']);
    expect(result.first).toEqual(result.items[0]);
    expect(result.items[0]).toMatchObject({ id: 'steps/cheap', contextLength: 16_000, prices: { prompt: 100, completion: 200 }, providers: ['steps-cheap'] });
    expect(result.count).toBe(2);
  });

  it('filters by completion price and by provider through the same listing query', async () => {
    const byCompletion = (await runners['search.models']!({ search: 'steps/', maxCompletionPrice: 200 }, contextFor(user))).output as { items: { id: string }[] };
    expect(byCompletion.items.map((m) => m.id)).toEqual(['steps/tiny', 'steps/cheap']);
    const byProvider = (await runners['search.models']!({ provider: 'steps-dear' }, contextFor(user))).output as { items: { id: string }[] };
    expect(byProvider.items.map((m) => m.id)).toEqual(['steps/dear']);
  });

  it('finding nothing is a normal outcome: no items, first null', async () => {
    const { output } = await runners['search.models']!({ search: 'steps/', maxPromptPrice: 5 }, contextFor(user));
    expect(output).toEqual({ items: [], first: null, count: 0 });
  });

  it('refuses unknown criteria and sorts, naming the field, for good', async () => {
    const sort = await stepError(runners['search.models']!({ sort: 'cost' }, contextFor(user)));
    expect(sort).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(sort.message).toContain('input.sort');
    const unknown = await stepError(runners['search.models']!({ capabilities: ['telepathy'] }, contextFor(user)));
    expect(unknown.message).toContain('input.capabilities[0]');
    const extra = await stepError(runners['search.models']!({ maxPrice: 1 }, contextFor(user)));
    expect(extra.message).toContain('maxPrice');
  });
});

describe('action.model', () => {
  it('calls the model, streams its tokens, charges the account once; the same idempotency key answers the kept answer and never charges again', async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const tokens: string[] = [];
    const context = contextFor(account, { onProgress: (event) => tokens.push(event.content) });
    const { output, cost } = await runners['action.model']!({ model: 'switchyard/demo-paid', system: 'Be brief.', prompt: 'Hello workflow', maxTokens: 100 }, context);
    const answer = output as { text: string; model: string; provider: string; cost: number; generationId: string; usage: { prompt: number; completion: number } };
    expect(answer.text).toContain('Hello workflow');
    expect(tokens.join('')).toBe(answer.text);
    expect(tokens.length).toBeGreaterThan(1);
    expect(answer).toMatchObject({ model: 'switchyard/demo-paid', provider: 'Switchyard Demo', generationId: stepGenerationId(context.runId, context.idempotencyKey) });
    // The shape of every other generation id, ordered by the run's start.
    expect(answer.generationId).toMatch(/^gen-[0-9a-z]{9}[0-9a-f]{16}$/);
    expect(answer.generationId.slice(4, 13)).toBe(context.runId.slice(4, 13));
    expect(cost).toBeGreaterThan(0);
    expect(answer.cost).toBe(cost);

    // Again at once (the first call's record may still be on its way: the attempt waits for it), then again after
    // it was recorded (an executor resuming this attempt after a crash): the kept answer, no second call or charge.
    const again = { model: 'switchyard/demo-paid', system: 'Be brief.', prompt: 'Hello workflow', maxTokens: 100 };
    const early = await runners['action.model']!(again, { ...context, onProgress: () => tokens.push('again') });
    expect(early).toEqual({ output, cost });
    const balance = await h.settledBalance(account.accountId);
    expect(balance.settled).toBe(cost);
    expect(balance.reserved).toBe(0);
    expect(await runners['action.model']!(again, context)).toEqual({ output, cost });
    expect((await h.settledBalance(account.accountId)).settled).toBe(cost);
    expect(tokens).not.toContain('again');

    // The generation is the account's, under the derived id.
    const { body } = await h.gql(`query ($id: ID!) { generation(id: $id) { id status cost } }`, { id: answer.generationId }, account.key);
    expect(body.data.generation).toEqual({ id: answer.generationId, status: 'COMPLETED', cost });
  });

  it('makes a call again, under the next derived id, when the first died with its process: released or expired uncharged, never recorded', async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const context = contextFor(account);
    const first = stepGenerationId(context.runId, context.idempotencyKey);
    // What a process killed mid-call leaves: a reservation under the attempt's id, released (expired) at the next start.
    await h.running.core.ledger.reserve({ accountId: account.accountId, keyId: null, generationId: first, amount: 1_000, freeModel: false });
    await h.running.core.ledger.release({ accountId: account.accountId, generationId: first, reason: 'the process died' });
    const { output, cost } = await runners['action.model']!({ model: 'switchyard/demo-paid', prompt: 'Once more', maxTokens: 50 }, context);
    const answer = output as { text: string; generationId: string };
    expect(answer.text).toContain('Once more');
    expect(answer.generationId).toBe(stepGenerationId(context.runId, `${context.idempotencyKey}#1`));
    expect((await h.settledBalance(account.accountId)).settled).toBe(cost);
    // Resumed once more: the remade call's kept answer, not a third call.
    expect(await runners['action.model']!({ model: 'switchyard/demo-paid', prompt: 'Once more', maxTokens: 50 }, context)).toEqual({ output, cost });
    expect((await h.settledBalance(account.accountId)).settled).toBe(cost);
  });

  it('fails for good, without calling, when the call was charged but its answer never recorded', async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const context = contextFor(account);
    const first = stepGenerationId(context.runId, context.idempotencyKey);
    await h.running.core.ledger.reserve({ accountId: account.accountId, keyId: null, generationId: first, amount: 1_000, freeModel: false });
    await h.running.core.ledger.settle({ accountId: account.accountId, generationId: first, actual: 700, usage: null });
    const lost = await stepError(runners['action.model']!({ model: 'switchyard/demo-paid', prompt: 'Lost', maxTokens: 50 }, context));
    // Its charge is the attempt's, so the run's cost holds it (as the ledger and usage do).
    expect(lost).toMatchObject({ code: 'ANSWER_LOST', retryable: false, cost: 700 });
    expect(lost.message).toContain(first);
    expect((await h.settledBalance(account.accountId)).settled).toBe(700);
  });

  it('answers a recorded failure of the attempt as its outcome instead of calling again', async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const context = contextFor(account);
    const broken = await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-broken', model: 'steps/broken', prices: { prompt: 100, completion: 200 } });
    broken.script({ status: 400 });
    const failed = await stepError(runners['action.model']!({ model: 'steps/broken', prompt: 'Fail', maxTokens: 50 }, context));
    await h.settledBalance(account.accountId);
    const calls = broken.requests.length;
    // Resumed: the recorded failure, again, with no second call upstream.
    const recalled = await stepError(runners['action.model']!({ model: 'steps/broken', prompt: 'Fail', maxTokens: 50 }, context));
    expect(recalled).toMatchObject({ code: failed.code, retryable: failed.retryable });
    expect(recalled.message).toContain(stepGenerationId(context.runId, context.idempotencyKey));
    expect(broken.requests.length).toBe(calls);
  });

  it("fails the attempt with the error its provider ended the answer with mid-generation, charged as billed, and so again from its record when resumed", async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const context = contextFor(account);
    const midway = await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-midway', model: 'steps/midway', prices: { prompt: 100, completion: 200 } });
    // A whole answer (no onProgress: the call does not stream) with OpenRouter's choices[0].error.
    midway.script({ body: wholeAnswer('partial', 'error', { code: 503, message: 'died' }) });
    const failed = await stepError(runners['action.model']!({ model: 'steps/midway', prompt: 'Fail midway', maxTokens: 50 }, context));
    const generation = await h.generation(account.key, stepGenerationId(context.runId, context.idempotencyKey));
    expect(generation).toMatchObject({ finish_reason: 'error', switchyard: { status: 'completed', error: { status: 503 } } });
    expect(failed).toMatchObject({ code: 'NO_ENDPOINT', message: generation.switchyard.error.message, retryable: true, cost: 11 * 100 + 3 * 200 });
    expect((await h.settledBalance(account.accountId)).settled).toBe(11 * 100 + 3 * 200);
    const calls = midway.requests.length;
    // Resumed: the recorded answer's error, again, with no second call upstream and no second charge.
    const recalled = await stepError(runners['action.model']!({ model: 'steps/midway', prompt: 'Fail midway', maxTokens: 50 }, context));
    expect(recalled).toMatchObject({ code: failed.code, message: failed.message, retryable: true, cost: failed.cost });
    expect(midway.requests.length).toBe(calls);
    expect((await h.settledBalance(account.accountId)).settled).toBe(11 * 100 + 3 * 200);
  });

  it("resumed, retries a recorded failure as the live attempt did: a provider's 401 (a 502 to the client) not at all, mid-generation or before any token", async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const revoked = await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-revoked', model: 'steps/revoked', prices: { prompt: 100, completion: 200 } });
    const midway = contextFor(account);
    revoked.script({ body: wholeAnswer('partial', 'error', { code: 401, message: 'key revoked' }) });
    const live = await stepError(runners['action.model']!({ model: 'steps/revoked', prompt: 'Revoked midway', maxTokens: 50 }, midway));
    expect(live).toMatchObject({ retryable: false });
    expect((await h.generation(account.key, stepGenerationId(midway.runId, midway.idempotencyKey))).switchyard.error).toMatchObject({ status: 502 });
    expect(await stepError(runners['action.model']!({ model: 'steps/revoked', prompt: 'Revoked midway', maxTokens: 50 }, midway))).toMatchObject({ code: live.code, retryable: false });

    const before = contextFor(account);
    revoked.script({ status: 401 });
    const refused = await stepError(runners['action.model']!({ model: 'steps/revoked', prompt: 'Revoked before', maxTokens: 50 }, before));
    expect(refused).toMatchObject({ retryable: false });
    const calls = revoked.requests.length;
    expect(await stepError(runners['action.model']!({ model: 'steps/revoked', prompt: 'Revoked before', maxTokens: 50 }, before))).toMatchObject({ code: refused.code, retryable: false });
    expect(revoked.requests.length).toBe(calls);
  });

  it('fails the attempt on an answer whose finish reason only maps to "error" (Gemini\'s MALFORMED_FUNCTION_CALL): no error blames the endpoint, but it is no whole answer; retryable', async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const fumbling = await h.fakeEndpoint({ protocol: 'openai', slug: 'steps-fumbling', model: 'steps/fumbling', prices: { prompt: 100, completion: 200 } });
    fumbling.script({ body: wholeAnswer('half a call', 'MALFORMED_FUNCTION_CALL') });
    const context = contextFor(account);
    const failed = await stepError(runners['action.model']!({ model: 'steps/fumbling', prompt: 'Call a tool', maxTokens: 50 }, context));
    expect(failed).toMatchObject({ code: 'PROVIDER_ERROR', retryable: true, cost: 11 * 100 + 3 * 200, message: expect.stringContaining('finish reason "error"') });
    expect(await h.generation(account.key, stepGenerationId(context.runId, context.idempotencyKey))).toMatchObject({ finish_reason: 'error', native_finish_reason: 'MALFORMED_FUNCTION_CALL', switchyard: { error: null } });
  });

  it('calls the free demo model with messages', async () => {
    const { output, cost } = await runners['action.model']!({ models: ['switchyard/demo'], messages: [{ role: 'user', content: 'Free question' }] }, contextFor(user));
    expect((output as { text: string }).text).toContain('Free question');
    expect(cost).toBe(0);
  });

  it("refuses before the call when the reservation exceeds the run's budget: nothing reserved, nothing charged", async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    const error = await stepError(runners['action.model']!({ model: 'switchyard/demo-paid', prompt: 'Too dear', maxTokens: 500 }, contextFor(account, { budgetLeft: 1000 })));
    expect(error).toMatchObject({ code: 'BUDGET_EXCEEDED', retryable: false });
    expect(error.message).toMatch(/more than the 1000 its budget has left/);
    const balance = await h.settledBalance(account.accountId);
    expect(balance).toMatchObject({ settled: 0, reserved: 0 });
  });

  it('an account without credits fails the step for good (402)', async () => {
    const broke = await h.openAccount();
    const error = await stepError(runners['action.model']!({ model: 'switchyard/demo-paid', prompt: 'Hi', maxTokens: 100 }, contextFor(broke)));
    expect(error).toMatchObject({ code: 'INSUFFICIENT_CREDITS', retryable: false });
  });

  it('a provider error is retryable as the gateway says', async () => {
    const cheap = h.fakes[0]!; // steps/cheap's only provider
    cheap.setDefault({ status: 503 });
    try {
      const failed = await stepError(runners['action.model']!({ model: 'steps/cheap', prompt: 'Hi', maxTokens: 10 }, contextFor(user)));
      expect(failed.retryable).toBe(true);
      cheap.setDefault({ status: 400 });
      const bad = await stepError(runners['action.model']!({ model: 'steps/cheap', prompt: 'Hi', maxTokens: 10 }, contextFor(user)));
      expect(bad.retryable).toBe(false);
    } finally {
      cheap.setDefault({});
    }
  });

  it('a cancelled run aborts the call in flight: the step fails for good, what was generated is charged once', async () => {
    const account = await h.openAccount({ credits: 1_000_000_000 });
    h.fakes[0]!.script({ slowTokenMs: 100, text: 'one two three four five six seven eight nine ten' });
    const controller = new AbortController();
    const context = contextFor(account, { signal: controller.signal, onProgress: () => controller.abort(new Error('run cancelled')) });
    const error = await stepError(runners['action.model']!({ model: 'steps/cheap', prompt: 'Count', maxTokens: 50 }, context));
    expect(error).toMatchObject({ code: 'CANCELLED', retryable: false });
    const balance = await h.settledBalance(account.accountId);
    expect(balance.reserved).toBe(0);
    expect(balance.settled).toBeGreaterThan(0);
  });

  it('refuses bad input by field', async () => {
    const error = await stepError(runners['action.model']!({ model: 'switchyard/demo', prompt: 'a', messages: [{ role: 'user', content: 'b' }] }, contextFor(user)));
    expect(error).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    expect(error.message).toContain('input.prompt');
  });
});

describe('action.http', () => {
  it('sends the method, JSON body and the idempotency key; answers status, headers and the parsed JSON', async () => {
    const context = contextFor(user);
    const { output, cost } = await runners['action.http']!({ method: 'PUT', url: `${target.url}/created`, headers: { 'X-Trace': 'abc' }, body: { n: 1 } }, context);
    expect(cost).toBe(0);
    expect(output).toMatchObject({ status: 201, headers: { 'content-type': 'application/json' }, body: { ok: true, received: { n: 1 } } });
    const received = target.requests.at(-1)!;
    expect(received).toMatchObject({ method: 'PUT', url: '/created' });
    // One key per step, the same for all its attempts; the attempt beside it.
    expect(received.headers).toMatchObject({ 'idempotency-key': `${context.runId}.answer`, 'x-switchyard-attempt': '1', 'x-trace': 'abc', 'content-type': 'application/json' });
    await runners['action.http']!({ method: 'PUT', url: `${target.url}/created`, body: { n: 1 } }, { ...context, attempt: 2, idempotencyKey: `${context.runId}.answer.2` });
    expect(target.requests.at(-1)!.headers).toMatchObject({ 'idempotency-key': `${context.runId}.answer`, 'x-switchyard-attempt': '2' });
  });

  it('refuses a body on a GET or HEAD for good, sending nothing', async () => {
    const before = target.requests.length;
    for (const method of ['GET', 'HEAD']) {
      const error = await stepError(runners['action.http']!({ method, url: `${target.url}/created`, body: { n: 1 } }, contextFor(user)));
      expect(error).toMatchObject({ code: 'INVALID_INPUT', retryable: false, message: 'Invalid step input: input.body: a GET or HEAD request has no body' });
    }
    expect(target.requests.length).toBe(before);
  });

  it("a step cannot replace its idempotency key or set the Host header", async () => {
    const context = contextFor(user);
    await runners['action.http']!({ url: `${target.url}/created`, headers: { 'Idempotency-Key': 'mine', 'X-Switchyard-Attempt': '9' } }, context);
    expect(target.requests.at(-1)!.headers).toMatchObject({ 'idempotency-key': `${context.runId}.answer`, 'x-switchyard-attempt': '1' });
    const host = await stepError(runners['action.http']!({ url: `${target.url}/created`, headers: { Host: 'internal.example' } }, context));
    expect(host).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
  });

  it('5xx and timeouts are retryable, 4xx not; a redirect is the answer, not followed', async () => {
    expect(await stepError(runners['action.http']!({ url: `${target.url}/broken` }, contextFor(user)))).toMatchObject({ code: 'HTTP_503', retryable: true });
    expect(await stepError(runners['action.http']!({ url: `${target.url}/missing` }, contextFor(user)))).toMatchObject({ code: 'HTTP_404', retryable: false });
    expect(await stepError(hurried['action.http']!({ method: 'GET', url: `${target.url}/hang` }, contextFor(user)))).toMatchObject({ code: 'TIMEOUT', retryable: true });
    const before = target.requests.length;
    const { output } = await runners['action.http']!({ method: 'GET', url: `${target.url}/redirect` }, contextFor(user));
    expect(output).toMatchObject({ status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } });
    expect(target.requests.length).toBe(before + 1);
  });

  it('refuses the metadata address even with 127.0.0.1 allowed, and loopback without the allow-list, before connecting', async () => {
    const metadata = await stepError(runners['action.http']!({ url: 'http://169.254.169.254/latest/meta-data/' }, contextFor(user)));
    expect(metadata).toMatchObject({ code: 'OUTBOUND_REFUSED', retryable: false });
    expect(metadata.message).toContain('cloud metadata');

    const strict = createStepRunners({ catalog: h.running.core.modules.catalog, generations: h.running.core.modules.generations, tables: h.running.core.modules.tables, outbound: createOutboundPolicy(), ...newStepDeps(h.running.core) });
    const before = target.requests.length;
    const port = new URL(target.url).port;
    // The same loopback address spelled as a name, IPv4-mapped IPv6, a decimal integer and hex (URL parsing normalizes the last two).
    for (const url of [`${target.url}/created`, `http://localhost:${port}/created`, `http://[::ffff:127.0.0.1]:${port}/created`, `http://2130706433:${port}/created`, `http://0x7f.1:${port}/created`]) {
      const refused = await stepError(strict['action.http']!({ url }, contextFor(user)));
      expect(refused, url).toMatchObject({ code: 'OUTBOUND_REFUSED', retryable: false });
      expect(refused.message, url).toContain('loopback');
    }
    expect(await stepError(strict['action.http']!({ url: `http://0.0.0.0:${port}/created` }, contextFor(user)))).toMatchObject({ code: 'OUTBOUND_REFUSED' });
    const file = await stepError(strict['action.http']!({ url: 'file:///etc/passwd' }, contextFor(user)));
    expect(file.code).toBe('OUTBOUND_REFUSED');
    expect(target.requests.length).toBe(before);
  });
});

describe('search.http', () => {
  it('GETs a URL and answers its JSON', async () => {
    const { output } = await runners['search.http']!({ url: `${target.url}/json` }, contextFor(user));
    expect(output).toEqual({ answer: 42, items: ['a', 'b'] });
    expect(target.requests.at(-1)).toMatchObject({ method: 'GET', url: '/json' });
  });

  it('refuses a non-JSON answer, an oversized one and a redirect, for good', async () => {
    expect(await stepError(runners['search.http']!({ url: `${target.url}/html` }, contextFor(user)))).toMatchObject({ code: 'NOT_JSON', retryable: false });
    expect(await stepError(runners['search.http']!({ url: `${target.url}/big` }, contextFor(user)))).toMatchObject({ code: 'RESPONSE_TOO_LARGE', retryable: false });
    expect(await stepError(runners['search.http']!({ url: `${target.url}/redirect` }, contextFor(user)))).toMatchObject({ code: 'REDIRECT', retryable: false });
  });

  it('goes through the outbound policy too', async () => {
    const error = await stepError(runners['search.http']!({ url: 'http://169.254.169.254/latest/meta-data/' }, contextFor(user)));
    expect(error).toMatchObject({ code: 'OUTBOUND_REFUSED', retryable: false });
  });
});

/**
 * An answer its provider ended with an error mid-generation (an OpenAI-protocol choice with `finish_reason: "error"`
 * and an `error`), over real HTTP against fake upstreams: the generation's record says so (REST `switchyard.error`,
 * GraphQL `Generation.error`), and the attempt that answered is a failed one: on the record's attempts and on its
 * endpoint's health (its circuit breaker, its uptime and error rate), as the same error before any token would be,
 * and for sticky routing (no conversation is pinned to it);
 * but the call is neither tried again elsewhere (the provider billed it; a stream had delivered tokens) nor charged
 * differently. One ended with an error before anything was generated (a stream before its first token, a whole answer
 * with nothing in it) is the endpoint's failure like any other: another endpoint is tried, and it is not charged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wholeAnswer, type FakeProvider } from '../support/fakeProviders.js';
import { eventually, readModelsCaughtUp } from '../support/eventually.js';
import { costOf, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const PRICES = { prompt: 100, completion: 100 };
const DEARER = { prompt: 200, completion: 200 };
const ASK = [{ role: 'user', content: 'Say hello to the gateway' }];
const USAGE = { promptTokens: 11, completionTokens: 3 };
/** A call that read part of its prompt from the provider's cache: what pins a conversation (sticky routing). */
const CACHED = { promptTokens: 11, completionTokens: 3, cachedTokens: 5 };
const MID_ANSWER_502 = { afterChunks: 3, shape: 'choice' as const, code: 502, message: 'upstream died mid-generation' };
/** A whole answer its provider ended with a 502 mid-generation: OpenRouter's `choices[0].error`. */
const WHOLE_PARTIAL = wholeAnswer('partial', 'error', { code: 502, message: 'died' });

let h: GatewayHarness;
let user: Account;
let recorded: FakeProvider;
let broken: FakeProvider;
let spare: FakeProvider;
let wholeBroken: FakeProvider;
let wholeSpare: FakeProvider;
let refusing: FakeProvider;
let warmB: FakeProvider;
let unsaid: FakeProvider;
let unsaidSpare: FakeProvider;

beforeAll(async () => {
  // Two failures open a breaker for a minute; load balancing is off in this harness: the cheapest endpoint first.
  h = await startGatewayHarness({ GATEWAY_BREAKER_FAILURES: '2', GATEWAY_BREAKER_COOLDOWN_MS: '60000' });
  user = await h.openAccount({ credits: 10_000_000_000 });
  recorded = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-recorded', model: 'test/ibe-record', prices: PRICES });
  broken = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-broken', model: 'test/ibe-stream', prices: PRICES });
  spare = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-spare', model: 'test/ibe-stream', prices: DEARER });
  wholeBroken = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-whole-broken', model: 'test/ibe-whole', prices: PRICES });
  wholeSpare = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-whole-spare', model: 'test/ibe-whole', prices: DEARER });
  refusing = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-refusing', model: 'test/ibe-request', prices: PRICES });
  unsaid = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-unsaid', model: 'test/ibe-unsaid', prices: PRICES });
  unsaidSpare = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-unsaid-spare', model: 'test/ibe-unsaid', prices: DEARER });
  // Sticky routing: both endpoints' cache reads cost less than their prompt tokens, so a conversation that used the cache is pinned.
  const warmA = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-warm-a', model: 'test/ibe-sticky', prices: { ...PRICES, cacheRead: 10 } });
  warmB = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-warm-b', model: 'test/ibe-sticky', prices: { ...DEARER, cacheRead: 20 } });
  warmA.setDefault({ usage: CACHED });
  warmB.setDefault({ usage: CACHED });
});
afterAll(async () => {
  await h.stop();
});

/** The endpoints API's view of one endpoint (its breaker and stats), once every record is in the read models. */
const endpointOf = async (model: string, tag: string) => {
  await h.running.core.gateway.idle();
  await readModelsCaughtUp(h.running.core);
  const { data } = (await (await fetch(`${h.url}/api/v1/models/${model}/endpoints`)).json()) as { data: { endpoints: { tag: string }[] } };
  return data.endpoints.find((e) => e.tag === tag) as Record<string, unknown>;
};

const graphqlRecord = async (id: string) => (await h.gqlOk(`query ($id: ID!) { generation(id: $id) { status finishReason error attempts } }`, { id }, user.key)).generation;

/** A stream of `model`: its generation id and its last event. */
const stream = async (model: string) => {
  const res = await h.chat(user.key, { model, messages: ASK, stream: true });
  expect(res.status).toBe(200);
  const { events } = await readSseResponse(res);
  return { id: res.headers.get('x-generation-id')!, last: events.at(-1) };
};

describe("the generation's record", () => {
  it('of a stream its provider ended with an error says which (REST switchyard.error, GraphQL error), and the call is charged what the provider billed', async () => {
    const before = (await h.settledBalance(user.accountId)).settled;
    recorded.script({ inBandError: MID_ANSWER_502, usage: USAGE });
    const { id, last } = await stream('test/ibe-record');
    expect(last).toMatchObject({ provider: 'ibe-recorded', error: { code: 502 }, choices: [{ finish_reason: 'error' }] });
    const error = { type: 'provider_unavailable', status: 502, message: expect.stringContaining('HTTP 502') };
    expect(await h.generation(user.key, id)).toMatchObject({ finish_reason: 'error', tokens_prompt: 11, tokens_completion: 3, switchyard: { status: 'completed', error } });
    expect(await graphqlRecord(id)).toMatchObject({ status: 'COMPLETED', finishReason: 'error', error });
    expect((await h.settledBalance(user.accountId)).settled - before).toBe(costOf(PRICES, 11, 3));
  });

  it('of a whole answer its provider ended with an error says which', async () => {
    recorded.script({ body: WHOLE_PARTIAL });
    const res = await h.chat(user.key, { model: 'test/ibe-record', messages: ASK });
    expect(res.status).toBe(200);
    const record = await h.generation(user.key, res.headers.get('x-generation-id')!);
    expect(record).toMatchObject({ finish_reason: 'error', switchyard: { status: 'completed', error: { type: 'provider_unavailable', status: 502 } } });
  });

  it('of a whole answer GraphQL sendPrompt returned says which, as the record does', async () => {
    recorded.script({ body: WHOLE_PARTIAL });
    const sent = (await h.gqlOk('mutation { sendPrompt(input: { model: "test/ibe-record", prompt: "Say hello" }) { ... on SendPromptResult { generationId completion finishReason error } } }', {}, user.key)).sendPrompt as Record<string, unknown>;
    const error = { type: 'provider_unavailable', status: 502, message: expect.stringContaining('HTTP 502') };
    expect(sent).toMatchObject({ completion: 'partial', finishReason: 'error', error });
    expect(await graphqlRecord(sent.generationId as string)).toMatchObject({ finishReason: 'error', error });
    recorded.script({});
    const fine = (await h.gqlOk('mutation { sendPrompt(input: { model: "test/ibe-record", prompt: "Say hello" }) { ... on SendPromptResult { finishReason error } } }', {}, user.key)).sendPrompt;
    expect(fine).toEqual({ finishReason: 'stop', error: null });
  });

  it('reaches the workflows listening to generation.completed: its payload carries the error', async () => {
    const designer = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
    const definition = {
      name: 'On broken answers',
      trigger: { type: 'event', event: 'generation.completed', filter: { model: 'test/ibe-record' } },
      steps: [{ key: 'reply', type: 'action.respond', input: { got: '=trigger' } }],
    };
    const workflowId = (await h.gqlOk(`mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }`, { d: definition }, designer.key)).createWorkflow.id as string;
    recorded.script({ inBandError: MID_ANSWER_502, usage: USAGE });
    const res = await h.chat(designer.key, { model: 'test/ibe-record', messages: ASK, stream: true });
    await readSseResponse(res);
    const output = await eventually('the triggered run to end', async () => {
      const runs = (await h.gqlOk(`query ($id: ID!) { workflowRuns(workflowId: $id, first: 5) { edges { node { status output } } } }`, { id: workflowId }, designer.key)).workflowRuns.edges;
      return runs[0]?.node.status === 'SUCCEEDED' ? runs[0].node.output : null;
    });
    expect(output.got).toMatchObject({
      event: 'generation.completed',
      id: res.headers.get('x-generation-id'),
      status: 'completed',
      finishReason: 'error',
      error: { type: 'provider_unavailable', status: 502, message: expect.stringContaining('HTTP 502') },
    });
  });

  it('of an answer that ended well has no error', async () => {
    const { id } = await stream('test/ibe-record');
    expect(await h.generation(user.key, id)).toMatchObject({ finish_reason: 'stop', switchyard: { status: 'completed', error: null } });
    expect(await graphqlRecord(id)).toMatchObject({ status: 'COMPLETED', error: null });
  });
});

describe("the endpoint's health", () => {
  it('a stream its provider ended with a 5xx is a failed attempt: the breaker opens after two, uptime and error rate count them; not tried again, charged as billed', async () => {
    const payer = await h.openAccount({ credits: 1_000_000_000 });
    for (let call = 1; call <= 2; call++) {
      const asked = { broken: broken.requests.length, spare: spare.requests.length };
      broken.script({ inBandError: MID_ANSWER_502, usage: USAGE });
      const res = await h.chat(payer.key, { model: 'test/ibe-stream', messages: ASK, stream: true });
      const id = res.headers.get('x-generation-id')!;
      const { events } = await readSseResponse(res);
      expect(events.at(-1)).toMatchObject({ provider: 'ibe-broken', error: { code: 502 }, choices: [{ finish_reason: 'error' }] });
      // Tokens went out: no other endpoint is asked.
      expect({ broken: broken.requests.length - asked.broken, spare: spare.requests.length - asked.spare }).toEqual({ broken: 1, spare: 0 });
      // The attempt that answered failed: on the record's attempts as any failed attempt is.
      const failedAttempt = { endpointId: 'test/ibe-stream@ibe-broken', ok: false, errorCode: 'server_error', status: 502 };
      expect(await h.generation(payer.key, id)).toMatchObject({ switchyard: { status: 'completed', attempts: [failedAttempt] } });
      expect((await h.gqlOk(`query ($id: ID!) { generation(id: $id) { attempts } }`, { id }, payer.key)).generation.attempts).toMatchObject([failedAttempt]);
    }
    expect((await h.settledBalance(payer.accountId)).settled).toBe(2 * costOf(PRICES, 11, 3));
    expect(await endpointOf('test/ibe-stream', 'ibe-broken')).toMatchObject({ circuit_breaker: 'open', uptime_last_5m: 0, error_rate_last_30m: 1 });
    // Open: the healthy endpoint serves first.
    const asked = broken.requests.length;
    expect((await stream('test/ibe-stream')).last.provider).toBe('ibe-spare');
    expect(broken.requests.length).toBe(asked);
  });

  it('a whole answer its provider ended with a 5xx is the 200 with the partial answer (not tried again: the provider billed it), and a failure for the endpoint', async () => {
    for (let call = 1; call <= 2; call++) {
      const asked = wholeSpare.requests.length;
      wholeBroken.script({ body: WHOLE_PARTIAL });
      const res = await h.chat(user.key, { model: 'test/ibe-whole', messages: ASK });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ provider: 'ibe-whole-broken', choices: [{ message: { content: 'partial' }, finish_reason: 'error', error: { code: 502 } }] });
      expect(wholeSpare.requests.length).toBe(asked);
      expect(await h.generation(user.key, res.headers.get('x-generation-id')!)).toMatchObject({ switchyard: { status: 'completed', attempts: [{ ok: false, status: 502 }] } });
    }
    expect(await endpointOf('test/ibe-whole', 'ibe-whole-broken')).toMatchObject({ circuit_breaker: 'open', uptime_last_5m: 0, error_rate_last_30m: 1 });
    const res = await h.chat(user.key, { model: 'test/ibe-whole', messages: ASK });
    expect(((await res.json()) as { provider: string }).provider).toBe('ibe-whole-spare');
  });

  it('an answer that finishes "error" (or vLLM\'s "abort") without saying which error is a failed attempt all the same: recorded with an error, counted by the breaker and uptime', async () => {
    const unsaidError = (reason: string) => ({ type: 'provider_unavailable', status: 502, message: expect.stringContaining(`finish reason "${reason}" mid-generation, without an error saying which`) });
    // A stream whose last choice finishes "error" with `error: null`, then its usage and [DONE].
    unsaid.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 502, message: '', sent: null }, usage: USAGE });
    const { id, last } = await stream('test/ibe-unsaid');
    expect(last).toMatchObject({ provider: 'ibe-unsaid', choices: [{ finish_reason: 'error' }] });
    expect(await h.generation(user.key, id)).toMatchObject({ finish_reason: 'error', switchyard: { status: 'completed', error: unsaidError('error'), attempts: [{ ok: false, status: 502 }] } });
    // A whole answer that finishes "abort" (vLLM's, mapped to "error"), no error on its choice.
    unsaid.script({ body: wholeAnswer('partial', 'abort') });
    const res = await h.chat(user.key, { model: 'test/ibe-unsaid', messages: ASK });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ provider: 'ibe-unsaid', choices: [{ message: { content: 'partial' }, finish_reason: 'error', native_finish_reason: 'abort' }] });
    expect(await h.generation(user.key, res.headers.get('x-generation-id')!)).toMatchObject({ switchyard: { status: 'completed', error: unsaidError('abort'), attempts: [{ ok: false, status: 502 }] } });
    expect(await endpointOf('test/ibe-unsaid', 'ibe-unsaid')).toMatchObject({ circuit_breaker: 'open', uptime_last_5m: 0, error_rate_last_30m: 1 });
    const asked = unsaid.requests.length;
    expect((await stream('test/ibe-unsaid')).last.provider).toBe('ibe-unsaid-spare');
    expect(unsaid.requests.length).toBe(asked);
    expect(unsaidSpare.requests.length).toBe(1);
  });

  it('an unsaid "error" before the first token is the endpoint\'s failure like a said one: another endpoint answers', async () => {
    const first = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-early', model: 'test/ibe-early', prices: PRICES });
    const second = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-early-spare', model: 'test/ibe-early', prices: DEARER });
    first.script({ inBandError: { afterChunks: 0, shape: 'choice', code: 502, message: '', sent: null }, usage: USAGE });
    const { id, last } = await stream('test/ibe-early');
    expect(last).toMatchObject({ provider: 'ibe-early-spare' });
    expect(last.error).toBeUndefined();
    expect(second.requests.length).toBe(1);
    expect(await h.generation(user.key, id)).toMatchObject({ switchyard: { status: 'completed', error: null, attempts: [{ ok: false, status: 502 }, { ok: true }] } });
    expect(first.requests.length).toBe(1);
  });

  it('a whole answer its provider ended with an error before generating anything is the endpoint\'s failure, as a stream\'s before its first token: another endpoint answers and only its answer is charged; with none left, the error, and nothing charged', async () => {
    const EMPTY = wholeAnswer('', 'error', { code: 502, message: 'died' });
    const first = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-empty', model: 'test/ibe-empty', prices: PRICES });
    const second = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-empty-spare', model: 'test/ibe-empty', prices: DEARER });
    const before = (await h.settledBalance(user.accountId)).settled;
    first.script({ body: EMPTY });
    const res = await h.chat(user.key, { model: 'test/ibe-empty', messages: ASK });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { provider: string; choices: { error?: unknown; finish_reason: string }[] };
    expect(answer.provider).toBe('ibe-empty-spare');
    expect(answer.choices[0]!.error).toBeUndefined();
    expect([first.requests.length, second.requests.length]).toEqual([1, 1]);
    const record = (await h.generation(user.key, res.headers.get('x-generation-id')!)) as { tokens_prompt: number; tokens_completion: number };
    expect(record).toMatchObject({ switchyard: { status: 'completed', error: null, attempts: [{ ok: false, status: 502 }, { ok: true }] } });
    expect((await h.settledBalance(user.accountId)).settled - before).toBe(costOf(DEARER, record.tokens_prompt, record.tokens_completion));

    const alone = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-empty-alone', model: 'test/ibe-empty-alone', prices: PRICES });
    // Every try of it (a 502 is tried again on the same endpoint) ends so.
    alone.setDefault({ body: EMPTY });
    const failed = await h.chat(user.key, { model: 'test/ibe-empty-alone', messages: ASK });
    expect(failed.status).toBe(502);
    expect(await failed.json()).toMatchObject({ error: { code: 502 } });
    const failedRecord = (await h.generation(user.key, failed.headers.get('x-generation-id')!)) as { switchyard: { status: string; attempts: { ok: boolean; status: number }[] } };
    expect(failedRecord.switchyard.status).toBe('failed');
    expect(failedRecord.switchyard.attempts.map(({ ok, status }) => ({ ok, status }))).toEqual(alone.requests.map(() => ({ ok: false, status: 502 })));
    expect((await h.settledBalance(user.accountId)).settled - before).toBe(costOf(DEARER, record.tokens_prompt, record.tokens_completion));
  });

  it('a finish reason that only maps to "error" (Gemini\'s MALFORMED_FUNCTION_CALL, caused by the request or the model) blames no endpoint; TGI\'s "eos_token" is a normal end', async () => {
    const own = await h.fakeEndpoint({ protocol: 'openai', slug: 'ibe-model-caused', model: 'test/ibe-model-caused', prices: PRICES });
    for (let call = 1; call <= 3; call++) {
      own.script({ body: wholeAnswer('partial', 'MALFORMED_FUNCTION_CALL') });
      const res = await h.chat(user.key, { model: 'test/ibe-model-caused', messages: ASK });
      expect(await res.json()).toMatchObject({ provider: 'ibe-model-caused', choices: [{ finish_reason: 'error', native_finish_reason: 'MALFORMED_FUNCTION_CALL' }] });
      expect(await h.generation(user.key, res.headers.get('x-generation-id')!)).toMatchObject({ finish_reason: 'error', native_finish_reason: 'MALFORMED_FUNCTION_CALL', switchyard: { error: null, attempts: [{ ok: true }] } });
    }
    own.script({ body: wholeAnswer('partial', 'eos_token') });
    const res = await h.chat(user.key, { model: 'test/ibe-model-caused', messages: ASK });
    expect(await res.json()).toMatchObject({ choices: [{ finish_reason: 'stop', native_finish_reason: 'eos_token' }] });
    expect(await endpointOf('test/ibe-model-caused', 'ibe-model-caused')).toMatchObject({ circuit_breaker: 'closed', uptime_last_5m: 100, error_rate_last_30m: 0 });
  });

  it('an in-band error that says the request was wrong (a 400) says nothing of the endpoint, as the same 400 before any token does not', async () => {
    for (let call = 1; call <= 2; call++) {
      refusing.script({ inBandError: { afterChunks: 3, shape: 'choice', code: 400, message: 'the request was wrong after all' }, usage: USAGE });
      const { id } = await stream('test/ibe-request');
      expect(await h.generation(user.key, id)).toMatchObject({ switchyard: { error: { status: 400, message: expect.stringContaining('the request was wrong after all') }, attempts: [{ ok: false, status: 400 }] } });
    }
    expect(await endpointOf('test/ibe-request', 'ibe-refusing')).toMatchObject({ circuit_breaker: 'closed', uptime_last_5m: null, error_rate_last_30m: null });
  });
});

describe('sticky routing', () => {
  /** Who serves a call of the conversation `session`, and how it ended (a stream's last event, a whole answer). */
  const served = async (session: string, options: { stream?: boolean; ignore?: string[] } = {}) => {
    const body = { model: 'test/ibe-sticky', messages: ASK, session_id: session, ...(options.stream && { stream: true }), ...(options.ignore && { provider: { ignore: options.ignore } }) };
    const res = await h.chat(user.key, body);
    expect(res.status).toBe(200);
    const answer = options.stream ? (await readSseResponse(res)).events.at(-1) : await res.json();
    return { provider: answer.provider as string, finishReason: answer.choices[0]?.finish_reason as string };
  };

  it('a conversation served well (its cache used) stays with the endpoint that served it, though another is cheaper', async () => {
    expect(await served('ibe-kept', { ignore: ['ibe-warm-a'] })).toEqual({ provider: 'ibe-warm-b', finishReason: 'stop' });
    expect(await served('ibe-kept')).toEqual({ provider: 'ibe-warm-b', finishReason: 'stop' });
  });

  it('an answer its provider ended with an error mid-generation does not pin the conversation to that endpoint, its cache used or not', async () => {
    // A stream broken off with a 502 (a failure for the breaker: one, below its threshold of two).
    warmB.script({ inBandError: MID_ANSWER_502, usage: CACHED });
    expect(await served('ibe-broken-stream', { stream: true, ignore: ['ibe-warm-a'] })).toEqual({ provider: 'ibe-warm-b', finishReason: 'error' });
    expect(await served('ibe-broken-stream')).toEqual({ provider: 'ibe-warm-a', finishReason: 'stop' });
    // A whole answer ended with a 400 (nothing for the breaker, nor a success).
    const refused = { ...WHOLE_PARTIAL, choices: [{ ...WHOLE_PARTIAL.choices[0]!, error: { code: 400, message: 'wrong after all' } }], usage: { ...WHOLE_PARTIAL.usage, prompt_tokens_details: { cached_tokens: 5 } } };
    warmB.script({ body: refused });
    expect(await served('ibe-broken-whole', { ignore: ['ibe-warm-a'] })).toEqual({ provider: 'ibe-warm-b', finishReason: 'error' });
    expect(await served('ibe-broken-whole')).toEqual({ provider: 'ibe-warm-a', finishReason: 'stop' });
    expect(await endpointOf('test/ibe-sticky', 'ibe-warm-b')).toMatchObject({ circuit_breaker: 'closed' });
  });
});

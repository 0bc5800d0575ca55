/**
 * The fallback matrix: one model served by a cheap primary and a dearer backup (both fake OpenAI upstreams). Each
 * fault is scripted on the primary for one request, streaming and not, and the test checks what the client got and
 * the exact amount the ledger settled (which also says who served: the two prices differ).
 * The harness's timeouts are long (no answer here may end because the host paused); the faults that only a timeout
 * ends (an upstream that never answers) run on a second harness of their own, with a short first-token timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider, Script } from '../support/fakeProviders.js';
import { contentOf, costOf, promptEstimate, readSseResponse, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MODEL = 'test/matrix';
const PRIMARY = { prompt: 100, completion: 200 };
const BACKUP = { prompt: 300, completion: 900 };
const USAGE = { promptTokens: 50, completionTokens: 10 };
const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];
const FULL_ANSWER = 'Echo: Say hello to the gateway';

/** A harness serving the matrix's model from a cheap primary and a dearer backup. */
interface Matrix {
  readonly h: GatewayHarness;
  readonly user: Account;
  readonly primary: FakeProvider;
  readonly backup: FakeProvider;
}

const startMatrix = async (env: Record<string, string> = {}): Promise<Matrix> => {
  const h = await startGatewayHarness(env);
  const user = await h.openAccount({ credits: 10_000_000_000 });
  const primary = await h.fakeEndpoint({ protocol: 'openai', slug: 'matrix-primary', model: MODEL, prices: PRIMARY });
  const backup = await h.fakeEndpoint({ protocol: 'openai', slug: 'matrix-backup', model: MODEL, prices: BACKUP });
  primary.setDefault({ usage: USAGE });
  backup.setDefault({ usage: USAGE });
  return { h, user, primary, backup };
};

/** The harness's long timeouts: the faults are what ends an attempt, never a pause of the host. */
let matrix: Matrix;
/**
 * A first-token timeout of 1 s, for the faults only a timeout ends: an upstream that never answers falls back after
 * 1 s, not after the harness's 30 s (which the backup's answer must also beat).
 */
let timing: Matrix;
let h: GatewayHarness;
let user: Account;
let primary: FakeProvider;
let backup: FakeProvider;

beforeAll(async () => {
  matrix = await startMatrix();
  timing = await startMatrix({ GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '1000' });
  ({ h, user, primary, backup } = matrix);
});
afterAll(async () => {
  await Promise.all([matrix?.h.stop(), timing?.h.stop()]);
});

type Outcome = 'primary' | 'backup' | 'partial';
interface Row {
  readonly fault: string;
  readonly script: Script;
  readonly nonStreaming: Outcome;
  readonly streaming: Outcome;
  /** Only the first-token timeout ends this fault: the row runs on the `timing` harness. */
  readonly timesOut?: true;
}

const ROWS: Row[] = [
  { fault: '429 with Retry-After', script: { status: 429, headers: { 'retry-after': '1' } }, nonStreaming: 'backup', streaming: 'backup' },
  { fault: '500', script: { status: 500 }, nonStreaming: 'backup', streaming: 'backup' },
  { fault: '502', script: { status: 502 }, nonStreaming: 'backup', streaming: 'backup' },
  { fault: '503', script: { status: 503 }, nonStreaming: 'backup', streaming: 'backup' },
  { fault: 'connection reset', script: { reset: true }, nonStreaming: 'backup', streaming: 'backup' },
  { fault: 'no answer before the first byte', script: { hang: true }, nonStreaming: 'backup', streaming: 'backup', timesOut: true },
  { fault: 'malformed JSON', script: { malformedJson: true }, nonStreaming: 'backup', streaming: 'backup' },
  // Cut before any token reached the client (only the role chunk): still invisible, so it falls back.
  { fault: 'stream cut before the first token', script: { cutAfterChunks: 1 }, nonStreaming: 'primary', streaming: 'backup' },
  // Cut after tokens: no fallback; the stream ends with an error chunk and what was generated is charged.
  { fault: 'stream cut after 3 chunks', script: { cutAfterChunks: 3 }, nonStreaming: 'primary', streaming: 'partial' },
  { fault: 'error event after 3 chunks', script: { errorAfterChunks: 3 }, nonStreaming: 'primary', streaming: 'partial' },
  { fault: 'slow tokens', script: { slowTokenMs: 20 }, nonStreaming: 'primary', streaming: 'primary' },
  // An error put in a 200 (JSON where a stream was asked for): the provider's failure, before any token.
  { fault: 'a JSON error body in a 200', script: { status: 200, body: { error: { message: 'overloaded, try later' } } }, nonStreaming: 'backup', streaming: 'backup' },
  // The answer ended with its finish reason and usage; only `[DONE]` was lost: a whole answer, billed on that usage.
  { fault: 'stream ends without [DONE]', script: { endMarker: 'omit' }, nonStreaming: 'primary', streaming: 'primary' },
  // No answer at all: a stream of only its end marker (no chunk, no finish reason, no usage), a completion with no
  // choice. The provider's failure, before any token: the backup answers, and the primary's empty answer is not billed.
  { fault: 'a stream of only [DONE]', script: { status: 200, headers: { 'content-type': 'text/event-stream' }, body: 'data: [DONE]\n\n' }, nonStreaming: 'backup', streaming: 'backup' },
  { fault: 'a completion with no choice', script: { status: 200, body: { id: 'chatcmpl-empty', object: 'chat.completion', created: 1, model: MODEL, choices: [] } }, nonStreaming: 'backup', streaming: 'backup' },
  // A line that never ends is bounded (8 Mi characters an event), not buffered until the process runs out of memory.
  { fault: 'a line that never ends after 3 chunks', script: { endlessLineAfter: 3 }, nonStreaming: 'primary', streaming: 'partial' },
];

const PARTIAL_TEXT = 'Echo: Say ';
const expectedCharge = (outcome: Outcome): number =>
  outcome === 'primary'
    ? costOf(PRIMARY, USAGE.promptTokens, USAGE.completionTokens)
    : outcome === 'backup'
      ? costOf(BACKUP, USAGE.promptTokens, USAGE.completionTokens)
      : // No usage arrived: the prompt estimate and the streamed characters / 4, at the primary's price.
        costOf(PRIMARY, promptEstimate(MESSAGES), Math.ceil(PARTIAL_TEXT.length / 4));

describe.each(ROWS)('fault on the primary: $fault', (row) => {
  const on = (): Matrix => (row.timesOut ? timing : matrix);

  it(`non-streaming → ${row.nonStreaming}`, async () => {
    const { h, user, primary } = on();
    const before = await h.settledBalance(user.accountId);
    primary.script({ usage: USAGE, ...row.script });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { provider: string; choices: { message: { content: string } }[]; usage: { cost: number } };
    expect(body.provider).toBe(row.nonStreaming === 'backup' ? 'matrix-backup' : 'matrix-primary');
    expect(body.choices[0]!.message.content).toBe(FULL_ANSWER);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(expectedCharge(row.nonStreaming));
    expect(body.usage.cost).toBeCloseTo(expectedCharge(row.nonStreaming) / 1e9, 12);
    expect(after.reserved).toBe(0);
  });

  it(`streaming → ${row.streaming}`, async () => {
    const { h, user, primary } = on();
    const before = await h.settledBalance(user.accountId);
    primary.script({ usage: USAGE, ...row.script });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const { events, done } = await readSseResponse(res);
    const last = events[events.length - 1];
    if (row.streaming === 'partial') {
      expect(contentOf(events)).toBe(PARTIAL_TEXT);
      expect(done).toBe(false);
      expect(last.choices[0].finish_reason).toBe('error');
      expect(last.error.metadata).toMatchObject({ provider_name: 'matrix-primary' });
      expect(last.error.metadata.error_type).toMatch(/provider_unavailable|provider_overloaded|server/);
      expect(last.error.message).toContain('matrix-primary');
    } else {
      expect(contentOf(events)).toBe(FULL_ANSWER);
      expect(done).toBe(true);
      expect(last.choices).toEqual([]);
      expect(last.provider).toBe(row.streaming === 'backup' ? 'matrix-backup' : 'matrix-primary');
      expect(last.usage.cost).toBeCloseTo(expectedCharge(row.streaming) / 1e9, 12);
    }
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(expectedCharge(row.streaming));
    expect(after.reserved).toBe(0);
  });
});

describe('beyond the matrix', () => {
  // The connection breaks where [DONE] should be, after the finish reason and the usage: the answer was whole.
  it.each([
    ['more tokens than the text suggests', USAGE],
    // The text's estimate (its characters / 4) is 8 tokens: billed on the provider's 2, never on the larger of the two.
    ['fewer tokens than the text suggests', { promptTokens: 50, completionTokens: 2 }],
  ])("a stream cut after its finish reason and usage (%s) is a whole answer: completed, ended with [DONE], billed on that usage", async (_, usage) => {
    const before = await h.settledBalance(user.accountId);
    primary.script({ usage, endMarker: 'cut' });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    const id = res.headers.get('x-generation-id')!;
    const { events, done } = await readSseResponse(res);
    expect(contentOf(events)).toBe(FULL_ANSWER);
    expect(done).toBe(true);
    expect(events.flatMap((e) => e.choices.map((c: { finish_reason: string | null }) => c.finish_reason)).filter((r) => r !== null)).toEqual(['stop']);
    expect(events.at(-1).usage).toMatchObject({ prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens });
    const after = await h.settledBalance(user.accountId);
    expect(after.settled - before.settled).toBe(costOf(PRIMARY, usage.promptTokens, usage.completionTokens));
    expect(await h.generation(user.key, id)).toMatchObject({ finish_reason: 'stop', tokens_completion: usage.completionTokens, switchyard: { status: 'completed', usage_source: 'provider' } });
  });

  it('a JSON error put in a 200 is the provider\'s bad answer, not "connection failed" (its words masked, as every 5xx\'s)', async () => {
    // Once each: an answer that could not be read is not asked for again from the same endpoint.
    primary.script({ status: 200, body: { error: { message: 'overloaded, try later' } } });
    backup.script({ status: 200, body: { error: { message: 'overloaded, try later' } } });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/^matrix-(primary|backup) sent a response that could not be read for test\/matrix \(HTTP 502, server\) after 2 attempts$/);
  });

  it('a hung upstream sees the abort when the first-token timeout fires (cancellation propagates)', async () => {
    const { h, user, primary } = timing;
    primary.script({ hang: true });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    await res.text();
    const hung = primary.requests[primary.requests.length - 1]!;
    expect(await hung.outcome).toBe('aborted');
  });

  it('the generation record tells the story: a failed attempt on the primary, then the backup', async () => {
    primary.script({ status: 500 });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES });
    const id = res.headers.get('x-generation-id')!;
    await h.settledBalance(user.accountId);
    const record = (await (await fetch(`${h.url}/api/v1/generation?id=${id}`, { headers: { authorization: `Bearer ${user.key}` } })).json()) as { data: any };
    expect(record.data.provider_name).toBe('matrix-backup');
    expect(record.data.switchyard.attempts).toMatchObject([
      { attempt: 1, providerSlug: 'matrix-primary', ok: false, errorCode: 'server_error', status: 500 },
      { attempt: 2, providerSlug: 'matrix-backup', ok: true },
    ]);
    // Every attempt has its duration, the one that answered too (it ends with the generation).
    const [failed, answered] = record.data.switchyard.attempts as { latencyMs: number; startedAt: string }[];
    expect(failed!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(answered!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(answered!.startedAt)).toBeGreaterThanOrEqual(Date.parse(record.data.created_at));
    expect(answered!.latencyMs).toBeLessThanOrEqual(record.data.generation_time);
  });

  it('when every endpoint fails, the client gets the typed error of the last provider and nothing is charged', async () => {
    const before = await h.settledBalance(user.accountId);
    for (let i = 0; i < 2; i++) {
      primary.script({ status: 503 });
      backup.script({ status: 503 });
    }
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, stream: true });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
    expect(body.error.code).toBe(503);
    // Which endpoint's retry runs last depends on backoff jitter; the error names whichever it was.
    expect(body.error.metadata).toMatchObject({ error_type: 'provider_overloaded', provider_status: 503, attempts: 4 });
    expect(['matrix-primary', 'matrix-backup']).toContain(body.error.metadata.provider_name);
    expect(body.error.message).not.toBe('Provider returned error');
    expect(body.error.message).toContain(`${String(body.error.metadata.provider_name)} is overloaded`);
    const after = await h.settledBalance(user.accountId);
    expect(after.settled).toBe(before.settled);
    expect(after.reserved).toBe(0);
  });

  it('allow_fallbacks: false returns the primary error instead of falling back', async () => {
    const backupCalls = backup.requests.length;
    primary.script({ status: 500 });
    primary.script({ status: 500 });
    const res = await h.chat(user.key, { model: MODEL, messages: MESSAGES, provider: { allow_fallbacks: false } });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { metadata: Record<string, unknown> } };
    expect(body.error.metadata).toMatchObject({ error_type: 'provider_unavailable', provider_name: 'matrix-primary', provider_status: 500 });
    expect(backup.requests.length).toBe(backupCalls);
  });

  it('a models list falls back to the next model when the first model fails', async () => {
    primary.script({ status: 500 });
    primary.script({ status: 500 });
    const res = await h.chat(user.key, { model: MODEL, models: ['switchyard/demo'], messages: MESSAGES, provider: { only: ['matrix-primary', 'switchyard'] } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model: string; provider: string };
    expect(body.model).toBe('switchyard/demo');
    expect(body.provider).toBe('Switchyard Demo');
  });

  it("an upstream 413 or 422 reaches the client as OpenRouter passes it on, with the provider's words, and is not tried elsewhere", async () => {
    // Endpoints of their own: the matrix's primary may sit behind an open breaker by now.
    const first = await h.fakeEndpoint({ protocol: 'openai', slug: 'passed-first', model: 'test/passed', prices: PRIMARY });
    const second = await h.fakeEndpoint({ protocol: 'openai', slug: 'passed-second', model: 'test/passed', prices: BACKUP });
    for (const [status, type] of [[413, 'payload_too_large'], [422, 'unprocessable']] as const) {
      first.script({ status, body: { error: { message: `scripted ${status}` } } });
      const res = await h.chat(user.key, { model: 'test/passed', messages: MESSAGES });
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
      expect(body.error).toMatchObject({ code: status, metadata: { error_type: type, provider_name: 'passed-first', provider_status: status } });
      expect(body.error.message).toContain(`scripted ${status}`);
    }
    // The request is what the provider refused: the same model's other endpoint would refuse it too.
    expect(second.requests).toHaveLength(0);
  });

  it('an answer that cannot be read is not asked for again from the same endpoint (the provider may bill each one)', async () => {
    const solo = await h.fakeEndpoint({ protocol: 'openai', slug: 'matrix-solo', model: 'test/matrix-solo', prices: PRIMARY });
    for (const stream of [false, true]) {
      const before = solo.requests.length;
      solo.script({ malformedJson: true });
      const res = await h.chat(user.key, { model: 'test/matrix-solo', messages: MESSAGES, stream });
      // Streamed too: broken before its first token, the stream is still invisible (an error answer, not a 200).
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { metadata: Record<string, unknown> } };
      expect(body.error.metadata).toMatchObject({ provider_name: 'matrix-solo', attempts: 1 });
      expect(solo.requests.length - before).toBe(1);
    }
  });

  it("when every model of a models list fails, the answer is the last model's error, however the retries fell", async () => {
    const second = await h.fakeEndpoint({ protocol: 'openai', slug: 'matrix-second', model: 'test/matrix-second', prices: PRIMARY });
    primary.setDefault({ status: 503 });
    backup.setDefault({ status: 503 });
    second.setDefault({ status: 429 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await h.chat(user.key, { model: MODEL, models: ['test/matrix-second'], messages: MESSAGES });
        expect(res.status).toBe(429);
        const body = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
        expect(body.error.metadata).toMatchObject({ error_type: 'rate_limit_exceeded', provider_name: 'matrix-second', model: 'test/matrix-second' });
        // The record names the same endpoint as the answer.
        expect(await h.generation(user.key, res.headers.get('x-generation-id')!)).toMatchObject({ provider_name: 'matrix-second', model: 'test/matrix-second' });
      }
    } finally {
      primary.setDefault({ usage: USAGE });
      backup.setDefault({ usage: USAGE });
    }
  });
});

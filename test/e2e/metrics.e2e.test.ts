/**
 * GET /metrics over real HTTP: after a chat and a failing upstream call the Prometheus text parses, and it counts
 * the requests by route and status, the tokens, the cost and the latency of that model, the upstream error by kind,
 * the ledger and the projections; each app has its own registry; access is loopback-only or by METRICS_TOKEN.
 */
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeProvider } from '../support/fakeProviders.js';
import { eventually } from '../support/eventually.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * The text exposition format (version 0.0.4), strictly: `# HELP` / `# TYPE` lines, then samples
 * `name{label="value",...} number`. Throws on any other line, and on a sample of a family with no TYPE.
 */
const parseExposition = (text: string): { samples: Sample[]; types: Map<string, string> } => {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  // Values as Prometheus parses them (Go's ParseFloat: NaN and Inf in any case; prom-client writes `Nan`).
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|[nN]a[nN]|[+-]Inf)$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const sample = sampleLine.exec(line);
    if (!sample) throw new Error(`not exposition format: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) labels[pair[1]!] = pair[2]!;
    const family = sample[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(sample[1]!) && !types.has(family)) throw new Error(`sample without a TYPE: ${line}`);
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return { samples, types };
};

let h: GatewayHarness;
let user: Account;
let metered: FakeProvider;
let failing: FakeProvider;
const PRICES = { prompt: 100, completion: 200 };

beforeAll(async () => {
  h = await startGatewayHarness({ GATEWAY_MAX_ATTEMPTS: '1' });
  user = await h.openAccount({ credits: 1_000_000_000 });
  metered = await h.fakeEndpoint({ protocol: 'openai', slug: 'metered-up', model: 'test/metered', prices: PRICES });
  failing = await h.fakeEndpoint({ protocol: 'anthropic', slug: 'failing-up', model: 'test/failing', prices: PRICES });
});
afterAll(async () => {
  await h.stop();
});

const scrape = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
};
const value = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);

describe('GET /metrics', () => {
  it('after a chat and a failing upstream call: requests, tokens, cost, latency and errors of that model, exactly', async () => {
    const start = await h.settledBalance(user.accountId);
    metered.script({ usage: { promptTokens: 12, completionTokens: 7 } });
    const chat = await h.chat(user.key, { model: 'test/metered', messages: [{ role: 'user', content: 'hello' }] });
    expect(chat.status).toBe(200);
    const streamed = await h.chat(user.key, { model: 'test/metered', messages: [{ role: 'user', content: 'hello' }], stream: true });
    await streamed.text();
    failing.script({ status: 500 });
    expect((await h.chat(user.key, { model: 'test/failing', messages: [{ role: 'user', content: 'hello' }] })).status).toBe(502);
    const end = await h.settledBalance(user.accountId);

    const { samples, types } = await scrape(h.url);
    const route = '/api/v1/chat/completions';
    expect(value(samples, 'switchyard_http_requests_total', { method: 'POST', route, status: '200' })).toBe(2);
    expect(value(samples, 'switchyard_http_requests_total', { method: 'POST', route, status: '502' })).toBe(1);
    // Route patterns, never raw paths.
    expect(samples.some((s) => s.name === 'switchyard_http_requests_total' && s.labels.route === '/graphql')).toBe(true);

    const model = { provider: 'metered-up', model: 'test/metered' };
    // The streamed call's usage is the fake's default: the sums are checked against the ledger's charge.
    const prompt = value(samples, 'switchyard_tokens_total', { ...model, kind: 'prompt' });
    const completion = value(samples, 'switchyard_tokens_total', { ...model, kind: 'completion' });
    expect(prompt).toBeGreaterThan(12);
    expect(completion).toBeGreaterThan(7);
    const cost = value(samples, 'switchyard_cost_nanodollars_total', model);
    expect(cost).toBe(prompt * PRICES.prompt + completion * PRICES.completion);
    expect(cost).toBe(end.settled - start.settled);
    expect(value(samples, 'switchyard_generations_total', { ...model, outcome: 'completed' })).toBe(2);
    expect(value(samples, 'switchyard_generation_duration_seconds_count', model)).toBe(2);
    expect(value(samples, 'switchyard_generation_time_to_first_token_seconds_count', model)).toBe(2);
    expect(value(samples, 'switchyard_generation_duration_seconds_bucket', { ...model, le: '+Inf' })).toBe(2);
    expect(types.get('switchyard_generation_duration_seconds')).toBe('histogram');

    const failed = { provider: 'failing-up', model: 'test/failing' };
    expect(value(samples, 'switchyard_upstream_errors_total', { ...failed, kind: 'server_error' })).toBe(1);
    expect(value(samples, 'switchyard_generations_total', { ...failed, outcome: 'failed' })).toBe(1);
    expect(value(samples, 'switchyard_cost_nanodollars_total', failed)).toBe(0);
    expect(value(samples, 'switchyard_generation_duration_seconds_count', failed)).toBe(0);
  });

  it('shows the head, the projection position and the lag as they are at this scrape: the first after a start, and after writes', async () => {
    const fresh = await startGatewayHarness();
    try {
      const health = async () => ((await (await fetch(`${fresh.url}/health`)).json()) as { projections: { head: number; position: number } }).projections;
      const healthHead = async () => (await health()).head;
      // The first scrape of a new app: the head the store has (not 0, not the value of a scrape before).
      const before = await healthHead();
      expect(before).toBeGreaterThan(0);
      let { samples } = await scrape(fresh.url);
      expect(value(samples, 'switchyard_event_store_head_position', {})).toBeGreaterThanOrEqual(before);
      // Writes between two scrapes show at the second.
      for (let i = 0; i < 3; i++) await fresh.openAccount({ credits: 1_000 });
      const after = await healthHead();
      expect(after).toBeGreaterThan(value(samples, 'switchyard_event_store_head_position', {}));
      await eventually('the read models to apply the writes', async () => (await health()).position >= after);
      ({ samples } = await scrape(fresh.url));
      const head = value(samples, 'switchyard_event_store_head_position', {});
      expect(head).toBeGreaterThanOrEqual(after);
      const position = value(samples, 'switchyard_projection_position', {});
      expect(position).toBeGreaterThanOrEqual(after);
      expect(value(samples, 'switchyard_projection_lag_events', {})).toBe(head - position);
    } finally {
      await fresh.stop();
    }
  });

  it('shows the ledger, the projections against the head, the followers and Node’s own metrics', async () => {
    await h.settledBalance(user.accountId);
    const { samples, types } = await scrape(h.url);
    expect(value(samples, 'switchyard_ledger_appends_total', {})).toBeGreaterThan(0);
    expect(value(samples, 'switchyard_ledger_queued_ops', {})).toBe(0);
    expect(value(samples, 'switchyard_ledger_pending_batches', {})).toBe(0);
    const head = value(samples, 'switchyard_event_store_head_position', {});
    expect(head).toBeGreaterThan(0);
    expect(value(samples, 'switchyard_projection_position', {})).toBeLessThanOrEqual(head);
    expect(value(samples, 'switchyard_projection_lag_events', {})).toBe(head - value(samples, 'switchyard_projection_position', {}));
    for (const follower of ['projections', 'catalog', 'authDirectory']) {
      expect(FOLLOW_STATES.map((state) => value(samples, 'switchyard_follower_state', { follower, state })).reduce((a, b) => a + b)).toBe(1);
    }
    expect(value(samples, 'switchyard_follower_state', { follower: 'catalog', state: 'live' })).toBe(1);
    expect(types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });
});

const FOLLOW_STATES = ['catchingUp', 'live', 'retrying', 'stopped'];

describe('access to /metrics', () => {
  it('with METRICS_TOKEN: the bearer token is required (401 without or with another), and each app counts only its own traffic', async () => {
    const token = 'metrics-token-0123456789';
    const other = await startGatewayHarness({ METRICS_TOKEN: token });
    try {
      expect((await fetch(`${other.url}/metrics`)).status).toBe(401);
      const wrong = await fetch(`${other.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-9876543210' } });
      expect(wrong.status).toBe(401);
      expect(await wrong.json()).toMatchObject({ error: { code: 401 } });
      const { samples } = await scrape(other.url, { authorization: `Bearer ${token}` });
      expect(value(samples, 'switchyard_tokens_total', {})).toBe(0);
      expect(value(samples, 'switchyard_http_requests_total', { route: '/api/v1/chat/completions' })).toBe(0);
      expect(value(samples, 'switchyard_http_requests_total', { route: '/metrics', status: '401' })).toBe(2);
    } finally {
      await other.stop();
    }
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && !i.internal && i.family === 'IPv4')?.address;
  it.skipIf(external === undefined)('without METRICS_TOKEN: refused (403) to a client that is not on the loopback interface', async () => {
    const open = await startGatewayHarness({ HOST: '0.0.0.0' });
    try {
      const res = await fetch(`http://${external}:${open.port}/metrics`);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain('METRICS_TOKEN');
      expect((await fetch(`http://127.0.0.1:${open.port}/metrics`)).status).toBe(200);
    } finally {
      await open.stop();
    }
  });
});

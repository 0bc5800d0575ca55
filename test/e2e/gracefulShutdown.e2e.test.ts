/**
 * SIGTERM drains instead of dropping (a rolling restart loses no answer): Switchyard runs as its own process over an
 * upstream the test holds, calls (JSON and streamed, the streams half-way) are in flight when it is told to stop.
 * - Within the grace period (SHUTDOWN_GRACE_MS): every call in flight finishes with its 200 (a stream through its
 *   `[DONE]`) and is charged once; a new request meanwhile is answered 503 with `Connection: close` and Retry-After;
 *   a graphql-ws socket is closed with 1001 (going away); the process exits 0 once the calls are done.
 * - Past it: a stream still running ends with an error event (finish_reason "error", code 503) and is charged what it
 *   delivered, a JSON call still waiting is answered 503 and charged nothing, and the process exits 0.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { generationStream } from '../../src/modules/generations/generation.events.js';
import { ledgerStream } from '../../src/modules/ledger/ledger.events.js';
import { eventually, within } from '../support/eventually.js';
import { heldUpstream, publishHeldModels } from '../support/heldUpstream.js';
import { parseResponses } from '../support/rawHttp.js';
import { spawnedSwitchyards, type SpawnedSwitchyard } from '../support/spawnedServer.js';

const switchyards = spawnedSwitchyards();
const USD = 1_000_000_000;

/**
 * A paying account on a server whose model `held/model` (and with `embeddings`, `openai/text-embedding-3-small`) is
 * served by `baseUrl`.
 */
const setUp = async (server: SpawnedSwitchyard, baseUrl: string, options: { embeddings?: boolean } = {}) => {
  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await server.graphql(query, variables);
    expect(body.errors).toBeUndefined();
    return body.data;
  };
  await publishHeldModels(gql, baseUrl, options);
  const opened = await gql(`mutation { openAccount(name: "Drain") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  const accountId = opened.openAccount.account.id as string;
  await gql(`mutation ($id: ID!) { grantCredits(accountId: $id, amount: ${10 * USD}, reason: "drain") { __typename } }`, { id: accountId });
  return { accountId, key: opened.openAccount.initialKey.secret as string };
};

interface Call {
  readonly stream: boolean;
  status: number | null;
  generationId: string | null;
  text: string;
  failure: string | null;
  /** A stream's events as far as the client read them before the test sent SIGTERM. */
  readBeforeStop: Promise<void>;
}

/** A chat call that reads its whole answer; a stream's `readBeforeStop` resolves once its first two tokens arrived. */
const call = (url: string, key: string, stream: boolean): { call: Call; done: Promise<void> } => {
  let sawTokens!: () => void;
  const c: Call = { stream, status: null, generationId: null, text: '', failure: null, readBeforeStop: new Promise((resolve) => (sawTokens = resolve)) };
  const done = (async () => {
    try {
      const res = await fetch(`${url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'held/model', messages: [{ role: 'user', content: 'Count to six' }], stream }),
      });
      c.status = res.status;
      c.generationId = res.headers.get('x-generation-id');
      const decoder = new TextDecoder();
      const reader = res.body!.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        c.text += decoder.decode(read.value, { stream: true });
        if (c.text.includes(' two')) sawTokens();
      }
    } catch (error) {
      c.failure = String((error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message);
    } finally {
      sawTokens();
    }
  })();
  return { call: c, done };
};

/** A graphql-ws connection, acknowledged; resolves its close code when the server closes it. */
const openGraphqlWs = async (url: string, key: string) => {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } })));
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') resolve();
    });
    socket.once('error', reject);
  });
  return { closed };
};

/** Each of the calls' generations, as the ledger recorded it after the stop: how often settled, released or expired. */
const ledgerOf = async (dir: string, accountId: string) => {
  const events = openSqliteEventStore({ dir, synchronous: 'normal' });
  try {
    const ledger = await events.readStream(ledgerStream(accountId));
    const outcomes = new Map<string, { settled: number[]; released: number; expired: number }>();
    for (const event of ledger) {
      const data = event.data as { generationId?: string; actual?: number };
      if (data.generationId === undefined) continue;
      const entry = outcomes.get(data.generationId) ?? { settled: [], released: 0, expired: 0 };
      if (event.type === 'ReservationSettled') entry.settled.push(data.actual!);
      if (event.type === 'ReservationReleased') entry.released += 1;
      if (event.type === 'ReservationExpired') entry.expired += 1;
      outcomes.set(data.generationId, entry);
    }
    return outcomes;
  } finally {
    await events.close();
  }
};

/** What the event log holds of a generation after the stop: its events' types. */
const generationEventsOf = async (dir: string, generationId: string) => {
  const events = openSqliteEventStore({ dir, synchronous: 'normal' });
  try {
    return (await events.readStream(generationStream(generationId))).map((event) => event.type);
  } finally {
    await events.close();
  }
};

const exitOf = (server: SpawnedSwitchyard) => server.exited.then(() => ({ code: server.child.exitCode, signal: server.child.signalCode }));

describe('SIGTERM: a graceful drain', () => {
  it('calls in flight finish with their 200 and are charged once; a new call meanwhile is a 503 with Connection: close; graphql-ws closes with 1001; exit 0', { timeout: 60_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-drain-');
      // A grace period far longer than the test: the process must exit because the calls are done, not because it ran out.
      const server = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '120000' } });
      const { accountId, key } = await setUp(server, upstream.baseUrl);
      const ws = await openGraphqlWs(server.url, key);

      const started = Array.from({ length: 6 }, (_, i) => call(server.url, key, i % 2 === 0));
      const calls = started.map((s) => s.call);
      await eventually('every call to reach the upstream', () => upstream.received() === calls.length);
      // The streams are half-way: their 200 and first tokens are out.
      await Promise.all(calls.filter((c) => c.stream).map((c) => c.readBeforeStop));

      server.child.kill('SIGTERM');
      const exit = exitOf(server);
      // Draining: /health says so (a load balancer takes the process out), and a new call is refused, not queued.
      await eventually('the server to report that it drains', async () => (await fetch(`${server.url}/health`)).status === 503);
      const refused = await fetch(`${server.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'held/model', messages: [{ role: 'user', content: 'Too late' }] }),
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('connection')).toBe('close');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/shutting down/);
      expect(await within('the graphql-ws socket to be closed', ws.closed)).toBe(1001);
      expect(upstream.received()).toBe(calls.length);

      upstream.release();
      await within('the calls to finish', Promise.all(started.map((s) => s.done)));
      for (const c of calls) {
        expect(c.failure, c.text).toBeNull();
        expect(c.status).toBe(200);
        if (c.stream) expect(c.text.trimEnd().endsWith('data: [DONE]'), c.text).toBe(true);
        else expect((JSON.parse(c.text) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('one two three four five six');
      }
      expect(await within('the process to exit', exit)).toEqual({ code: 0, signal: null });

      const outcomes = await ledgerOf(dir, accountId);
      for (const c of calls) {
        const outcome = outcomes.get(c.generationId!);
        expect(outcome?.settled.length, c.generationId!).toBe(1);
        expect(outcome!.settled[0]).toBeGreaterThan(0);
        expect(outcome).toMatchObject({ released: 0, expired: 0 });
      }
    } finally {
      await upstream.close();
    }
  });

  it('past the grace period a stream ends with an error event and is charged what it delivered; a JSON call is a 503, uncharged; exit 0', { timeout: 60_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-drain-deadline-');
      const server = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '300' } });
      const { accountId, key } = await setUp(server, upstream.baseUrl);
      const started = Array.from({ length: 4 }, (_, i) => call(server.url, key, i % 2 === 0));
      const calls = started.map((s) => s.call);
      await eventually('every call to reach the upstream', () => upstream.received() === calls.length);
      await Promise.all(calls.filter((c) => c.stream).map((c) => c.readBeforeStop));

      // The upstream never answers: the grace period ends with every call still running.
      server.child.kill('SIGTERM');
      await within('the calls to end', Promise.all(started.map((s) => s.done)));
      expect(await within('the process to exit', exitOf(server))).toEqual({ code: 0, signal: null });

      for (const c of calls) {
        expect(c.failure, c.text).toBeNull();
        if (c.stream) {
          expect(c.status).toBe(200);
          const events = c.text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice('data: '.length));
          expect(events.at(-1)).not.toBe('[DONE]');
          const last = JSON.parse(events.at(-1)!) as { error: { code: number; message: string }; choices: { finish_reason: string }[] };
          expect(last.error.code).toBe(503);
          expect(last.error.message).toMatch(/shutting down/);
          expect(last.choices[0]!.finish_reason).toBe('error');
        } else {
          expect(c.status).toBe(503);
          expect(c.text).toMatch(/shutting down/);
        }
      }
      const outcomes = await ledgerOf(dir, accountId);
      for (const c of calls) {
        const outcome = outcomes.get(c.generationId!);
        // As when a client leaves: a stream is charged for the tokens it delivered, a JSON call with no answer nothing.
        if (c.stream) expect(outcome).toMatchObject({ settled: [expect.any(Number)], released: 0, expired: 0 });
        else expect(outcome).toMatchObject({ settled: [], released: 1, expired: 0 });
      }
    } finally {
      await upstream.close();
    }
  });

  /** A JSON chat request as its bytes, for several written at once on one connection (pipelined). */
  const chatBytes = (key: string) => {
    const body = JSON.stringify({ model: 'held/model', messages: [{ role: 'user', content: 'Count to six' }] });
    return `POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  const generationsOf = async (server: SpawnedSwitchyard, key: string) =>
    ((await server.graphql('{ generations(first: 10) { edges { node { id status clientGone } } } }', {}, key)).body.data.generations.edges as { node: { id: string; status: string; clientGone: boolean } }[]).map((e) => e.node);

  /** How many responses on `route` have closed, as /metrics counts them. */
  const closedResponses = async (server: SpawnedSwitchyard, route: string) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    let count = 0;
    for (const line of text.split('\n')) if (line.startsWith('switchyard_http_requests_total{') && line.includes(`route="${route}"`)) count += Number(line.split(' ').at(-1));
    return count;
  };

  it('requests pipelined behind one being answered, whose client left: recorded undelivered, and not in flight once the connection is gone (an idle server drains at once)', { timeout: 60_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-drain-pipelined-gone-');
      const server = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '120000' } });
      const { key } = await setUp(server, upstream.baseUrl);
      // Two calls and a /health on one connection: node writes only the first's answer; the others wait behind it.
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(chatBytes(key) + chatBytes(key) + 'GET /health HTTP/1.1\r\nhost: x\r\n\r\n');
      await eventually('both calls to reach the upstream', () => upstream.received() === 2);
      socket.destroy();
      // The server has seen the connection go once each of its three responses is closed (counted in /metrics as it
      // closes): the two calls' and the queued /health's, which node never closes itself.
      await eventually('the three responses to be closed', async () => (await closedResponses(server, '/api/v1/chat/completions')) === 2 && (await closedResponses(server, '/health')) === 1);
      upstream.release();
      const generations = await eventually('both calls to be recorded', async () => {
        const found = await generationsOf(server, key);
        return found.length === 2 && found;
      });
      // Both ran to their end and are charged whole (a JSON call), neither delivered.
      expect(generations).toEqual([expect.objectContaining({ status: 'COMPLETED', clientGone: true }), expect.objectContaining({ status: 'COMPLETED', clientGone: true })]);

      // Nothing is in flight: the drain (grace far longer than the test) ends at once, cutting nothing.
      server.child.kill('SIGTERM');
      expect(await within('the process to exit', exitOf(server))).toEqual({ code: 0, signal: null });
      const draining = server.output().split('\n').find((line) => line.includes('draining: new requests are refused'));
      expect(draining).toContain('"inFlight":0');
      expect(server.output()).not.toContain('the shutdown grace period is over');
    } finally {
      await upstream.close();
    }
  });

  it('an embeddings call still running at SIGTERM (its client gone) is waited for: charged once and recorded before the process exits', { timeout: 60_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-drain-embeddings-');
      const server = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '120000' } });
      const { accountId, key } = await setUp(server, upstream.baseUrl, { embeddings: true });
      // The client leaves while the upstream holds the answer: nothing is in flight for the drain to wait on.
      const client = new AbortController();
      const sent = fetch(`${server.url}/api/v1/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: ['hello world'] }),
        signal: client.signal,
      }).catch(() => null);
      await eventually('the call to reach the upstream', () => upstream.received() === 1);
      client.abort();
      await sent;
      await eventually('the server to see the client go', async () => (await closedResponses(server, '/api/v1/embeddings')) === 1);

      server.child.kill('SIGTERM');
      // The stop says what it waits for; a process that does not wait exits with the call still held (its charge lost).
      const waited = await eventually('the stop to wait for the call, or the process to exit', () =>
        server.output().includes('waiting for the model calls in flight') ? 'waited' : server.child.exitCode !== null || server.child.signalCode !== null ? 'exited' : null,
      );
      expect(waited).toBe('waited');
      upstream.release();
      expect(await within('the process to exit', exitOf(server))).toEqual({ code: 0, signal: null });

      const outcomes = await ledgerOf(dir, accountId);
      expect(outcomes.size).toBe(1);
      const generationId = [...outcomes.keys()][0]!;
      // 7 prompt tokens at 1000 nano-dollars each, charged once.
      expect(outcomes.get(generationId)).toEqual({ settled: [7_000], released: 0, expired: 0 });
      expect(await generationEventsOf(dir, generationId)).toEqual(['GenerationRequested', 'AttemptStarted', 'GenerationCompleted']);
    } finally {
      await upstream.close();
    }
  });

  it('an embeddings call past the grace period is cut as a JSON chat call is: a 503, released, recorded failed; exit 0', { timeout: 60_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-drain-embeddings-deadline-');
      const server = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '300' } });
      const { accountId, key } = await setUp(server, upstream.baseUrl, { embeddings: true });
      const answered = fetch(`${server.url}/api/v1/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'openai/text-embedding-3-small', input: ['hello world'] }),
      }).then(async (res) => ({ status: res.status, generationId: res.headers.get('x-generation-id'), text: await res.text() }));
      await eventually('the call to reach the upstream', () => upstream.received() === 1);

      // The upstream never answers: the grace period ends with the call still running.
      server.child.kill('SIGTERM');
      const answer = await within('the call to be answered', answered);
      expect(answer.status).toBe(503);
      expect(answer.text).toMatch(/shutting down/);
      expect(await within('the process to exit', exitOf(server))).toEqual({ code: 0, signal: null });
      expect((await ledgerOf(dir, accountId)).get(answer.generationId!)).toEqual({ settled: [], released: 1, expired: 0 });
      expect(await generationEventsOf(dir, answer.generationId!)).toEqual(['GenerationRequested', 'GenerationFailed']);
    } finally {
      await upstream.close();
    }
  });

  it('two calls pipelined on one connection at SIGTERM: both answered in order, the last with Connection: close; charged once each, delivered', { timeout: 60_000 }, async () => {
    const upstream = await heldUpstream();
    try {
      const dir = switchyards.dataDir('switchyard-drain-pipelined-');
      const server = await switchyards.start(dir, { env: { SHUTDOWN_GRACE_MS: '120000' } });
      const { accountId, key } = await setUp(server, upstream.baseUrl);
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(chatBytes(key) + chatBytes(key));
      await eventually('both calls to reach the upstream', () => upstream.received() === 2);

      server.child.kill('SIGTERM');
      // (A pooled connection of the set-up's is closed by the drain: a reset is no answer yet.)
      await eventually('the server to report that it drains', async () => (await fetch(`${server.url}/health`).catch(() => null))?.status === 503);
      upstream.release();
      await within('the connection to be closed', closed);
      const answers = parseResponses(Buffer.concat(chunks));
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      // The first says keep-alive (the second is still to come on it); the last closes the connection.
      expect(answers.map((a) => a.headers.connection)).toEqual(['keep-alive', 'close']);
      expect(await within('the process to exit', exitOf(server))).toEqual({ code: 0, signal: null });
      expect(server.output()).not.toContain('the shutdown grace period is over');

      const outcomes = await ledgerOf(dir, accountId);
      for (const answer of answers) {
        const outcome = outcomes.get(answer.headers['x-generation-id']!);
        expect(outcome).toMatchObject({ settled: [expect.any(Number)], released: 0, expired: 0 });
      }
    } finally {
      await upstream.close();
    }
  });
});

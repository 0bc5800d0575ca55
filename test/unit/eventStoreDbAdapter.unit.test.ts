/**
 * The EventStoreDB adapter driven through a fake client (test/support/fakeEsdbClient.ts) that reproduces the
 * server's behaviours the adapter must survive: checkpoints at the next write position, 32-event catch-up pages,
 * servers without a caught-up message, dropped subscriptions, and the client's error types. No server runs here.
 */
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppendTooLargeError, StoreRetryableError, WrongExpectedVersionError } from '../../src/errors.js';
import { MAX_APPEND_BYTES, type EventStore, type RecordedEvent, type SubscriptionMessage } from '../../src/eventStore/eventStore.js';
import { createEventStoreDb, esdbEventId } from '../../src/eventStore/eventStoreDbEventStore.js';
import { followEvents } from '../../src/eventStore/follower.js';
import { sendError } from '../../src/http/rest.js';
import { createLogger } from '../../src/logger.js';
import { clientError, createFakeEsdbClient } from '../support/fakeEsdbClient.js';
import { DEADLINE_MS } from '../support/eventually.js';

const FAST = { baseMs: 1, maxMs: 5 };
const silent = () => createLogger('error', new Writable({ write: (_chunk, _enc, done) => done() }));

const open = (options: { sendsCaughtUp?: boolean } = {}) => {
  const fake = createFakeEsdbClient(options);
  return { fake, store: createEventStoreDb(fake.client, 'fake') };
};

/** Reads a subscription until `until` says stop; every message in order. */
const readUntil = async (store: EventStore, options: Parameters<EventStore['subscribeToAll']>[0], until: (messages: SubscriptionMessage[]) => boolean) => {
  const sub = store.subscribeToAll(options);
  const messages: SubscriptionMessage[] = [];
  const iterator = sub[Symbol.asyncIterator]();
  const deadline = setTimeout(() => void sub.close(), DEADLINE_MS);
  try {
    while (!until(messages)) {
      const next = await iterator.next();
      if (next.done) break;
      messages.push(next.value);
    }
  } finally {
    clearTimeout(deadline);
  }
  return { sub, messages, iterator };
};
const eventsOf = (messages: SubscriptionMessage[]) => messages.flatMap((m) => (m.kind === 'events' ? m.events : []));
const caughtUpOf = (messages: SubscriptionMessage[]) => messages.find((m) => m.kind === 'caughtUp') as { position: number } | undefined;

const until = async (check: () => boolean, what: string) => {
  for (const deadline = Date.now() + DEADLINE_MS; !check() && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

describe('positions: a server checkpoint is never taken for the last event seen', () => {
  it('delivers the event written at the position of the checkpoint that ended the catch-up', async () => {
    const { fake, store } = open();
    fake.appendElsewhere('account-1', 'Opened');
    fake.appendElsewhere('account-1', 'Granted');
    fake.appendElsewhere('other-1', 'Ignored');
    const lastAccountEvent = fake.log[1]!.position!.commit;
    const checkpointAt = fake.nextPosition();

    const { sub, messages, iterator } = await readUntil(store, { filter: { categories: ['account'] } }, (m) => caughtUpOf(m) !== undefined);
    expect(eventsOf(messages).map((e) => e.type)).toEqual(['Opened', 'Granted']);
    // The caught-up position is the last event delivered, not the checkpoint (where the next event will be).
    expect(caughtUpOf(messages)!.position).toBe(Number(lastAccountEvent));

    const written = fake.appendElsewhere('account-1', 'Spent');
    expect(written).toBe(checkpointAt);
    const next = await iterator.next();
    expect(next.value).toEqual({ kind: 'events', events: [expect.objectContaining({ type: 'Spent', position: checkpointAt })] });
    await sub.close();
  });

  it('a follower whose catch-up ends exactly on a 32-event page applies the next event and waits for it correctly', async () => {
    const { fake, store } = open();
    for (let i = 0; i < 32; i++) fake.appendElsewhere(`apikey-${i}`, 'KeyCreated', { i });
    const applied: RecordedEvent[] = [];
    const follower = followEvents(store, { categories: ['apikey'] }, (event) => applied.push(event), { name: 'keys', logger: silent(), retry: FAST });
    await follower.start();
    expect(applied).toHaveLength(32);
    expect(follower.status().position).toBe(applied[31]!.position);

    const next = fake.appendElsewhere('apikey-32', 'KeyRevoked');
    // The page's checkpoint named this position: a follower that took it for seen would answer at once, never apply it.
    expect(await follower.waitFor(next, 2000)).toBe(true);
    expect(applied.map((e) => e.type).slice(-1)).toEqual(['KeyRevoked']);
    expect(applied.map((e) => e.position)).toEqual(fake.log.map((e) => Number(e.position!.commit)));
    await follower.stop();
  });

  it('on a server without a caught-up message, reports caught up at the last event once a checkpoint passes the head', async () => {
    const { fake, store } = open({ sendsCaughtUp: false });
    fake.appendElsewhere('account-1', 'Opened');
    for (let i = 0; i < 40; i++) fake.appendElsewhere(`generation-${i}`, 'GenerationStarted');
    const { sub, messages, iterator } = await readUntil(store, { filter: { categories: ['account'] } }, (m) => caughtUpOf(m) !== undefined);
    expect(eventsOf(messages).map((e) => e.type)).toEqual(['Opened']);
    expect(caughtUpOf(messages)!.position).toBe(Number(fake.log[0]!.position!.commit));
    fake.appendElsewhere('account-1', 'Granted');
    expect((await iterator.next()).value).toEqual({ kind: 'events', events: [expect.objectContaining({ type: 'Granted' })] });
    await sub.close();
  });

  it('an unfiltered subscription from a position starts strictly after it and is caught up past trailing system events', async () => {
    const { fake, store } = open();
    const positions = [fake.appendElsewhere('a-1', 'One'), fake.appendElsewhere('a-1', 'Two'), fake.appendElsewhere('a-1', 'Three')];
    fake.appendSystem();
    expect(await store.headPosition()).toBe(positions[2]);
    const { sub, messages } = await readUntil(store, { after: positions[0] }, (m) => caughtUpOf(m) !== undefined);
    expect(eventsOf(messages).map((e) => e.position)).toEqual(positions.slice(1));
    expect(caughtUpOf(messages)!.position).toBe(positions[2]);
    await sub.close();
  });
});

describe('drops: a failed subscription ends its iterator with an error, and followers resume without loss or repeats', () => {
  it('a drop mid-stream rejects the iterator with a retryable error instead of hanging', async () => {
    const { fake, store } = open();
    fake.appendElsewhere('account-1', 'Opened');
    const { iterator } = await readUntil(store, {}, (m) => caughtUpOf(m) !== undefined);
    fake.dropAll();
    const failure = await iterator.next().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreRetryableError);
    expect(fake.openSubscriptions()).toBe(0);
  });

  it('a subscription the server ends (without an error) rejects rather than ending as if closed', async () => {
    const { fake, store } = open();
    const { iterator } = await readUntil(store, {}, (m) => caughtUpOf(m) !== undefined);
    await fake.client.dispose();
    await expect(iterator.next()).rejects.toThrow(/ended by the server/);
  });

  it('a follower dropped live resubscribes from its last event and applies every event exactly once', async () => {
    const { fake, store } = open();
    for (let i = 0; i < 5; i++) fake.appendElsewhere(`account-${i}`, 'Opened');
    const applied: number[] = [];
    const follower = followEvents(store, { categories: ['account'] }, (event) => applied.push(event.position), { name: 'directory', logger: silent(), retry: FAST });
    await follower.start();
    const beforeDrop = applied.at(-1)!;

    fake.dropAll();
    // Written while no subscription is open: the resubscription must read them.
    fake.appendElsewhere('account-5', 'Opened');
    fake.appendElsewhere('other-1', 'Ignored');
    const last = fake.appendElsewhere('account-6', 'Opened');
    expect(await follower.waitFor(last, 2000)).toBe(true);

    const expected = fake.log.filter((e) => e.streamId.startsWith('account-')).map((e) => Number(e.position!.commit));
    expect(applied).toEqual(expected);
    expect(fake.calls.subscribeToAll[1]!.fromPosition).toEqual({ commit: BigInt(beforeDrop), prepare: BigInt(beforeDrop) });
    expect(follower.status()).toMatchObject({ state: 'live', failures: 1, lastError: { message: expect.stringContaining('UNAVAILABLE') } });
    await follower.stop();
  });

  it('a follower dropped mid catch-up resumes after the last event it applied', async () => {
    const { fake, store } = open();
    for (let i = 0; i < 70; i++) fake.appendElsewhere(`account-${i}`, 'Opened');
    fake.dropNextCatchUpAfter(40);
    const applied: number[] = [];
    const follower = followEvents(store, { categories: ['account'] }, (event) => applied.push(event.position), { name: 'directory', logger: silent(), retry: FAST });
    await follower.start();
    expect(applied).toEqual(fake.log.map((e) => Number(e.position!.commit)));
    expect(fake.calls.subscribeToAll).toHaveLength(2);
    expect(follower.status().failures).toBe(1);
    await follower.stop();
  });
});

describe('appends: size cap, mapped errors, idempotent ids', () => {
  it('a caller id becomes a deterministic UUID, so a retried append is not written twice', async () => {
    const { fake, store } = open();
    const event = { id: 'ledger:acct-1:op-42', type: 'CreditsGranted', data: { amount: 5 } };
    await store.append('ledger-acct-1', [event]);
    await store.append('ledger-acct-1', [event]);
    expect(fake.log).toHaveLength(1);
    expect(fake.calls.appends[0]!.events[0]!.id).toBe(esdbEventId('ledger:acct-1:op-42'));
    expect(esdbEventId('ledger:acct-1:op-42')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const uuid = '0190f6a2-7c1e-7d2b-9a4f-3c5d6e7f8a9b';
    await store.append('x-1', [{ id: uuid, type: 'T', data: {} }]);
    expect(fake.calls.appends[2]!.events[0]!.id).toBe(uuid);
  });

  it.each(['not-leader', 'timeout', 'deadline-exceeded', 'unavailable'])('a %s failure is a retryable 503 with Retry-After', async (type) => {
    const { fake, store } = open();
    fake.failNextAppend(clientError(type, `${type} from the client`));
    const error = await store.append('account-1', [{ type: 'Opened', data: {} }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreRetryableError);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 503, retryAfterMs: 1000, metadata: { retryable: true, reason: type } });

    const written: { status?: number; headers?: Record<string, string>; body?: string } = {};
    const res = {
      headersSent: false,
      writeHead: (status: number, headers: Record<string, string>) => Object.assign(written, { status, headers }),
      end: (body: string) => Object.assign(written, { body }),
    } as unknown as ServerResponse;
    sendError(res, error, 'req-1', silent());
    expect(written.status).toBe(503);
    expect(written.headers!['retry-after']).toBe('1');
    expect(JSON.parse(written.body!)).toMatchObject({ error: { code: 503, metadata: { error_type: 'server', retryable: true } } });
  });

  it('reads a stream from the leader, whatever node the connection prefers: a stream is read to decide a command on it', async () => {
    const { fake, store } = open();
    fake.appendElsewhere('account-1', 'Opened');
    expect(await store.readStream('account-1')).toHaveLength(1);
    expect(fake.calls.readStream).toEqual([{ stream: 'account-1', requiresLeader: true }]);
  });

  it('a wrong expected revision stays a conflict', async () => {
    const { store } = open();
    await store.append('account-1', [{ type: 'Opened', data: {} }], { expectedRevision: 'no_stream' });
    const error = await store.append('account-1', [{ type: 'Opened', data: {} }], { expectedRevision: 'no_stream' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WrongExpectedVersionError);
    expect(error).toMatchObject({ status: 409, actual: 0 });
  });

  it('an append over the cap is refused before it is sent, with a clear non-retryable error', async () => {
    const { fake, store } = open();
    const big = 'x'.repeat(300 * 1024);
    const events = Array.from({ length: 4 }, () => ({ type: 'Big', data: { big } }));
    const error = await store.append('doc-1', events).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppendTooLargeError);
    expect(error).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE', metadata: { retryable: false, limit: MAX_APPEND_BYTES } });
    expect((error as Error).message).toMatch(/split it/);
    expect(fake.calls.appends).toHaveLength(0);
    // Three of them fit.
    await store.append('doc-1', events.slice(0, 3));
    expect(fake.log).toHaveLength(3);
  });

  it("the server's own maximum-append-size refusal is the same non-retryable error", async () => {
    const { fake, store } = open();
    fake.failNextAppend(Object.assign(clientError('maximum-append-size-exceeded'), { maxAppendSize: 524288 }));
    const error = await store.append('doc-1', [{ type: 'T', data: {} }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppendTooLargeError);
    expect(error).toMatchObject({ metadata: { limit: 524288, stream: 'doc-1' } });
  });
});

describe('server-side filters', () => {
  it('subscriptions pass categories as stream-name prefixes, event types as an exact regex, else exclude system events; each with a checkpoint interval', () => {
    const { fake, store } = open();
    void store.subscribeToAll({ filter: { categories: ['account', 'apikey'] } }).close();
    void store.subscribeToAll({ filter: { eventTypes: ['Key.Created', 'KeyRevoked'] } }).close();
    void store.subscribeToAll({}).close();
    const [byCategory, byType, unfiltered] = fake.calls.subscribeToAll.map((call) => call.filter);
    expect(byCategory).toMatchObject({ filterOn: 'streamName', prefixes: ['account-', 'apikey-'], checkpointInterval: 1 });
    expect(byType).toMatchObject({ filterOn: 'eventType', regex: '^(?:Key\\.Created|KeyRevoked)$', checkpointInterval: 1 });
    expect(unfiltered).toMatchObject({ filterOn: 'eventType', regex: '^[^$].*' });
  });

  it('a filtered readAll is read by the server (no page of $all is downloaded), honours after and maxCount, and ends at the head', async () => {
    for (const sendsCaughtUp of [true, false]) {
      const { fake, store } = open({ sendsCaughtUp });
      const ledger: number[] = [];
      for (let i = 0; i < 50; i++) {
        ledger.push(fake.appendElsewhere(`ledger-${i % 3}`, 'CreditsGranted'));
        fake.appendElsewhere(`generation-${i}`, 'GenerationStarted');
      }
      fake.appendSystem();
      const all = await store.readAll({ filter: { categories: ['ledger'] } });
      expect(all.map((e) => e.position)).toEqual(ledger);
      const page = await store.readAll({ after: ledger[9], maxCount: 10, filter: { categories: ['ledger'] } });
      expect(page.map((e) => e.position)).toEqual(ledger.slice(10, 20));
      expect(await store.readAll({ after: ledger[49], filter: { categories: ['ledger'] } })).toEqual([]);
      // Only the head lookups read $all (backwards, one page): the events came through filtered subscriptions.
      expect(fake.calls.readAll.every((call) => call.direction === 'backwards' && call.maxCount === 32)).toBe(true);
      expect(fake.openSubscriptions()).toBe(0);
    }
  });

});

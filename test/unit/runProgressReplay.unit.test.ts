/**
 * How workflowRun(id) followers replay a run's stored events (QA s45 res #1a: 60 subscribers of a ~30 MB run each
 * read and parsed the whole stream at once, a 5.2 s stall and +1.6 GB): a page at a time, the next once the reader has
 * taken the last, and followers replaying one run together read each page once. Over a fake store whose reads answer
 * a turn of the event loop later (as the storage thread does), recording what was asked.
 */
import { describe, expect, it } from 'vitest';
import type { EventStore, ReadStreamOptions, RecordedEvent, SubscriptionMessage } from '../../src/eventStore/eventStore.js';
import type { Logger } from '../../src/logger.js';
import { createRunProgress, REPLAY_PAGE_EVENTS, type ProgressFailure, type RunProgressItem } from '../../src/modules/workflows/run.progress.js';
import type { RunEvent } from '../../src/modules/workflows/run.events.js';

const RUN = 'run_replay';
const STREAM = `run-${RUN}`;
const AT = '2025-01-01T00:00:00.000Z';

const fakeStore = () => {
  const events: RecordedEvent[] = [];
  const reads: ReadStreamOptions[] = [];
  /** Reads wait while held (each answers what the stream held when it was asked). */
  let hold: Promise<void> | null = null;
  const live: ((message: SubscriptionMessage) => void)[] = [];
  const store = {
    async readStream(stream: string, options: ReadStreamOptions = {}) {
      const from = options.fromRevision ?? 0;
      const found = events.filter((event) => event.stream === stream && event.revision >= from).slice(0, options.maxCount ?? Infinity);
      if (options.fromRevision !== undefined) reads.push(options);
      await new Promise((resolve) => setImmediate(resolve));
      await hold;
      return found;
    },
    async headPosition() {
      return events.length;
    },
    subscribeToAll() {
      const queue: SubscriptionMessage[] = [];
      let wake: (() => void) | null = null;
      live.push((message) => {
        queue.push(message);
        wake?.();
      });
      return {
        close: async () => undefined,
        async *[Symbol.asyncIterator]() {
          for (;;) {
            while (queue.length > 0) yield queue.shift()!;
            await new Promise<void>((resolve) => (wake = resolve));
          }
        },
      };
    },
  };
  return {
    store: store as unknown as EventStore,
    reads,
    holdReads() {
      let release!: () => void;
      hold = new Promise((resolve) => (release = resolve));
      return () => {
        hold = null;
        release();
      };
    },
    /** Append to the run's stream and deliver it to the live subscriptions. */
    append(...appended: RunEvent[]) {
      const recorded = appended.map((event, i) => ({ ...event, id: `e${events.length + i}`, stream: STREAM, revision: events.length + i, position: events.length + i + 1, metadata: {}, recordedAt: AT }) as RecordedEvent);
      events.push(...recorded);
      for (const deliver of live) deliver({ kind: 'events', events: recorded });
    },
  };
};

const started: RunEvent = { type: 'RunStarted', data: { runId: RUN, workflowId: 'wf_1', version: 1, trigger: null, at: AT } };
const stepEvents = (i: number): RunEvent[] => [
  { type: 'StepStarted', data: { key: `s${i}`, attempt: 1, idempotencyKey: `k${i}`, at: AT } },
  { type: 'StepSucceeded', data: { key: `s${i}`, attempt: 1, output: `output ${i}`, cost: 0, at: AT } },
];
const succeeded: RunEvent = { type: 'RunSucceeded', data: { output: 'done', at: AT } };

const silent = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;

const readAll = async (iterator: AsyncIterableIterator<RunProgressItem | ProgressFailure>) => {
  const items: (RunProgressItem | ProgressFailure)[] = [];
  for await (const item of iterator) items.push(item);
  return items;
};
const revisions = (items: (RunProgressItem | ProgressFailure)[]) => items.map((item) => ('revision' in item ? item.revision : item.type));

describe('replaying a run to its followers', () => {
  it('reads it a page at a time, and followers replaying it together read each page once', async () => {
    const fake = fakeStore();
    const steps = 20;
    fake.append(started, ...Array.from({ length: steps }, (_, i) => stepEvents(i)).flat(), succeeded);
    const total = 2 + 2 * steps;
    const progress = createRunProgress({ eventStore: fake.store, logger: silent });

    const followers = Array.from({ length: 10 }, () => progress.follow(RUN));
    const replays = await Promise.all(followers.map(readAll));

    for (const items of replays) {
      expect(revisions(items)).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(items.at(-1)).toMatchObject({ type: 'runEnded', status: 'succeeded', output: 'done' });
    }
    // Never the whole stream at once: pages, each asked for once for all ten followers.
    const pages = Math.ceil(total / REPLAY_PAGE_EVENTS);
    expect(fake.reads.every((read) => read.maxCount === REPLAY_PAGE_EVENTS)).toBe(true);
    expect(fake.reads.map((read) => read.fromRevision)).toEqual(Array.from({ length: pages }, (_, i) => i * REPLAY_PAGE_EVENTS));
    progress.stop();
  });

  it('a follower reads the next page only once its reader has taken the last', async () => {
    const fake = fakeStore();
    fake.append(started, ...Array.from({ length: 20 }, (_, i) => stepEvents(i)).flat(), succeeded);
    const progress = createRunProgress({ eventStore: fake.store, logger: silent });
    const follower = progress.follow(RUN);
    const first = await follower.next();
    expect(first.value).toMatchObject({ type: 'runStarted', revision: 0 });
    // However long the reader waits, nothing more is read than the page it is on.
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(fake.reads.map((read) => read.fromRevision)).toEqual([0]);
    for (let i = 1; i < REPLAY_PAGE_EVENTS; i++) expect((await follower.next()).value).toMatchObject({ revision: i });
    expect((await follower.next()).value).toMatchObject({ revision: REPLAY_PAGE_EVENTS });
    expect(fake.reads.map((read) => read.fromRevision)).toEqual([0, REPLAY_PAGE_EVENTS]);
    await follower.return?.();
    progress.stop();
  });

  it('a follower that joins a read asked for before it registered does not take that read’s end for the stream’s', async () => {
    const fake = fakeStore();
    fake.append(started, stepEvents(0)[0]!);
    const progress = createRunProgress({ eventStore: fake.store, logger: silent });
    const release = fake.holdReads();
    const early = progress.follow(RUN);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(fake.reads).toHaveLength(1);
    // The run ends while the early follower's read is out: it gets the end live; the late one registers after it.
    fake.append(stepEvents(0)[1]!, succeeded);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const late = progress.follow(RUN);
    const replays = Promise.all([readAll(early), readAll(late)]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    release();
    for (const items of await replays) expect(revisions(items)).toEqual([0, 1, 2, 3]);
    progress.stop();
  });
});

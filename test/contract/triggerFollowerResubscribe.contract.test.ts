/**
 * A trigger follower whose handler answers 'resubscribe' (its interest grew) reads on right after that event with
 * the filter as it is then, before reading anything more from the old subscription: an event already in the log that
 * the old filter skipped is delivered, also during catch-up, where the old subscription's next message (caught up,
 * past it) would have moved the position beyond it. A resubscription is no failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { AllFilter, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { followForTrigger } from '../../src/modules/workflows/triggers/triggerFollower.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import { DEADLINE_MS } from '../support/eventually.js';

const closers: (() => Promise<void>)[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const until = async (done: () => boolean, what: string) => {
  const deadline = Date.now() + DEADLINE_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe('a trigger follower resubscribing at an event', () => {
  it('reads the events after it with the new filter (those the old one skipped included), asking for the filter with its position, without a failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-resubscribe-'));
    dirs.push(dir);
    const store = openSqliteEventStore({ dir, synchronous: 'normal' });
    const readStore = await openEmbeddedReadStore({ dir });
    closers.push(() => store.close(), () => readStore.close());
    const lines: unknown[] = [];
    const logger = createLogger('warn', new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));

    // Already in the log before the start: a change that widens the interest, then an event only the wider filter takes.
    const change = await store.append('change-1', [{ type: 'Widened', data: {} }]);
    await store.append('gen-1', [{ type: 'Generated', data: { n: 1 } }]);

    let filter: AllFilter = { categories: ['change'] };
    const subscribedAfter: number[] = [];
    const handled: RecordedEvent[] = [];
    const follower = followForTrigger({
      name: 'test',
      eventStore: store,
      readStore,
      checkpoint: 'resubscribeTest',
      filter: async (position) => {
        subscribedAfter.push(position);
        return filter;
      },
      batchSize: 100,
      firstStart: 'start',
      handle: {
        one: async (event) => {
          handled.push(event);
          if (event.type === 'Widened') filter = { categories: ['change', 'gen'] };
          else if (event.type === 'Narrowed') filter = { categories: ['change'] };
          else return;
          return 'resubscribe';
        },
      },
      logger,
      retry: { baseMs: 1_000, maxMs: 1_000 },
    });
    closers.push(() => follower.stop());
    await follower.start();
    await until(() => handled.length >= 2, 'the skipped event');
    expect(handled.map((event) => event.stream)).toEqual(['change-1', 'gen-1']);
    expect(subscribedAfter).toEqual([0, change.position]);

    // Live too: narrowed at one change (the next event not read), widened at the next (the one after it read).
    await store.append('change-2', [{ type: 'Narrowed', data: {} }]);
    await store.append('gen-2', [{ type: 'Generated', data: { n: 2 } }]);
    await store.append('change-3', [{ type: 'Widened', data: {} }]);
    await store.append('gen-3', [{ type: 'Generated', data: { n: 3 } }]);
    await until(() => handled.some((event) => event.stream === 'gen-3'), 'the event after the live change');
    expect(handled.map((event) => event.stream)).toEqual(['change-1', 'gen-1', 'change-2', 'change-3', 'gen-3']);
    expect(follower.status()).toMatchObject({ state: 'live', failures: 0, lastError: null });
    expect(lines).toEqual([]);
  });
});

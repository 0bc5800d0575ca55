import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import { DEADLINE_MS } from '../support/eventually.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * With automatic checkpoints off, only the background worker copies the WAL into the database file. Waits for the
 * whole copy (a look in the middle of a checkpoint sees the file part-grown).
 */
const waitForGrowth = async (file: string, from: number) => {
  for (const deadline = Date.now() + DEADLINE_MS; Date.now() < deadline; ) {
    if (statSync(file).size > from + 1_000_000) return statSync(file).size;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return statSync(file).size;
};

describe('WAL checkpoints run in a background worker', () => {
  it('the event store database file receives the appended pages without a checkpoint on the event loop', async () => {
    const store = openSqliteEventStore({ dir, synchronous: 'normal' });
    const file = join(dir, 'events.db');
    const before = statSync(file).size;
    for (let i = 0; i < 20; i++) {
      await store.append(`s-${i}`, Array.from({ length: 250 }, (_, n) => ({ type: 'Filled', data: { n, pad: 'x'.repeat(200) } })));
    }
    expect(statSync(file).size).toBe(before);
    expect(await waitForGrowth(file, before)).toBeGreaterThan(before + 1_000_000);
    await store.close();
    const reopened = openSqliteEventStore({ dir });
    expect(await reopened.headPosition()).toBe(5000);
    await reopened.close();
  });

  it('so does the read store', async () => {
    const store = await openEmbeddedReadStore({ dir });
    const file = join(dir, 'readmodels.db');
    const before = statSync(file).size;
    await store.commit(
      Array.from({ length: 5000 }, (_, i) => ({ collection: 'c', id: `d${i}`, doc: { _id: `d${i}`, pad: 'y'.repeat(200) } })),
      { projection: 'p', version: 1, position: 1 },
    );
    expect(await waitForGrowth(file, before)).toBeGreaterThan(before + 1_000_000);
    await store.close();
  });
});

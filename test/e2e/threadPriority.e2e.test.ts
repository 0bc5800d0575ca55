import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { startStorageThread } from '../../src/storage/storageThread.js';
import { BACKGROUND_NICE } from '../../src/threadPriority.js';
import { DEADLINE_MS } from '../support/eventually.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-priority-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every thread of this process with its nice value (field 19 of /proc/self/task/<tid>/stat). */
const threadNices = (): Map<string, number> =>
  new Map(
    readdirSync('/proc/self/task').map((tid) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])] as const;
    }),
  );

describe('background threads yield the CPU to the request thread', () => {
  it.skipIf(process.platform !== 'linux')('the storage thread and both WAL checkpointers run at a lower priority; the request thread keeps its own', async () => {
    const before = threadNices();
    const mainNice = before.get(String(process.pid));
    const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
    const thread = await startStorageThread({ dir, eventStore, onError: (error) => { throw error; } });
    // The event store's checkpointer, the storage thread and the read store's checkpointer (started by the storage thread).
    let lowered: string[] = [];
    for (const deadline = Date.now() + DEADLINE_MS; lowered.length < 3 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      lowered = [...threadNices()].filter(([tid, nice]) => !before.has(tid) && nice === BACKGROUND_NICE).map(([tid]) => tid);
    }
    expect(lowered).toHaveLength(3);
    expect(BACKGROUND_NICE).toBeGreaterThan(mainNice!);
    expect(threadNices().get(String(process.pid))).toBe(mainNice);
    await thread.close();
    await eventStore.close();
  });
});

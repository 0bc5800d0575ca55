import { describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { chainAfter } from '../../src/modules/workflows/triggers/chain.js';

/** chainAfter over a log holding one run (run_r, of workflow wf_a owned by acc_a, itself at depth 2 of chain run_c). */
const log = {
  readStream: async (stream: string) =>
    stream === runStream('run_r')
      ? [{ id: 'e1', stream, revision: 0, position: 1, recordedAt: '', metadata: {}, type: 'RunStarted', data: { runId: 'run_r', workflowId: 'wf_a', version: 1, trigger: null, depth: 2, chain: 'run_c', at: '' } } as RecordedEvent]
      : [],
} as unknown as EventStore;
const deps = { eventStore: log, ownerOf: async (workflowId: string) => (workflowId === 'wf_a' ? 'acc_a' : null) };

describe('chainAfter', () => {
  it("places a run caused by a run of its own account one deeper in that run's chain", async () => {
    expect(await chainAfter(deps, 'run_r', 'acc_a')).toEqual({ depth: 3, chain: 'run_c' });
  });

  it("answers another account's run exactly like a missing one: depth 0, no chain", async () => {
    expect(await chainAfter(deps, 'run_r', 'acc_b')).toEqual({ depth: 0 });
    expect(await chainAfter(deps, 'run_missing', 'acc_b')).toEqual({ depth: 0 });
    expect(await chainAfter(deps, null, 'acc_a')).toEqual({ depth: 0 });
  });
});

import { describe, expect, it } from 'vitest';
import type { EventStore, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { causeOf } from '../../src/modules/workflows/triggers/chain.js';

/**
 * causeOf over a log holding two runs of workflow wf_a (owned by acc_a): run_r, at depth 2 of chain run_c, started
 * by key key_r; run_s, started with no key.
 */
const started = (runId: string, data: Record<string, unknown>) =>
  ({ id: `e-${runId}`, stream: runStream(runId), revision: 0, position: 1, recordedAt: '', metadata: {}, type: 'RunStarted', data: { runId, workflowId: 'wf_a', version: 1, trigger: null, at: '', ...data } }) as RecordedEvent;
const runs: Record<string, RecordedEvent> = { [runStream('run_r')]: started('run_r', { depth: 2, chain: 'run_c', keyId: 'key_r' }), [runStream('run_s')]: started('run_s', {}) };
const log = { readStream: async (stream: string) => (runs[stream] ? [runs[stream]] : []) } as unknown as EventStore;
const deps = { eventStore: log, ownerOf: async (workflowId: string) => (workflowId === 'wf_a' ? 'acc_a' : null) };

describe('causeOf', () => {
  it("places a run caused by a run of its own account one deeper in that run's chain, under that run's key", async () => {
    expect(await causeOf(deps, { run: 'run_r' }, 'acc_a')).toEqual({ place: { depth: 3, chain: 'run_c' }, keyId: 'key_r' });
    expect(await causeOf(deps, { run: 'run_s' }, 'acc_a')).toEqual({ place: { depth: 1, chain: 'run_s' }, keyId: null });
  });

  it('gives the key the event records as its cause, before the causing run’s', async () => {
    expect(await causeOf(deps, { key: 'key_w' }, 'acc_a')).toEqual({ place: { depth: 0 }, keyId: 'key_w' });
    expect(await causeOf(deps, { run: 'run_r', key: 'key_w' }, 'acc_a')).toEqual({ place: { depth: 3, chain: 'run_c' }, keyId: 'key_w' });
    expect(await causeOf(deps, { run: null, key: null }, 'acc_a')).toEqual({ place: { depth: 0 }, keyId: null });
  });

  it("answers another account's run exactly like a missing one: depth 0, no chain, none of its key", async () => {
    expect(await causeOf(deps, { run: 'run_r' }, 'acc_b')).toEqual({ place: { depth: 0 }, keyId: null });
    expect(await causeOf(deps, { run: 'run_missing' }, 'acc_b')).toEqual({ place: { depth: 0 }, keyId: null });
    expect(await causeOf(deps, { run: null }, 'acc_a')).toEqual({ place: { depth: 0 }, keyId: null });
  });
});

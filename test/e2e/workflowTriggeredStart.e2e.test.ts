/**
 * A triggered start (schedule, entry, event) reads the workflow from its stream and is answered once durable, not
 * once the read models hold it: with the read models held back, scheduled runs still start and run to their end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { scheduledRunId } from '../../src/modules/workflows/triggers/schedule.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

let h: Harness;
let key: string;

beforeAll(async () => {
  h = await startHarness({ WORKFLOW_MIN_SCHEDULE_SECONDS: '1' });
  const { body } = await h.gql(`mutation { openAccount(name: "ticks", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
  key = body.data.openAccount.initialKey.secret;
});
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A workflow due every second whose one step stamps its due time; answers its id. */
const createTicking = async (name: string): Promise<string> => {
  const definition = {
    name,
    trigger: { type: 'schedule', cron: '* * * * * *', timezone: 'UTC', catchUp: 'none' },
    steps: [{ key: 'stamp', type: 'action.transform', input: { expression: '=trigger.scheduledAt' } }],
  };
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }`, { d: definition }, key);
  return body.data.createWorkflow.id as string;
};

describe('triggered starts', () => {
  it('with the read models held back, a schedule due every second still starts its runs, and they end', async () => {
    const workflowId = await createTicking('Tick');
    const { core } = h.running;
    await core.runner.pause();
    try {
      const pausedAt = Date.now();
      // Due times from the pause on (a loaded host's late timer may skip some: the scheduler then fires the latest).
      const dues = Array.from({ length: 10 }, (_, i) => Math.ceil(pausedAt / 1000) * 1000 + i * 1000);
      const ended = async () => {
        const streams = await Promise.all(dues.map((due) => core.eventStore.readStream(runStream(scheduledRunId(workflowId, due)))));
        return streams.flatMap((events, i) => (events.at(-1)?.type === 'RunSucceeded' ? [{ due: dues[i]!, endedAt: Date.parse((events.at(-1)!.data as { at: string }).at) }] : []));
      };
      const runs = await eventually('two scheduled runs to end with the read models held back', async () => ((found) => found.length >= 2 && found)(await ended()));
      // A start that waited for the read models (5 s, then a warning) would have ended each run 5 s or more after its due
      // time: the run's own record says when it ended, however late this test looked.
      expect(Math.min(...runs.map((run) => run.endedAt - run.due)), 'a run ended sooner than a wait for the read models').toBeLessThan(5_000);
      expect(core.runner.position).toBeLessThan(await core.eventStore.headPosition());
    } finally {
      await core.runner.resume();
    }
    await h.gql(`mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }`, { id: workflowId }, key);
  });

  it('a run read after it ended in the log is read ended, though the read models are behind: the query waits for them', async () => {
    const workflowId = await createTicking('Tock');
    const { core } = h.running;
    await core.runner.pause();
    let runId: string | null = null;
    try {
      const dues = Array.from({ length: 10 }, (_, i) => Math.ceil(Date.now() / 1000) * 1000 + (i + 1) * 1000);
      runId = await eventually('a scheduled run to end with the read models held back', async () => {
        for (const due of dues) {
          const events = await core.eventStore.readStream(runStream(scheduledRunId(workflowId, due)));
          if (events.at(-1)?.type === 'RunSucceeded') return scheduledRunId(workflowId, due);
        }
        return null;
      });
      expect(core.runner.position).toBeLessThan(await core.eventStore.headPosition());
      // Asked while the read models still lack it; they resume 300 ms later. The answer is the ended run, not a stale one.
      const read = h.gql(`query($id: ID!) { workflowRun(id: $id) { status steps { key status } } }`, { id: runId }, key);
      await sleep(300);
      await core.runner.resume();
      const { body: got } = await read;
      expect(got.errors).toBeUndefined();
      expect(got.data.workflowRun).toEqual({ status: 'SUCCEEDED', steps: [{ key: 'stamp', status: 'SUCCEEDED' }] });
    } finally {
      await core.runner.resume();
    }
    await h.gql(`mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }`, { id: workflowId }, key);
  });
});

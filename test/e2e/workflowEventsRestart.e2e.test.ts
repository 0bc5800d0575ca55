/**
 * The event-trigger follower is durable: an event written while the server was down starts its run after the
 * restart, once, and a further restart (the event delivered again) starts no second run; nor does a custom event an
 * earlier version started its run for (under the id it named by the event's revision), delivered again. Only the
 * events an earlier holder may have handled (those in the log when the triggers start) are looked up under that id:
 * the later ones cost no read.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { customEventStream, derivedEventId } from '../../src/modules/workflows/customEvents.js';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { streamReads } from '../support/countingStreamReads.js';
import { DEADLINE_MS, eventually } from '../support/eventually.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-events-restart-'));
let h: Harness | null = null;
afterAll(async () => {
  await h?.stop({ keepData: true });
  rmSync(dir, { recursive: true, force: true });
});

/** Open Dana (a designer) with a workflow that answers custom.deployed with its data. */
const givenDeployWorkflow = async (harness: Harness) => {
  const { body } = await harness.gql(`mutation { openAccount(name: "Dana") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  const dana = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await harness.gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: dana.id });
  const created = await harness.gql(
    'mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }',
    { d: { name: 'On deploy', trigger: { type: 'event', event: 'custom.deployed' }, steps: [{ key: 'reply', type: 'action.respond', input: { got: '=trigger.data' } }] } },
    dana.key,
  );
  return { dana, workflowId: created.body.data.createWorkflow.id as string };
};

/** The run stream an earlier version named a custom event's run by: its stream and revision, and the workflow. */
const revisionRunStream = (stream: string, revision: number, workflowId: string): string =>
  runStream(`run_${createHash('sha256').update(`event\n${stream}\n${revision}\n${workflowId}`).digest('hex').slice(0, 40)}`);

const runsOf = async (harness: Harness, workflowId: string, key: string) => {
  const { body } = await harness.gql(`query($id: ID!) { workflowRuns(workflowId: $id, first: 10) { edges { node { id status output } } } }`, { id: workflowId }, key);
  expect(body.errors).toBeUndefined();
  return (body.data.workflowRuns.edges as { node: { id: string; status: string; output: any } }[]).map((edge) => edge.node);
};

describe('event triggers across a restart', () => {
  it('an event appended while the server was stopped fires after the restart, once, and not again on the next restart', async () => {
    h = await startHarness({}, dir);
    const { dana, workflowId } = await givenDeployWorkflow(h);
    await h.stop({ keepData: true });
    h = null;

    // Written by another writer while Switchyard is down.
    const store = openSqliteEventStore({ dir, synchronous: 'normal' });
    const at = new Date().toISOString();
    await store.append(customEventStream(dana.id), [{ id: derivedEventId('while-down'), type: 'CustomEventEmitted', data: { accountId: dana.id, name: 'custom.deployed', data: { version: '1.2.3' }, source: null, at } }]);
    await store.close();

    h = await startHarness({}, dir);
    const until = Date.now() + 15_000;
    let runs = await runsOf(h, workflowId, dana.key);
    while (!(runs.length === 1 && runs[0]!.status === 'SUCCEEDED') && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      runs = await runsOf(h, workflowId, dana.key);
    }
    expect(runs).toMatchObject([{ status: 'SUCCEEDED', output: { got: { version: '1.2.3' } } }]);
    const first = runs[0]!.id;

    await h.stop({ keepData: true });
    h = await startHarness({}, dir);
    // Proof that the follower is past the first event (a quiet 600 ms proved nothing on a loaded host): another event,
    // after it in the log, gets its run; the follower handles events in order, so a second run of the first is on
    // record by then if there is one.
    await h.running.core.eventStore.append(customEventStream(dana.id), [{ type: 'CustomEventEmitted', data: { accountId: dana.id, name: 'custom.deployed', data: { version: '1.2.4' }, source: null, at: new Date().toISOString() } }]);
    const until2 = Date.now() + DEADLINE_MS;
    while (!runs.some((run) => run.status === 'SUCCEEDED' && run.output?.got?.version === '1.2.4') && Date.now() < until2) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      runs = await runsOf(h, workflowId, dana.key);
    }
    expect(runs.map((run) => run.output?.got?.version).sort()).toEqual(['1.2.3', '1.2.4']);
    expect(runs.map((run) => run.id)).toContain(first);
  });

  it('a custom event an earlier version started its run for, delivered again after the upgrade, starts no second run', async () => {
    const upgraded = mkdtempSync(join(tmpdir(), 'switchyard-events-upgrade-'));
    let harness = await startHarness({}, upgraded);
    try {
      const { dana, workflowId } = await givenDeployWorkflow(harness);
      await harness.stop({ keepData: true });

      // As an earlier version left it: the event handled (its run started under the id named by the event's stream
      // and revision), the follower's checkpoint not yet past it (a crash within its second between checkpoints).
      const store = openSqliteEventStore({ dir: upgraded, synchronous: 'normal' });
      const at = new Date().toISOString();
      const stream = customEventStream(dana.id);
      const emitted = await store.append(stream, [{ id: derivedEventId('before-upgrade'), type: 'CustomEventEmitted', data: { accountId: dana.id, name: 'custom.deployed', data: { version: '0.9' }, source: null, at } }]);
      const earlierRunId = `run_${createHash('sha256').update(`event\n${stream}\n${emitted.nextExpectedRevision}\n${workflowId}`).digest('hex').slice(0, 40)}`;
      const trigger = { event: 'custom.deployed', data: { version: '0.9' }, source: null, at };
      await store.append(runStream(earlierRunId), [
        { type: 'RunStarted', data: { runId: earlierRunId, workflowId, version: 1, trigger, at } },
        { type: 'RunSucceeded', data: { output: { got: { version: '0.9' } }, at } },
      ]);
      await store.close();

      harness = await startHarness({}, upgraded);
      // A later event's run on record: the follower handled the earlier one before it.
      await harness.running.core.eventStore.append(stream, [{ type: 'CustomEventEmitted', data: { accountId: dana.id, name: 'custom.deployed', data: { version: '1.0' }, source: null, at: new Date().toISOString() } }]);
      const runs = await eventually('the later event’s run', async () => {
        const found = await runsOf(harness, workflowId, dana.key);
        return found.some((run) => run.status === 'SUCCEEDED' && run.output?.got?.version === '1.0') && found;
      });
      expect(runs.map((run) => [run.id === earlierRunId, run.output?.got?.version]).sort()).toEqual([
        [false, '1.0'],
        [true, '0.9'],
      ]);
    } finally {
      await harness.stop({ keepData: true });
      rmSync(upgraded, { recursive: true, force: true });
    }
  });

  it('a custom event appended after the triggers started is not looked up under the earlier version’s run id (no read); one in the log before is', async () => {
    const counted = mkdtempSync(join(tmpdir(), 'switchyard-events-bound-'));
    let harness = await startHarness({}, counted);
    try {
      const { dana, workflowId } = await givenDeployWorkflow(harness);
      await harness.stop({ keepData: true });
      // Written while the server was down: in the log before the triggers start, so an earlier holder may have
      // handled it (its run under the revision-named id is looked for).
      const store = openSqliteEventStore({ dir: counted, synchronous: 'normal' });
      const stream = customEventStream(dana.id);
      const data = (version: string) => ({ accountId: dana.id, name: 'custom.deployed', data: { version }, source: null, at: new Date().toISOString() });
      const before = await store.append(stream, [{ id: derivedEventId('bound-before'), type: 'CustomEventEmitted', data: data('1.0') }]);
      await store.close();

      harness = await startHarness({}, counted, { eventStoreWrapper: new URL('../support/countingStreamReads.ts', import.meta.url).href });
      const later: number[] = [];
      for (const version of ['1.1', '1.2', '1.3']) later.push((await harness.running.core.eventStore.append(stream, [{ type: 'CustomEventEmitted', data: data(version) }])).nextExpectedRevision);
      await eventually('the four runs', async () => {
        const runs = await runsOf(harness, workflowId, dana.key);
        return runs.filter((run) => run.status === 'SUCCEEDED').length === 4;
      });
      const reads = streamReads(counted);
      expect(reads.filter((read) => read === revisionRunStream(stream, before.nextExpectedRevision, workflowId))).toHaveLength(1);
      // Before: one read each (every custom event, every listening workflow, for good).
      for (const revision of later) expect(reads.filter((read) => read === revisionRunStream(stream, revision, workflowId))).toHaveLength(0);
    } finally {
      await harness.stop({ keepData: true });
      rmSync(counted, { recursive: true, force: true });
    }
  });
});

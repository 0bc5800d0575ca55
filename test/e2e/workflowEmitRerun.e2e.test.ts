/**
 * An `action.emit` step run again (its StepSucceeded was not recorded: a crash, a lost lease, a failed append) on a
 * store that writes its event again: EventStoreDB with `expectedRevision: 'any'` checks ids only against a bounded
 * cache, so the same event (same id) can land twice in the stream, at two revisions. The workflows listening to it
 * still start one run.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customEventStream } from '../../src/modules/workflows/customEvents.js';
import { createLogger } from '../../src/logger.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { failStepOutcomeOnceFlag } from '../support/esdbAnyAppends.js';
import { eventually } from '../support/eventually.js';

let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-emit-'));
  h = await startHarness({}, dir, { logger: createLogger('silent'), eventStoreWrapper: new URL('../support/esdbAnyAppends.ts', import.meta.url).href });
});
afterAll(async () => {
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const ERROR = '... on DomainError { code message }';

const open = async (name: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name, roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  return { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
};
const create = async (definition: unknown, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  expect(body.data.createWorkflow.__typename, JSON.stringify(body)).toBe('Workflow');
  return body.data.createWorkflow.id;
};
const runManual = async (workflowId: string, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($id: ID!) { runWorkflow(id: $id) { __typename ... on WorkflowRun { id } ${ERROR} } }`, { id: workflowId }, key);
  expect(body.data.runWorkflow.__typename, JSON.stringify(body)).toBe('WorkflowRun');
  return body.data.runWorkflow.id;
};
const runsOf = async (workflowId: string, key: string) => {
  const { body } = await h.gql(`query($id: ID!) { workflowRuns(workflowId: $id, first: 50) { edges { node { id status steps { key attempts } } } } }`, { id: workflowId }, key);
  expect(body.errors).toBeUndefined();
  return (body.data.workflowRuns.edges as { node: { id: string; status: string; steps: { key: string; attempts: number }[] } }[]).map((edge) => edge.node);
};
const ended = <R extends { status: string }>(runs: R[]) => runs.filter((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED');

describe('an emit step run again on a store that writes its event again', () => {
  it('starts one run of each listening workflow', { timeout: 30_000 }, async () => {
    const owner = await open('Emma Emit');
    const echo = (name: string, event: string) => ({ name, trigger: { type: 'event', event }, steps: [{ key: 'reply', type: 'action.respond', input: { got: '=trigger.data' } }] });
    const emitting = (name: string, event: string) => ({ name, trigger: { type: 'manual' }, steps: [{ key: 'emit', type: 'action.emit', input: { event, data: 1 } }] });
    const listener = await create(echo('On shipped', 'custom.shipped'), owner.key);
    const markerListener = await create(echo('On marker', 'custom.marker'), owner.key);
    const shipper = await create(emitting('Ship', 'custom.shipped'), owner.key);
    const marker = await create(emitting('Mark', 'custom.marker'), owner.key);

    writeFileSync(failStepOutcomeOnceFlag(dir), 'emit');
    const shipRun = await runManual(shipper, owner.key);
    const run = await eventually('the emitting run to end', async () => ended(await runsOf(shipper, owner.key)).find((r) => r.id === shipRun));
    expect(existsSync(failStepOutcomeOnceFlag(dir))).toBe(false);
    expect(run).toMatchObject({ status: 'SUCCEEDED', steps: [{ key: 'emit', attempts: 1 }] });
    // The step ran twice as one attempt, and the store wrote its event twice, with one id (as EventStoreDB can).
    const emitted = (await h.running.core.eventStore.readStream(customEventStream(owner.id))).filter((e) => (e.data as { name: string }).name === 'custom.shipped');
    expect(emitted).toHaveLength(2);
    expect(emitted[1]!.id).toBe(emitted[0]!.id);

    // The one follower handles events in log order: once the marker's run is on record, both copies were handled.
    await runManual(marker, owner.key);
    await eventually('the marker’s run', async () => ended(await runsOf(markerListener, owner.key)).length === 1);
    expect(await runsOf(listener, owner.key)).toHaveLength(1);
  });
});

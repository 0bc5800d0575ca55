/**
 * The workflow engine on several processes: two (or three) sets of the runs API, the workflows API, the scheduler and
 * the engine's lease, as separate app processes have them, on one SQLite event store and one embedded read store in
 * this test process (two apps cannot share a DATA_DIR: the embedded store locks it). Steps call a fake HTTP target
 * that counts calls and calls in flight at once; a step is executed twice exactly when the target sees it twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { allProjections } from '../../projections/index.js';
import { createProjectionRunner, type ProjectionRunner } from '../../projections/runner.js';
import { WORKFLOW_RUNS, type WorkflowRunDoc } from '../../projections/workflowRuns.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { handleCommand } from '../../src/eventStore/handleCommand.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { createOutboundPolicy, parseOutboundAllow } from '../../src/modules/outbound/outboundPolicy.js';
import { createWorkflowEngine, type WorkflowEngine } from '../../src/modules/workflows/engine.js';
import { createExpressionThreads } from '../../src/modules/workflows/expressionThreads.js';
import { createRunsApi, type RunsApi } from '../../src/modules/workflows/run.api.js';
import { runStream } from '../../src/modules/workflows/run.events.js';
import { createTablesApi, type TablesApi } from '../../src/modules/tables/tables.api.js';
import { actionHttp, createOutboundHttp } from '../../src/modules/workflows/steps/http.js';
import { upsertEntry } from '../../src/modules/workflows/steps/tables.js';
import { createScheduler } from '../../src/modules/workflows/triggers/schedule.js';
import { createWorkflowsApi, type WorkflowsApi } from '../../src/modules/workflows/workflow.api.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import type { ReadStore } from '../../src/readStore/readStore.js';
import { eventually } from '../support/eventually.js';

const LEASE = { ttlMs: 600, renewMs: 100 };
const caller = { principal: { accountId: 'acc_procs', keyId: null, roles: new Set(['designer' as const]) }, requestId: 'test' };

/** The fake target: counts calls per path and the most calls in flight at once; `hold` keeps answers back. */
const startTarget = async () => {
  const calls = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  let held: (() => void)[] = [];
  const state = { holdMs: 0, holdUntilReleased: false };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    calls.set(path, (calls.get(path) ?? 0) + 1);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
    };
    // An aborted call (the executor stopped) is no longer in flight.
    res.on('close', finish);
    req.resume();
    const answer = () => {
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path }));
    };
    if (state.holdUntilReleased) held.push(answer);
    else setTimeout(answer, state.holdMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    calls: (path: string) => calls.get(path) ?? 0,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    release() {
      state.holdUntilReleased = false;
      const waiting = held;
      held = [];
      for (const answer of waiting) answer();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};
type Target = Awaited<ReturnType<typeof startTarget>>;

interface Shared {
  eventStore: EventStore;
  readStore: ReadStore;
  runner: ProjectionRunner;
}

interface Proc {
  readonly name: string;
  readonly runs: RunsApi;
  readonly workflows: WorkflowsApi;
  readonly engine: WorkflowEngine;
  readonly tables: TablesApi;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const openShared = async (): Promise<Shared> => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-wf-procs-'));
  const eventStore = openSqliteEventStore({ dir, synchronous: 'normal' });
  const readStore = await openEmbeddedReadStore({ dir });
  const runner = createProjectionRunner({ eventStore, readStore, projections: allProjections });
  await runner.start();
  cleanup.push(async () => {
    await runner.stop();
    await readStore.close();
    await eventStore.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { eventStore, readStore, runner };
};

/** One app process's workflow services; `readStore` may be a view of the shared one (to stall its lease renewals). */
const openProcess = (shared: Shared, name: string, readStore: ReadStore = shared.readStore): Proc => {
  const { eventStore, runner } = shared;
  const logger = createLogger('silent');
  const now = () => new Date();
  const execute: Parameters<typeof createWorkflowsApi>[0]['execute'] = async (stream, decider, command, actor) => {
    const result = await handleCommand(eventStore, stream, decider, command, { metadata: { actor: actor.actor, correlationId: actor.correlationId, at: now().toISOString() } });
    if (result.position !== null) await runner.waitFor(result.position);
    return result;
  };
  const vault = {
    canEncrypt: false,
    encrypt: () => {
      throw new Error('no vault in this test');
    },
    decrypt: () => ({ secret: null, problem: 'no vault in this test' }),
  };
  const outbound = createOutboundPolicy({ allow: parseOutboundAllow('127.0.0.1') });
  // No catalog nor presets here: these workflows call HTTP targets and tables, never a model.
  const catalog = { modelProblem: (id: string) => `${id}: this test has no catalog` };
  const presets = { preset: () => undefined };
  // Schedules here fire every second (the default minimum interval is 60 s).
  const workflows = createWorkflowsApi({ eventStore, readStore, execute, vault, stepInputs: { catalog, outbound, presets }, now, limits: { minScheduleSeconds: 1 } });
  const http = createOutboundHttp(outbound);
  const tables = createTablesApi({ eventStore, readStore, runner, logger, now, workflowsNaming: workflows.namingTable, tableTurn: workflows.tableTurn });
  const steps = { 'action.http': actionHttp(http), 'action.upsertEntry': upsertEntry(tables.owned) };
  const expressions = createExpressionThreads();
  const runs = createRunsApi({ eventStore, readStore, runner, execute, workflows, steps, expressions, logger, now, rolesOf: () => new Set(['user']), keyRefusal: () => null });
  const engine = createWorkflowEngine({
    readStore,
    runs,
    logger,
    lease: { holder: name, ...LEASE },
    triggers: () => [createScheduler({ eventStore, runner, runs, logger, now })],
  });
  cleanup.push(async () => {
    await engine.stop();
    await runs.stop();
    await expressions.close();
  });
  return { name, runs, workflows, engine, tables };
};

const runDocs = async (shared: Shared, workflowId: string) => shared.readStore.collection<WorkflowRunDoc>(WORKFLOW_RUNS).find({ workflowId });
const runState = async (proc: Proc, runId: string) => (await proc.runs.waitForEnd(runId, 0)).status;
const holders = (procs: readonly Proc[]) => procs.filter((proc) => proc.engine.status().held);

const calling = (target: Target, path: string, settings: Record<string, unknown> = {}) => ({
  name: `Call ${path}`,
  trigger: { type: 'manual' },
  settings,
  steps: [
    { key: 'call', type: 'action.http', input: { method: 'POST', url: `${target.url}${path}`, body: { n: '=trigger.n' } } },
    { key: 'reply', type: 'action.respond', input: { status: '=steps.call.status' } },
  ],
});

describe('the workflow engine on two processes', () => {
  it('runs on one process at a time; a run started on the other is handed over to it and runs once; a clean stop hands the engine over at once', async () => {
    const shared = await openShared();
    const target = await startTarget();
    cleanup.push(() => target.close());
    const a = openProcess(shared, 'A');
    const b = openProcess(shared, 'B');
    await a.engine.start();
    await b.engine.start();
    expect(holders([a, b]).map((p) => p.name)).toEqual(['A']);
    const workflow = await a.workflows.create(caller, calling(target, '/handed'));
    const started = await b.runs.start(caller, workflow._id, { n: 1 });
    // B does not drive runs: it records the run for the holder, which admits it (A may have admitted it by the time B's
    // read-your-writes answer is read: queued or running, never B's).
    expect(['queued', 'running']).toContain(started.status);
    expect(b.runs.active).toBe(false);
    await eventually('the handed-over run to succeed', async () => (await runState(b, started.id)) === 'succeeded');
    expect(target.calls('/handed')).toBe(1);

    await a.engine.stop();
    await eventually('B to take the engine over', () => b.engine.status().held);
    expect(a.runs.active).toBe(false);
    const next = await a.runs.start(caller, workflow._id, { n: 2 });
    await eventually('the run started on A to succeed on B', async () => (await runState(a, next.id)) === 'succeeded');
    expect(target.calls('/handed')).toBe(2);
  });

  it('admits queued runs across processes: maxConcurrentRuns 1 with starts on both processes never runs two at once', async () => {
    const shared = await openShared();
    const target = await startTarget();
    cleanup.push(() => target.close());
    target.state.holdMs = 60;
    const a = openProcess(shared, 'A');
    const b = openProcess(shared, 'B');
    await a.engine.start();
    await b.engine.start();
    const workflow = await a.workflows.create(caller, calling(target, '/one-at-a-time', { maxConcurrentRuns: 1 }));
    const started = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => (n % 2 === 0 ? a : b).runs.start(caller, workflow._id, { n })));
    await eventually('every run to succeed', async () => (await Promise.all(started.map((run) => runState(a, run.id)))).every((status) => status === 'succeeded'));
    expect(target.calls('/one-at-a-time')).toBe(6);
    expect(target.maxInFlight).toBe(1);
  });

  it('an unfinished run resumed when both processes start executes its interrupted step once more, not once per process', async () => {
    const shared = await openShared();
    const target = await startTarget();
    cleanup.push(() => target.close());
    target.state.holdUntilReleased = true;
    // A first process starts the run and stops while its HTTP call is in flight (the call is abandoned, unrecorded).
    const first = openProcess(shared, 'first');
    await first.engine.start();
    const workflow = await first.workflows.create(caller, calling(target, '/interrupted'));
    const run = await first.runs.start(caller, workflow._id, { n: 1 });
    await eventually('the call in flight', () => target.calls('/interrupted') === 1);
    await first.engine.stop();
    await eventually('the abandoned call to close', () => target.inFlight === 0);
    expect(await runState(first, run.id)).toBe('running');

    target.release();
    const a = openProcess(shared, 'A');
    const b = openProcess(shared, 'B');
    await Promise.all([a.engine.start(), b.engine.start()]);
    expect(holders([a, b])).toHaveLength(1);
    await eventually('the resumed run to succeed', async () => (await runState(a, run.id)) === 'succeeded');
    expect(target.calls('/interrupted')).toBe(2);
  });

  it('two executors on one run never both perform a step: the one whose append conflicts stops driving it quietly', async () => {
    const shared = await openShared();
    const target = await startTarget();
    cleanup.push(() => target.close());
    // Held longer than the old executor's retry backoff (1 s), which resumed the step a second time.
    target.state.holdMs = 1_500;
    const first = openProcess(shared, 'first');
    await first.engine.start();
    const workflow = await first.workflows.create(caller, {
      name: 'Wait, then call',
      trigger: { type: 'manual' },
      steps: [
        { key: 'wait', type: 'control.delay', input: { for: 300 } },
        { key: 'call', type: 'action.http', input: { method: 'POST', url: `${target.url}/once`, body: {} } },
      ],
    });
    const run = await first.runs.start(caller, workflow._id, {});
    await eventually('the delay to be recorded', async () => (await shared.eventStore.readStream(runStream(run.id))).some((event) => event.type === 'StepWaiting'));
    await first.engine.stop();
    // Both executors drive the run (as a former holder that has not yet stopped and the new one would): both wake the
    // delay at the same revision; one append wins.
    const a = openProcess(shared, 'A');
    const b = openProcess(shared, 'B');
    await Promise.all([a.runs.resumeAll(), b.runs.resumeAll()]);
    await eventually('the run to succeed', async () => (await runState(a, run.id)) === 'succeeded');
    expect(target.calls('/once')).toBe(1);
    const events = await shared.eventStore.readStream(runStream(run.id));
    expect(events.filter((event) => event.type === 'StepStarted' && (event.data as { key: string }).key === 'call')).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('RunSucceeded');
  });

  it('a holder that cannot renew its lease stops its runs before it expires; the other takes over and finishes them, never two calls at once', async () => {
    const shared = await openShared();
    const target = await startTarget();
    cleanup.push(() => target.close());
    target.state.holdUntilReleased = true;
    let stalled = false;
    const hanging: ((error: Error) => void)[] = [];
    // A's renewals hang (a process cut off from the read store, or paused) until the test ends.
    const stalling: ReadStore = {
      ...shared.readStore,
      acquireLease: (name, holder, ttlMs) => (stalled ? new Promise((_, reject) => hanging.push(reject)) : shared.readStore.acquireLease(name, holder, ttlMs)),
    };
    const a = openProcess(shared, 'A', stalling);
    cleanup.push(() => {
      for (const fail of hanging) fail(new Error('the read store is back'));
    });
    const b = openProcess(shared, 'B');
    await a.engine.start();
    await b.engine.start();
    const workflow = await a.workflows.create(caller, calling(target, '/taken-over'));
    const run = await a.runs.start(caller, workflow._id, { n: 1 });
    await eventually('the call in flight on A', () => target.calls('/taken-over') === 1);
    stalled = true;
    await eventually('A to stop its runs', () => !a.runs.active);
    await eventually('the abandoned call to close', () => target.inFlight === 0);
    target.release();
    await eventually('B to take over', () => b.engine.status().held);
    await eventually('the run to succeed', async () => (await runState(b, run.id)) === 'succeeded');
    expect(target.calls('/taken-over')).toBe(2);
    expect(target.maxInFlight).toBe(1);
  });

  it('fires one run per due time of a schedule with both processes up, and each run calls the target once', async () => {
    const shared = await openShared();
    const target = await startTarget();
    cleanup.push(() => target.close());
    const a = openProcess(shared, 'A');
    const b = openProcess(shared, 'B');
    await a.engine.start();
    await b.engine.start();
    const workflow = await b.workflows.create(caller, { ...calling(target, '/scheduled'), trigger: { type: 'schedule', cron: '* * * * * *', timezone: 'UTC', catchUp: 'none' } });
    await eventually('three scheduled runs to succeed', async () => (await runDocs(shared, workflow._id)).filter((doc) => doc.status === 'succeeded').length >= 3);
    await b.workflows.disable(caller, workflow._id);
    await eventually('every scheduled run to end', async () => (await runDocs(shared, workflow._id)).every((doc) => doc.status !== 'running' && doc.status !== 'queued'));
    const docs = await runDocs(shared, workflow._id);
    const dueTimes = await Promise.all(docs.map(async (doc) => ((await shared.eventStore.readStream(runStream(doc._id), { maxCount: 1 }))[0]!.data as { trigger: { scheduledAt: string } }).trigger.scheduledAt));
    expect(new Set(dueTimes).size).toBe(docs.length);
    expect(target.calls('/scheduled')).toBe(docs.filter((doc) => doc.status === 'succeeded').length);
  });

  it('find-or-create (action.upsertEntry) from runs started on both processes at once creates one entry per match', async () => {
    const shared = await openShared();
    const a = openProcess(shared, 'A');
    const b = openProcess(shared, 'B');
    await a.engine.start();
    await b.engine.start();
    await a.tables.createTable(caller, 'seen');
    const workflow = await a.workflows.create(caller, {
      name: 'Remember the word',
      trigger: { type: 'manual' },
      settings: { maxConcurrentRuns: 50 },
      steps: [{ key: 'seen', type: 'action.upsertEntry', input: { table: 'seen', match: { word: '=trigger.word' } } }],
    });
    const words = ['alpha', 'beta', 'gamma'];
    const started = await Promise.all(Array.from({ length: 24 }, (_, n) => (n % 2 === 0 ? a : b).runs.start(caller, workflow._id, { word: words[n % 3]! })));
    await eventually('every run to succeed', async () => (await Promise.all(started.map((run) => runState(a, run.id)))).every((status) => status === 'succeeded'));
    const entries = await a.tables.owned.find('acc_procs', 'seen', { limit: 100 });
    expect(entries.map((entry) => entry.data['word']).sort()).toEqual(words);
  });
});

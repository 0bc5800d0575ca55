/**
 * Schedules and delays across kill -9 and a restart on the same data (Switchyard as its own process):
 * - a schedule due every second fires exactly once per due time, before and after the crash; of the due times
 *   missed while down, catch-up "one" fires the latest once and "none" fires none;
 * - a delay's wake-up time is stored: after the crash the run wakes within a second of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { listeningPort } from '../support/spawnedServer.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
type Gql = (query: string, variables?: Record<string, unknown>) => Promise<any>;

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const spawnSwitchyard = async (dir: string) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/switchyardProcess.ts'], {
    cwd: new URL('../..', import.meta.url),
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: 'info', EVENTSTORE_SYNC: 'normal' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const { port } = await listeningPort(child);
  const gql: Gql = async (query, variables) => {
    const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data: unknown; errors?: unknown };
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };
  const kill = async () => {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
  };
  return { gql, kill };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const until = async <T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

const createWorkflow = async (gql: Gql, definition: unknown): Promise<string> => {
  const data = await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ... on DomainError { message } } }`, { d: definition });
  expect(data.createWorkflow.__typename, JSON.stringify(data)).toBe('Workflow');
  return data.createWorkflow.id;
};

describe('schedule across kill -9', () => {
  const everySecond = (catchUp: 'one' | 'none') => ({
    name: `Every second, catch-up ${catchUp}`,
    trigger: { type: 'schedule', cron: '* * * * * *', timezone: 'UTC', catchUp },
    steps: [{ key: 'reply', type: 'action.respond', input: { scheduledAt: '=trigger.scheduledAt', firedAt: '=trigger.firedAt' } }],
  });

  /** Every run of the workflow once all have ended: their due times in order. */
  const dueTimes = async (gql: Gql, id: string): Promise<{ runs: number; times: number[] }> => {
    const nodes = await until(`the runs of ${id} to end`, async () => {
      const data = await gql(`query($id: ID!) { workflowRuns(workflowId: $id, first: 200) { edges { node { id status output } } } }`, { id });
      const found: { status: string; output: { scheduledAt: string } | null }[] = data.workflowRuns.edges.map((edge: { node: unknown }) => edge.node);
      return found.every((run) => run.status === 'SUCCEEDED') && found;
    });
    return { runs: nodes.length, times: nodes.map((run) => Date.parse(run.output!.scheduledAt)).sort((a, b) => a - b) };
  };

  it('fires exactly once per due time; of the times missed while down, "one" fires the latest once and "none" none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-schedule-crash-'));
    dirs.push(dir);
    const first = await spawnSwitchyard(dir);
    const one = await createWorkflow(first.gql, everySecond('one'));
    const none = await createWorkflow(first.gql, everySecond('none'));
    await sleep(2_500);
    await first.kill();
    const killedAt = Date.now();
    await sleep(3_000);

    const second = await spawnSwitchyard(dir);
    await sleep(2_500);
    for (const id of [one, none]) await second.gql(`mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }`, { id });

    const [withCatchUp, without] = [await dueTimes(second.gql, one), await dueTimes(second.gql, none)];
    for (const { runs, times } of [withCatchUp, without]) {
      expect(new Set(times).size, 'one run per due time: no due time fired twice').toBe(runs);
      const before = times.filter((time) => time <= killedAt);
      const after = times.filter((time) => time > killedAt);
      expect(before.length, 'fired before the crash').toBeGreaterThanOrEqual(1);
      expect(after.length, 'fired after the restart').toBeGreaterThanOrEqual(2);
      expect(after[0]! - before.at(-1)!, 'the due times missed while down were not all fired').toBeGreaterThanOrEqual(3_000);
      after.forEach((time, index) => index > 0 && expect(time - after[index - 1]!, 'every due time after the restart fired').toBe(1_000));
    }
    const firstAfter = (times: number[]) => times.find((time) => time > killedAt)!;
    // "none" starts at the first due time after the restart; "one" fired the one before it (the latest missed) too.
    expect(firstAfter(withCatchUp.times)).toBe(firstAfter(without.times) - 1_000);
  }, 60_000);
});

describe('control.delay across kill -9', () => {
  it('a delay waiting when the server is killed wakes within a second of its stored time after the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-delay-crash-'));
    dirs.push(dir);
    const first = await spawnSwitchyard(dir);
    const id = await createWorkflow(first.gql, {
      name: 'Wait through a crash',
      trigger: { type: 'manual' },
      settings: { timeoutSeconds: 120 },
      steps: [
        // Long enough for a kill and a restart on a loaded machine (CI saw a restart take over 6 s).
        { key: 'wait', type: 'control.delay', input: { for: 'PT20S' } },
        { key: 'reply', type: 'action.respond', input: { woke: '=steps.wait' } },
      ],
    });
    const started = await first.gql(`mutation($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id } } }`, { id });
    const runId: string = started.runWorkflow.id;
    const read = async (gql: Gql) => (await gql(`query($id: ID!) { workflowRun(id: $id) { status output steps { key status wakingAt output } } }`, { id: runId })).workflowRun;
    const waiting = await until('the delay to wait', async () => ((run) => run.steps[0]?.status === 'WAITING' && run)(await read(first.gql)));
    const wakingAt = Date.parse(waiting.steps[0].wakingAt);
    await first.kill();

    const second = await spawnSwitchyard(dir);
    // The restart must come before the wake-up time, or this would prove only that a late run wakes at once.
    expect(Date.now(), 'restarted before the wake-up time').toBeLessThan(wakingAt);
    const run = await until('the run to end', async () => ((found) => found.status !== 'RUNNING' && found)(await read(second.gql)), 30_000);
    expect(run.status).toBe('SUCCEEDED');
    const { wokeAt, scheduledFor } = run.steps[0].output;
    expect(Date.parse(scheduledFor)).toBe(wakingAt);
    expect(Date.parse(wokeAt) - wakingAt).toBeGreaterThanOrEqual(0);
    expect(Date.parse(wokeAt) - wakingAt, 'woke within a second of its time').toBeLessThan(1_000);
    expect(run.output).toEqual({ woke: { wokeAt, scheduledFor } });
  }, 90_000);
});

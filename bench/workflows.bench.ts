/**
 * Workflow benchmark: Switchyard started as its own process (`node --import tsx src/main.ts`, fresh DATA_DIR,
 * LOG_LEVEL=warn, the demo model with DEMO_TOKEN_DELAY_MS=0), driven over its webhook and GraphQL from this process.
 *
 *   npm run bench:workflows                    # both EVENTSTORE_SYNC=full (the shipped default) and normal
 *   npm run bench:workflows -- --sync normal   # one of them
 *   npm run bench:workflows -- --sync full --parts de --schedules 10000
 *
 * a. engine overhead per step: a 10-step transform-only workflow (each step `=steps.<previous> + 1`), triggered by a
 *    synchronous webhook one run at a time; per step = the run's duration (its RunStarted → RunSucceeded times) / 10,
 *    minus what the step's expression costs alone (evaluateStepInput on the same input and scope, in this process);
 * b. runs per second of the brief's example (search.models → action.model on the demo model → action.respond)
 *    through the webhook: sync (closed loop, answers per second) and async (202s, then runs completed per second
 *    from the first start to the last end, read from the runs' own times);
 * c. 1,000 concurrent runs, each an action.http step held by a slow fake upstream until all 1,000 are waiting
 *    (10 workflows, maxConcurrentRuns 100 each), with the server's peak RSS (VmHWM);
 * d. the entry trigger: insert (REST) → run started, p50/p99 over 270 entries paced 20 ms apart; then 2,000 entries
 *    from 4 callers through a store-and-transform workflow (action.transform → action.storeEntry), entries processed
 *    per second from the first insert to the last run's end;
 * e. --schedules N (default 10,000) workflows due in the same second (`<s> * * * * *`, one transform step): each run's
 *    start and end after that due time (the runs' own times), the runs found by their derived ids.
 * Each part runs on a fresh server; --parts picks some (default abcde).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_EXPRESSION_LIMITS, evaluateStepInput } from '../src/modules/workflows/run.expressions.js';
import { scheduledRunId } from '../src/modules/workflows/triggers/schedule.js';

const { values: args } = parseArgs({
  options: { sync: { type: 'string', default: 'both' }, seconds: { type: 'string', default: '8' }, parts: { type: 'string', default: 'abcde' }, schedules: { type: 'string', default: '10000' } },
});
if (!['normal', 'full', 'both'].includes(args.sync)) {
  process.stderr.write(`bench:workflows: --sync must be normal, full or both (got ${args.sync})\n`);
  process.exit(2);
}
const SECONDS = Number(args.seconds);
const PARTS = new Set(args.parts);
const SCHEDULES = Number(args.schedules);
const ADMIN = 'bench-admin-key-0123456789abcdef0123456789';
const repo = new URL('..', import.meta.url);
/** The search picks the free demo model: without free-tier limits (an operator's PLANS), so they are not what is measured. */
const UNLIMITED_FREE_TIER = JSON.stringify({ free: { freeRequestsPerMinute: null, freeRequestsPerDay: null, freeRequestsPerDayAfterPurchase: null, purchaseThreshold: 0 } });
/** One account measures thousands of workflows and runs at once, created in seconds: past the per-account defaults (100 each, WRITES_PER_MINUTE 600), raised. */
const BENCH_LIMITS = { WORKFLOW_MAX_PER_ACCOUNT: '1000000', WORKFLOW_MAX_RUNS_PER_ACCOUNT: '1000000', WRITES_PER_MINUTE: '1000000' };

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A keep-alive agent with room for the 1,000 concurrent webhooks.
const agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });

const request = (port: number, method: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });

const startServer = async (sync: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-wf-'));
  // BENCH_SERVER_NODE_ARGS: extra node flags for the server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts'], {
    cwd: repo,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ADMIN_API_KEY: ADMIN, LOG_LEVEL: 'info', EVENTSTORE_SYNC: sync, DEMO_TOKEN_DELAY_MS: '0', OUTBOUND_ALLOW: '127.0.0.1', PLANS: UNLIMITED_FREE_TIER, ...BENCH_LIMITS },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      output += c.toString();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`Switchyard exited (${code}):\n${output}`)));
  });
  let stopping = false;
  // A server that dies mid-part shows why (the part then fails on a reset connection).
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`Switchyard exited (${code ?? signal}); its last output:\n${output.slice(-4000)}\n`);
  });
  const gql = async (query: string, variables: Record<string, unknown> = {}, key = ADMIN) => {
    const res = await request(port, 'POST', '/graphql', { authorization: `Bearer ${key}` }, JSON.stringify({ query, variables }));
    const body = JSON.parse(res.text) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const peakRssMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { port, gql, peakRssMiB, stop, output: () => output };
};
type Server = Awaited<ReturnType<typeof startServer>>;

/** A designer account with credits; returns its key. */
const designer = async (s: Server) => {
  const opened = (await s.gql(`mutation { openAccount(name: "Bench", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).openAccount;
  await s.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 100000000000, reason: "bench") { __typename } }`, { id: opened.account.id });
  return opened.initialKey.secret as string;
};

/** Create, give a webhook secret and enable a workflow; returns its webhook's path and secret. */
const webhookWorkflow = async (s: Server, key: string, definition: unknown) => {
  const created = (await s.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id webhookUrl } ... on DomainError { code message details } } }`, { d: definition }, key)).createWorkflow;
  if (created.__typename !== 'Workflow') throw new Error(JSON.stringify(created));
  const secret = (await s.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } } }`, { id: created.id }, key)).rotateWebhookSecret.secret as string;
  await s.gql(`mutation($id: ID!) { enableWorkflow(id: $id) { __typename } }`, { id: created.id }, key);
  return { id: created.id as string, path: `/api/v1/workflows/${created.id}/webhook`, secret };
};

const hook = (s: Server, w: { path: string; secret: string }, body: unknown) => request(s.port, 'POST', w.path, { 'x-switchyard-webhook-secret': w.secret }, JSON.stringify(body));

/** The runs of a workflow (every page), with their times. */
const runsOf = async (s: Server, key: string, workflowId: string) => {
  const runs: { id: string; status: string; startedAt: string; endedAt: string | null; durationMs: number | null }[] = [];
  for (let after: string | null = null; ; ) {
    const page: any = (await s.gql(`query($id: ID!, $after: String) { workflowRuns(workflowId: $id, first: 100, after: $after) { edges { cursor node { id status startedAt endedAt durationMs } } pageInfo { hasNextPage } } }`, { id: workflowId, after }, key)).workflowRuns;
    for (const edge of page.edges) runs.push(edge.node);
    if (!page.pageInfo.hasNextPage) return runs;
    after = page.edges.at(-1).cursor;
  }
};

const brief = (respond: 'sync' | 'async') => ({
  name: `Answer questions (${respond})`,
  trigger: { type: 'webhook', respond },
  settings: { maxConcurrentRuns: 100, timeoutSeconds: 120, budget: 50_000_000 },
  steps: [
    { key: 'pick', type: 'search.models', input: { maxPromptPrice: 1000, sort: 'price', provider: 'switchyard' } },
    { key: 'answer', type: 'action.model', input: { model: '=steps.pick.first.id', prompt: '=trigger.body.question', maxTokens: 300 } },
    { key: 'reply', type: 'action.respond', input: { status: 200, body: { answer: '=steps.answer.text', model: '=steps.answer.model' } } },
  ],
});

const TEN_STEPS = Array.from({ length: 10 }, (_, i) => ({ key: `s${i}`, type: 'action.transform', input: { expression: i === 0 ? '=trigger.body.n + 1' : `=steps.s${i - 1} + 1` } }));

/** a. engine overhead per step. */
const overhead = async (s: Server, key: string) => {
  const w = await webhookWorkflow(s, key, { name: 'Ten transforms', trigger: { type: 'webhook', respond: 'sync' }, steps: TEN_STEPS });
  const ids: string[] = [];
  for (let i = 0; i < 330; i++) {
    const res = await hook(s, w, { n: i });
    if (res.status !== 200) throw new Error(`ten transforms: ${res.status} ${res.text}`);
    if (i >= 30) ids.push(String(res.headers['x-switchyard-run-id']));
  }
  const byId = new Map((await runsOf(s, key, w.id)).map((r) => [r.id, r]));
  const perStep = sortNum(ids.map((id) => byId.get(id)!.durationMs! / TEN_STEPS.length));
  // The expressions alone, as the executor evaluates them (compile + evaluate), on a scope like a run's.
  const scope = { trigger: { type: 'webhook', body: { n: 1 }, headers: {} }, steps: Object.fromEntries(TEN_STEPS.map((step, i) => [step.key, i + 2])), run: { id: 'run_x', startedAt: new Date().toISOString() }, workflow: { id: 'wf_x', version: 1, name: 'Ten transforms' } };
  const expr: number[] = [];
  for (let r = 0; r < 300; r++) {
    for (const step of TEN_STEPS) {
      const t = performance.now();
      await evaluateStepInput(step.input, scope, `steps.${step.key}.input`, DEFAULT_EXPRESSION_LIMITS);
      expr.push(performance.now() - t);
    }
  }
  const exprSorted = sortNum(expr.slice(expr.length / 3));
  const e50 = percentile(exprSorted, 50);
  return { stepP50: percentile(perStep, 50), stepP90: percentile(perStep, 90), exprP50: e50, overheadP50: percentile(perStep, 50) - e50, overheadP90: percentile(perStep, 90) - e50 };
};

/** A closed loop of `concurrency` callers for SECONDS; returns the answers per status. */
const closedLoop = async (concurrency: number, call: () => Promise<number>) => {
  const statuses = new Map<number, number>();
  const end = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const status = await call().catch(() => 0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    }),
  );
  return { statuses, seconds: (performance.now() - started) / 1000 };
};

/** b. the brief's example through the webhook, sync and async. */
const throughput = async (s: Server, key: string) => {
  const sync = await webhookWorkflow(s, key, brief('sync'));
  for (let i = 0; i < 20; i++) {
    const res = await hook(s, sync, { question: 'warm up?' });
    if (res.status !== 200) throw new Error(`the brief's example answered ${res.status}: ${res.text}`);
  }
  const syncLoop = await closedLoop(32, async () => (await hook(s, sync, { question: 'What is a switchyard?' })).status);
  const syncOk = syncLoop.statuses.get(200) ?? 0;

  // Async: several workflows (each holds at most 100 runs at once); the 202s first, then every run's end.
  const asyncFlows = await Promise.all(Array.from({ length: 4 }, () => webhookWorkflow(s, key, brief('async'))));
  let next = 0;
  const asyncLoop = await closedLoop(32, async () => (await hook(s, asyncFlows[next++ % asyncFlows.length]!, { question: 'What is a switchyard?' })).status);
  const accepted = asyncLoop.statuses.get(202) ?? 0;
  let runs: Awaited<ReturnType<typeof runsOf>> = [];
  for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(500)) {
    runs = (await Promise.all(asyncFlows.map((w) => runsOf(s, key, w.id)))).flat();
    if (runs.length >= accepted && runs.every((r) => r.status !== 'RUNNING' && r.status !== 'QUEUED')) break;
  }
  const succeeded = runs.filter((r) => r.status === 'SUCCEEDED');
  const first = Math.min(...runs.map((r) => Date.parse(r.startedAt)));
  const last = Math.max(...runs.map((r) => Date.parse(r.endedAt ?? r.startedAt)));
  return {
    syncRunsPerSecond: syncOk / syncLoop.seconds,
    syncOther: [...syncLoop.statuses].filter(([st]) => st !== 200),
    asyncAcceptedPerSecond: accepted / asyncLoop.seconds,
    asyncCompletedPerSecond: succeeded.length / ((last - first) / 1000),
    asyncRuns: runs.length,
    asyncSucceeded: succeeded.length,
  };
};

/** c. 1,000 concurrent runs held by a slow upstream, and the server's peak RSS. */
const concurrent = async (s: Server, key: string) => {
  const TOTAL = 1000;
  const held: http.ServerResponse[] = [];
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => held.push(res));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/slow`;
  const flows = await Promise.all(
    Array.from({ length: TOTAL / 100 }, (_, i) =>
      webhookWorkflow(s, key, {
        name: `Slow ${i}`,
        trigger: { type: 'webhook', respond: 'async' },
        settings: { maxConcurrentRuns: 100, timeoutSeconds: 600 },
        steps: [{ key: 'wait', type: 'action.http', input: { url, body: { n: '=trigger.body.n' } }, timeoutSeconds: 600 }],
      }),
    ),
  );
  const rssBefore = s.peakRssMiB();
  const started = performance.now();
  await Promise.all(Array.from({ length: TOTAL }, (_, n) => hook(s, flows[n % flows.length]!, { n })));
  let waiting = 0;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline && held.length < TOTAL; await sleep(100)) waiting = held.length;
  waiting = held.length;
  const allWaitingAfterS = (performance.now() - started) / 1000;
  await sleep(1000);
  for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  let runs: Awaited<ReturnType<typeof runsOf>> = [];
  for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(500)) {
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    runs = (await Promise.all(flows.map((w) => runsOf(s, key, w.id)))).flat();
    if (runs.length >= TOTAL && runs.every((r) => r.status !== 'RUNNING' && r.status !== 'QUEUED')) break;
  }
  upstream.close();
  return { waiting, allWaitingAfterS, succeeded: runs.filter((r) => r.status === 'SUCCEEDED').length, rssBeforeMiB: rssBefore, peakRssMiB: s.peakRssMiB() };
};

/** d. the entry trigger: insert → run started, one entry at a time; then entries per second through a store-and-transform workflow. */
const entries = async (s: Server, key: string) => {
  for (const name of ['inbox', 'outbox']) {
    const table = (await s.gql(`mutation($n: String!) { createTable(name: $n) { __typename ... on DomainError { code message } } }`, { n: name }, key)).createTable;
    if (table.__typename !== 'Table') throw new Error(JSON.stringify(table));
  }
  const definition = {
    name: 'Store and transform',
    trigger: { type: 'entry', table: 'inbox', on: 'insert' },
    settings: { maxConcurrentRuns: 100 },
    steps: [
      { key: 'shout', type: 'action.transform', input: { expression: '=$uppercase(trigger.entry.text)' } },
      { key: 'store', type: 'action.storeEntry', input: { table: 'outbox', entry: { text: '=steps.shout', from: '=trigger.entry.id' } } },
    ],
  };
  const created = (await s.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ... on DomainError { code message } } }`, { d: definition }, key)).createWorkflow;
  if (created.__typename !== 'Workflow') throw new Error(JSON.stringify(created));
  const workflowId = created.id as string;
  const insert = async (n: number): Promise<{ id: string; createdAt: string }> => {
    const res = await request(s.port, 'POST', '/api/v1/tables/inbox/entries', { authorization: `Bearer ${key}` }, JSON.stringify({ text: `entry ${n}` }));
    if (res.status !== 201) throw new Error(`insert: ${res.status} ${res.text}`);
    return JSON.parse(res.text) as { id: string; createdAt: string };
  };
  /** Every run of the workflow once `count` have ended, in start order. */
  const ended = async (count: number) => {
    for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(500)) {
      const runs = await runsOf(s, key, workflowId);
      if (runs.length >= count && runs.every((r) => r.status !== 'RUNNING' && r.status !== 'QUEUED')) return runs.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
    }
    throw new Error(`entry trigger: ${count} runs did not end within 300 s`);
  };
  // Latency: one entry every 20 ms; the trigger starts runs in log order, so the n-th run (by start) is the n-th entry's.
  const LATENCY = 300;
  const paced: { createdAt: string }[] = [];
  for (let i = 0; i < LATENCY; i++) {
    paced.push(await insert(i));
    await sleep(20);
  }
  const pacedRuns = await ended(LATENCY);
  const latency = sortNum(paced.slice(30).map((entry, i) => Date.parse(pacedRuns[i + 30]!.startedAt) - Date.parse(entry.createdAt)));
  // Throughput: 2,000 entries from 4 callers at once; processed = its run has ended (the entry transformed and stored).
  const BURST = 2000;
  let next = 0;
  const first = Date.now();
  await Promise.all(Array.from({ length: 4 }, async () => { while (next < BURST) await insert(LATENCY + next++); }));
  const insertedPerSecond = BURST / ((Date.now() - first) / 1000);
  const burstRuns = (await ended(LATENCY + BURST)).slice(LATENCY);
  const lastEnd = Math.max(...burstRuns.map((r) => Date.parse(r.endedAt ?? r.startedAt)));
  const outbox = (await s.gql(`query { tables { name entryCount } }`, {}, key)).tables as { name: string; entryCount: number }[];
  return {
    latencyP50: percentile(latency, 50),
    latencyP99: percentile(latency, 99),
    insertedPerSecond,
    processedPerSecond: BURST / ((lastEnd - first) / 1000),
    succeeded: burstRuns.filter((r) => r.status === 'SUCCEEDED').length,
    stored: outbox.find((t) => t.name === 'outbox')?.entryCount ?? 0,
  };
};

/**
 * e. SCHEDULES workflows due in the same second: each `<second> * * * * *` (every minute at the same second) with one
 * transform step, created first; then the first due time after the last one exists is measured: each run's start
 * (RunStarted's time) and end after that due time, the runs found by their derived ids.
 */
const burst = async (s: Server, key: string) => {
  const second = new Date(Date.now() - 5_000).getUTCSeconds();
  const definition = (i: number) => ({
    name: `Tick ${i}`,
    trigger: { type: 'schedule', cron: `${second} * * * * *`, timezone: 'UTC', catchUp: 'none' },
    steps: [{ key: 'stamp', type: 'action.transform', input: { expression: '=trigger.scheduledAt' } }],
  });
  const ids: string[] = [];
  let next = 0;
  const creating = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < SCHEDULES) {
        const i = next++;
        const created = (await s.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ... on DomainError { code message } } }`, { d: definition(i) }, key)).createWorkflow;
        if (created.__typename !== 'Workflow') throw new Error(JSON.stringify(created));
        ids[i] = created.id as string;
      }
    }),
  );
  const createdPerSecond = SCHEDULES / ((performance.now() - creating) / 1000);
  // The first due time (a minute boundary plus `second`) at least 2 s after the last workflow exists.
  const earliest = Date.now() + 2_000;
  let due = Math.floor(earliest / 60_000) * 60_000 + second * 1_000;
  if (due < earliest) due += 60_000;
  process.stderr.write(`  ${SCHEDULES} workflows created (${createdPerSecond.toFixed(0)}/s); due at ${new Date(due).toISOString()}\n`);
  await sleep(due - Date.now() + 2_000);
  const runIds = ids.map((id) => scheduledRunId(id, due));
  const found = new Map<string, { status: string; startedAt: string; endedAt: string | null }>();
  for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(1_000)) {
    const missing = runIds.filter((id) => !['SUCCEEDED', 'FAILED', 'CANCELLED', 'FILTERED'].includes(found.get(id)?.status ?? ''));
    if (missing.length === 0) break;
    for (let at = 0; at < missing.length; at += 25) {
      const chunk = missing.slice(at, at + 25);
      const query = `query { ${chunk.map((id, i) => `r${i}: workflowRun(id: "${id}") { status startedAt endedAt }`).join(' ')} }`;
      const res = await request(s.port, 'POST', '/graphql', { authorization: `Bearer ${key}` }, JSON.stringify({ query }));
      const data = (JSON.parse(res.text) as { data?: Record<string, { status: string; startedAt: string; endedAt: string | null } | null> }).data ?? {};
      chunk.forEach((id, i) => {
        const run = data[`r${i}`];
        if (run) found.set(id, run);
      });
    }
  }
  const runs = [...found.values()];
  const statuses: Record<string, number> = {};
  for (const run of runs) statuses[run.status] = (statuses[run.status] ?? 0) + 1;
  const problems = s.output().split('\n').filter((line) => /"level":(40|50|60)/.test(line));
  process.stderr.write(`  runs by status: ${JSON.stringify(statuses)}; ${problems.length} warnings/errors logged${problems.length > 0 ? `, first: ${problems[0]!.slice(0, 600)}` : ''}\n`);
  // Fired = the run's first event (RunStarted, or RunQueued) is durable: the scheduler logs when each batch of due
  // times is (startMany answers once every start of it is durable). The runs' startedAt is the decision's time, before that.
  const firedLogs = s
    .output()
    .split('\n')
    .filter((line) => line.includes('"schedule: due times fired"'))
    .map((line) => JSON.parse(line) as { time: string; fired: number })
    // Earlier minutes fired the workflows created by then.
    .filter((log) => Date.parse(log.time) >= due);
  const durableMs = firedLogs.length === 0 ? NaN : Math.max(...firedLogs.map((log) => Date.parse(log.time))) - due;
  const started = sortNum(runs.map((r) => Date.parse(r.startedAt) - due));
  const ends = runs.map((r) => (r.endedAt === null ? Infinity : Date.parse(r.endedAt) - due));
  return {
    createdPerSecond,
    runs: runs.length,
    succeeded: runs.filter((r) => r.status === 'SUCCEEDED').length,
    startedP50: percentile(started, 50),
    startedP99: percentile(started, 99),
    allStartedMs: started.at(-1) ?? NaN,
    allDurableMs: durableMs,
    firedLogged: firedLogs.reduce((sum, log) => sum + log.fired, 0),
    allEndedMs: Math.max(...ends),
  };
};

type Result = {
  sync: string;
  a?: Awaited<ReturnType<typeof overhead>>;
  b?: Awaited<ReturnType<typeof throughput>>;
  c?: Awaited<ReturnType<typeof concurrent>>;
  d?: Awaited<ReturnType<typeof entries>>;
  e?: Awaited<ReturnType<typeof burst>>;
};
const results: Result[] = [];
/** Run `work` on a fresh server (so each part's peak RSS and log are its own). */
const onFreshServer = async <T>(sync: string, label: string, work: (s: Server, key: string) => Promise<T>): Promise<T> => {
  process.stderr.write(`EVENTSTORE_SYNC=${sync}: ${label}…\n`);
  const s = await startServer(sync);
  try {
    return await work(s, await designer(s));
  } finally {
    await s.stop();
  }
};
for (const sync of args.sync === 'both' ? ['full', 'normal'] : [args.sync]) {
  const result: Result = { sync };
  if (PARTS.has('a') || PARTS.has('b')) {
    await onFreshServer(sync, 'a. overhead per step, b. the brief\'s example, sync and async', async (s, key) => {
      if (PARTS.has('a')) result.a = await overhead(s, key);
      if (PARTS.has('b')) result.b = await throughput(s, key);
    });
  }
  if (PARTS.has('c')) result.c = await onFreshServer(sync, 'c. 1,000 concurrent runs', concurrent);
  if (PARTS.has('d')) result.d = await onFreshServer(sync, 'd. entry trigger', entries);
  if (PARTS.has('e')) result.e = await onFreshServer(sync, `e. ${SCHEDULES} schedules due in the same second`, burst);
  results.push(result);
}

const f = (x: number, d = 2) => x.toFixed(d);
const cell = <T>(part: T | undefined, show: (part: T) => string) => (part === undefined ? '–' : show(part));
const lines = [
  `Node ${process.version}, ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end; ${SECONDS} s per loop.`,
  '',
  '| EVENTSTORE_SYNC | step p50 / p90 (ms) | expression p50 (ms) | overhead per step p50 / p90 (ms) | brief sync (runs/s) | brief async: 202s/s, runs completed/s | 1,000 concurrent: waiting, succeeded | peak RSS (MiB) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    ({ sync, a, b, c }) =>
      `| ${sync} | ${cell(a, (a) => `${f(a.stepP50)} / ${f(a.stepP90)}`)} | ${cell(a, (a) => f(a.exprP50, 3))} | ${cell(a, (a) => `${f(a.overheadP50)} / ${f(a.overheadP90)}`)} | ${cell(b, (b) => f(b.syncRunsPerSecond, 0))} | ${cell(b, (b) => `${f(b.asyncAcceptedPerSecond, 0)}, ${f(b.asyncCompletedPerSecond, 0)} (${b.asyncSucceeded}/${b.asyncRuns} succeeded)`)} | ${cell(c, (c) => `${c.waiting} after ${f(c.allWaitingAfterS, 1)} s, ${c.succeeded}`)} | ${cell(c, (c) => `${f(c.peakRssMiB, 0)} (${f(c.rssBeforeMiB, 0)} before)`)} |`,
  ),
  '',
  `| EVENTSTORE_SYNC | entry → run started p50 / p99 (ms) | entries inserted/s | entries processed/s (succeeded, stored) | ${SCHEDULES} schedules due at once: started p50 / p99 (ms) | all started (s) | all fired, durable (s) | all ended (s) | workflows created/s |`,
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    ({ sync, d, e }) =>
      `| ${sync} | ${cell(d, (d) => `${f(d.latencyP50, 0)} / ${f(d.latencyP99, 0)}`)} | ${cell(d, (d) => f(d.insertedPerSecond, 0))} | ${cell(d, (d) => `${f(d.processedPerSecond, 0)} (${d.succeeded}, ${d.stored})`)} | ${cell(e, (e) => `${f(e.startedP50, 0)} / ${f(e.startedP99, 0)}`)} | ${cell(e, (e) => `${f(e.allStartedMs / 1000)} (${e.runs}/${SCHEDULES} runs)`)} | ${cell(e, (e) => `${f(e.allDurableMs / 1000)} (${e.firedLogged} logged)`)} | ${cell(e, (e) => `${f(e.allEndedMs / 1000)} (${e.succeeded} succeeded)`)} | ${cell(e, (e) => f(e.createdPerSecond, 0))} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
for (const { sync, b } of results) if (b && b.syncOther.length > 0) process.stdout.write(`${sync}: sync answers other than 200: ${JSON.stringify(b.syncOther)}\n`);
agent.destroy();

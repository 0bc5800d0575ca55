/**
 * Workflow benchmark: Switchyard started as its own process (`node --import tsx src/main.ts`, fresh DATA_DIR,
 * LOG_LEVEL=warn, the demo model with DEMO_TOKEN_DELAY_MS=0), driven over its webhook and GraphQL from this process.
 *
 *   npm run bench:workflows                    # both EVENTSTORE_SYNC=full (the shipped default) and normal
 *   npm run bench:workflows -- --sync normal   # one of them
 *
 * a. engine overhead per step: a 10-step transform-only workflow (each step `=steps.<previous> + 1`), triggered by a
 *    synchronous webhook one run at a time; per step = the run's duration (its RunStarted → RunSucceeded times) / 10,
 *    minus what the step's expression costs alone (evaluateStepInput on the same input and scope, in this process);
 * b. runs per second of the brief's example (search.models → action.model on the demo model → action.respond)
 *    through the webhook: sync (closed loop, answers per second) and async (202s, then runs completed per second
 *    from the first start to the last end, read from the runs' own times);
 * c. 1,000 concurrent runs, each an action.http step held by a slow fake upstream until all 1,000 are waiting
 *    (10 workflows, maxConcurrentRuns 100 each), with the server's peak RSS (VmHWM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_EXPRESSION_LIMITS, evaluateStepInput } from '../src/modules/workflows/run.expressions.js';

const { values: args } = parseArgs({ options: { sync: { type: 'string', default: 'both' }, seconds: { type: 'string', default: '8' } } });
if (!['normal', 'full', 'both'].includes(args.sync)) {
  process.stderr.write(`bench:workflows: --sync must be normal, full or both (got ${args.sync})\n`);
  process.exit(2);
}
const SECONDS = Number(args.seconds);
const ADMIN = 'bench-admin-key-0123456789abcdef0123456789';
const repo = new URL('..', import.meta.url);
/** The search picks the free demo model: without free-tier limits (an operator's PLANS), so they are not what is measured. */
const UNLIMITED_FREE_TIER = JSON.stringify({ free: { freeRequestsPerMinute: null, freeRequestsPerDay: null, freeRequestsPerDayAfterPurchase: null, purchaseThreshold: 0 } });

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
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: repo,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dir, ADMIN_API_KEY: ADMIN, LOG_LEVEL: 'info', EVENTSTORE_SYNC: sync, DEMO_TOKEN_DELAY_MS: '0', OUTBOUND_ALLOW: '127.0.0.1', PLANS: UNLIMITED_FREE_TIER },
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
  const gql = async (query: string, variables: Record<string, unknown> = {}, key = ADMIN) => {
    const res = await request(port, 'POST', '/graphql', { authorization: `Bearer ${key}` }, JSON.stringify({ query, variables }));
    const body = JSON.parse(res.text) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const peakRssMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { port, gql, peakRssMiB, stop };
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

const results: { sync: string; a: Awaited<ReturnType<typeof overhead>>; b: Awaited<ReturnType<typeof throughput>>; c: Awaited<ReturnType<typeof concurrent>> }[] = [];
for (const sync of args.sync === 'both' ? ['full', 'normal'] : [args.sync]) {
  const s = await startServer(sync);
  try {
    const key = await designer(s);
    process.stderr.write(`EVENTSTORE_SYNC=${sync}: a. overhead per step…\n`);
    const a = await overhead(s, key);
    process.stderr.write(`EVENTSTORE_SYNC=${sync}: b. the brief's example, sync and async…\n`);
    const b = await throughput(s, key);
    await s.stop();
    // On a fresh server, so its peak RSS is the 1,000 runs'.
    process.stderr.write(`EVENTSTORE_SYNC=${sync}: c. 1,000 concurrent runs…\n`);
    const fresh = await startServer(sync);
    try {
      results.push({ sync, a, b, c: await concurrent(fresh, await designer(fresh)) });
    } finally {
      await fresh.stop();
    }
  } catch (error) {
    await s.stop().catch(() => undefined);
    throw error;
  }
}

const f = (x: number, d = 2) => x.toFixed(d);
const lines = [
  `Node ${process.version}, ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end; ${SECONDS} s per loop.`,
  '',
  '| EVENTSTORE_SYNC | step p50 / p90 (ms) | expression p50 (ms) | overhead per step p50 / p90 (ms) | brief sync (runs/s) | brief async: 202s/s, runs completed/s | 1,000 concurrent: waiting, succeeded | peak RSS (MiB) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    ({ sync, a, b, c }) =>
      `| ${sync} | ${f(a.stepP50)} / ${f(a.stepP90)} | ${f(a.exprP50, 3)} | ${f(a.overheadP50)} / ${f(a.overheadP90)} | ${f(b.syncRunsPerSecond, 0)} | ${f(b.asyncAcceptedPerSecond, 0)}, ${f(b.asyncCompletedPerSecond, 0)} (${b.asyncSucceeded}/${b.asyncRuns} succeeded) | ${c.waiting} after ${f(c.allWaitingAfterS, 1)} s, ${c.succeeded} | ${f(c.peakRssMiB, 0)} (${f(c.rssBeforeMiB, 0)} before) |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
for (const { sync, b } of results) if (b.syncOther.length > 0) process.stdout.write(`${sync}: sync answers other than 200: ${JSON.stringify(b.syncOther)}\n`);
agent.destroy();

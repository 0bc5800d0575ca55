/**
 * Gateway benchmark: a fake OpenAI-compatible upstream, Switchyard and Portkey's gateway (`@portkey-ai/gateway`) in
 * front of it, measured side by side in one run.
 *
 *   npm run bench:gateway                      # ~9 min: Switchyard with the shipped default (EVENTSTORE_SYNC=full) and
 *                                              # with =normal; writes the results into bench/README.md (## Gateway)
 *   npm run bench:gateway -- --quick           # ~3 min smoke run (prints only)
 *   npm run bench:gateway -- --sync full       # ~7 min: the default alone
 *   options: --sync normal|full|both (default both), --quick, --readme / --no-readme (default: write unless
 *   --quick), --keep-data (keep DATA_DIRs and logs), --profile (Switchyard with --cpu-prof; profiles in the log dir),
 *   --tsx (run src/ through tsx instead of the build), --node-options="--trace-gc ..." (extra flags for Switchyard's node; with =),
 *   --no-build, --dist DIR (run an existing build, e.g. an older copy for an A/B), --warmup S (a probe's warm-up, default 2),
 *   --probe-streams 1000,1000 (phase d alone, once per number: that many concurrent streams, with VmHWM before and after)
 *
 * Every process is a child of this one: the upstream (this file with `--role upstream`), two floors (`--role floor`:
 * a bare Node proxy, and the same with `--journal DIR`, recording each call durably before it answers), Switchyard
 * (the production build, `npm run build` then `node dist/src/main.js`, as the Docker image runs it; fresh DATA_DIR, keys + billing + event recording on, LOG_LEVEL=warn) and Portkey
 * (`start-server.js --headless`). The load generators (a keep-alive http.Agent client for precise sequential
 * timings, an open-loop generator (bench/openLoop.ts) for sustained throughput, autocannon for the closed-loop peak)
 * run in this process. Every gateway first serves 15 s of closed-loop load (3 s with --quick), so all are timed warm.
 *
 * a. added latency at concurrency 1: p50 / p99 through the gateway minus direct, non-streaming, 0 ms upstream,
 *    rounds interleaved across targets so drift on a shared machine hits all of them alike;
 * b. highest sustained requests/s with p99 < 50 ms and no errors at the 20 ms upstream: open-loop load at a fixed
 *    rate (latency from each request's due time), rates stepped up until steps fail, then bisected; b'. the peak
 *    a closed loop of 100 connections (autocannon) gets, with the gateway's CPU per request there;
 * c. streaming time to first token at concurrency 1, gateway minus direct;
 * d. 1,000 concurrent streams of 20 chunks 50 ms apart: how many complete with every chunk and [DONE];
 * e. peak RSS (VmHWM) of each gateway process.
 * Afterwards, for Switchyard: every 2xx answer must be charged and recorded. Checked live through GraphQL (usage by
 * model, balance) once the gateway is idle, then exactly in its event store after a clean shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, fdatasync, fdatasyncSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { createServer as createNetServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { openLoop } from './openLoop.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    upstream: { type: 'string' },
    journal: { type: 'string' },
    quick: { type: 'boolean', default: false },
    sync: { type: 'string' },
    readme: { type: 'boolean' },
    'no-readme': { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    probe: { type: 'string' },
    'probe-rates': { type: 'string' },
    'probe-streams': { type: 'string' },
    seconds: { type: 'string', default: '6' },
    tsx: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    dist: { type: 'string', default: 'dist' },
    warmup: { type: 'string', default: '2' },
    'probe-upstream': { type: 'string', default: 'd20' },
    'node-options': { type: 'string' },
  },
});

/** A bad option stops the run with one line naming it, before anything starts. */
const usage = (message: string): never => {
  process.stderr.write(`bench:gateway: ${message}\n`);
  process.exit(2);
};
const probing = args.probe !== undefined || args['probe-rates'] !== undefined || args['probe-streams'] !== undefined;
// Both rows by default; a probe runs one Switchyard, the shipped default unless told.
const syncArg = args.sync ?? (probing ? 'full' : 'both');
if (!['normal', 'full', 'both'].includes(syncArg)) usage(`--sync must be normal, full or both (got ${syncArg})`);
if (probing && syncArg === 'both') usage('--probe runs one Switchyard: --sync normal or full');
if ([args.probe, args['probe-rates'], args['probe-streams']].filter((v) => v !== undefined).length > 1) usage('one of --probe (closed loop, connections), --probe-rates (open loop, req/s) or --probe-streams (phase d, concurrent streams)');
const probeLoads = (args.probe ?? args['probe-rates'] ?? args['probe-streams'])?.split(',').map(Number) ?? [];
if (!['d20', 'd0', 'ttft'].includes(args['probe-upstream']!)) usage(`--probe-upstream takes d20 (the 20 ms upstream), d0 (0 ms) or ttft (phase c's stream) (got ${args['probe-upstream']})`);
/**
 * The upstream a probe calls: `d20` answers after 20 ms, `d0` at once (as phase a, for concurrency 1), `ttft` streams
 * phase c's 8 chunks at once (with `--probe 1`, timed to the first token as phase c times it).
 */
const probeKind = args['probe-upstream'] as 'd0' | 'd20' | 'ttft';
if (probeKind === 'ttft' && args.probe !== '1') usage('--probe-upstream ttft times the first token of streams one after another: use it with --probe 1');
if (probeLoads.some((c) => !Number.isInteger(c) || c < 1)) usage(`--probe takes connection counts like 10,25,50, --probe-rates rates like 300,600, --probe-streams stream counts like 1000,1000 (got ${args.probe ?? args['probe-rates'] ?? args['probe-streams']})`);
const stepSeconds = Number(args.seconds);
if (!(stepSeconds > 0)) usage(`--seconds must be a positive number (got ${args.seconds})`);

// -----------------------------------------------------------------------------------------------------------------
// The fake upstream (child process). Model names pick the behaviour: `bench-d<delay ms>[-n<chunks>][-i<ms between
// chunks>]`. Usage is fixed so charges are predictable: 10 prompt tokens; 8 completion tokens non-streamed, one
// per chunk streamed.

const PROMPT_TOKENS = 10;
const NONSTREAM_COMPLETION_TOKENS = 8;
const ANSWER = 'Hello from the bench upstream, fast and steady.';

interface UpstreamSpec {
  delayMs: number;
  chunks: number;
  intervalMs: number;
}

const parseSpec = (model: string): UpstreamSpec => {
  const m = /^bench-d(\d+)(?:-n(\d+))?(?:-i(\d+))?$/.exec(model);
  return { delayMs: Number(m?.[1] ?? 0), chunks: Number(m?.[2] ?? 8), intervalMs: Number(m?.[3] ?? 0) };
};

const tokenText = (i: number) => `tok${i} `;
const expectedStreamText = (chunks: number) => Array.from({ length: chunks }, (_, i) => tokenText(i)).join('');

/**
 * A child role's server: keep-alive connections kept long, listening on a free port it prints as `READY <port>` (see
 * startRole), and gone with the parent even if the parent was killed without a chance to clean up.
 */
const serveAsChild = (server: http.Server) => {
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.listen(0, '127.0.0.1', 2048, () => {
    const address = server.address();
    process.stdout.write(`READY ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
};

const runUpstream = () => {
  const specs = new Map<string, UpstreamSpec>();
  let seq = 0;
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') {
      const body = JSON.stringify({ object: 'list', data: [{ id: 'bench-d0', object: 'model', created: 1_700_000_000, owned_by: 'bench' }] });
      res.writeHead(req.url?.endsWith('/models') ? 200 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: { model?: string; stream?: boolean; stream_options?: { include_usage?: boolean } };
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"bad json","type":"invalid_request_error"}}');
        return;
      }
      const model = body.model ?? 'bench-d0';
      let spec = specs.get(model);
      if (!spec) specs.set(model, (spec = parseSpec(model)));
      const id = `chatcmpl-bench-${++seq}`;
      const answer = () => (body.stream ? stream(res, id, model, spec, body.stream_options?.include_usage === true) : complete(res, id, model));
      if (spec.delayMs > 0) setTimeout(answer, spec.delayMs);
      else answer();
    });
  });
  const complete = (res: http.ServerResponse, id: string, model: string) => {
    if (res.destroyed) return;
    const body = `{"id":"${id}","object":"chat.completion","created":1700000000,"model":"${model}","choices":[{"index":0,"message":{"role":"assistant","content":"${ANSWER}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":${PROMPT_TOKENS},"completion_tokens":${NONSTREAM_COMPLETION_TOKENS},"total_tokens":${PROMPT_TOKENS + NONSTREAM_COMPLETION_TOKENS}}}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const stream = (res: http.ServerResponse, id: string, model: string, spec: UpstreamSpec, includeUsage: boolean) => {
    if (res.destroyed) return;
    const head = `{"id":"${id}","object":"chat.completion.chunk","created":1700000000,"model":"${model}","choices":[{"index":0,"delta":`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let i = 0;
    const next = () => {
      if (res.destroyed) return;
      if (i < spec.chunks) {
        const role = i === 0 ? '"role":"assistant",' : '';
        res.write(`data: ${head}{${role}"content":"${tokenText(i)}"},"finish_reason":null}]}\n\n`);
        i += 1;
        if (spec.intervalMs > 0) setTimeout(next, spec.intervalMs);
        else next();
        return;
      }
      let tail = `data: ${head}{},"finish_reason":"stop"}]}\n\n`;
      if (includeUsage) {
        tail += `data: {"id":"${id}","object":"chat.completion.chunk","created":1700000000,"model":"${model}","choices":[],"usage":{"prompt_tokens":${PROMPT_TOKENS},"completion_tokens":${spec.chunks},"total_tokens":${PROMPT_TOKENS + spec.chunks}}}\n\n`;
      }
      res.end(`${tail}data: [DONE]\n\n`);
    };
    next();
  };
  serveAsChild(server);
};


// -----------------------------------------------------------------------------------------------------------------
// The floor (child process): the least any Node gateway does for one of these calls, and nothing more. It checks the
// bearer key, parses the JSON body, maps the model name, forwards it through a keep-alive http.Agent and relays the
// answer (piped, so streams flow). No accounts, prices, reservations, records or metrics. Switchyard runs on the same
// node:http server and client, so what Switchyard costs above this row is its own work; what this row costs is Node's.

const FLOOR_KEY = 'bench-floor-key';
const FLOOR_NAME = 'bare Node proxy (floor)';
const DURABLE_FLOOR_NAME = 'durable Node proxy (floor + fsync)';

/**
 * The durable floor's record: one line per request appended to a file (a write to the page cache on the request
 * thread), made durable by `fs.fdatasync` on libuv's pool, one fsync in flight covering every line written before it
 * starts (group commit, as Switchyard's `full`). `append` resolves once the line is on disk.
 */
const createJournal = (dir: string) => {
  const fd = openSync(join(dir, 'journal'), 'a', 0o600);
  let written = 0;
  let synced = 0;
  let syncing = false;
  const waiting: { upTo: number; resolve: () => void }[] = [];
  const flush = () => {
    if (syncing || synced === written) return;
    syncing = true;
    const upTo = written;
    fdatasync(fd, (error) => {
      if (error) throw error;
      syncing = false;
      synced = upTo;
      while (waiting.length > 0 && waiting[0]!.upTo <= synced) waiting.shift()!.resolve();
      flush();
    });
  };
  return {
    append(line: string): Promise<void> {
      writeSync(fd, line);
      const upTo = ++written;
      const durable = new Promise<void>((resolve) => waiting.push({ upTo, resolve }));
      flush();
      return durable;
    },
  };
};

/**
 * `durableDir` given: the durable floor. Before forwarding, it appends one line per request to a journal in that
 * directory and answers only once the line is on disk (the fsync runs during the upstream call, as Switchyard's
 * reservation does), so its latency is the least a gateway that records each call durably before answering can
 * add on this machine's disk, and its CPU what that record costs at the least.
 */
const runFloor = (upstreamPort: number, durableDir?: string) => {
  const journal = durableDir === undefined ? null : createJournal(durableDir);
  // Public model name → the upstream's, as Switchyard routes them.
  const routes = new Map<string, string>((Object.keys(UPSTREAM_MODELS) as Kind[]).map((k) => [SWITCHYARD_MODELS[k], UPSTREAM_MODELS[k]]));
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const expected = Buffer.from(`Bearer ${FLOOR_KEY}`);
  const fail = (res: http.ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message } }));
  };
  const server = http.createServer((req, res) => {
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) return fail(res, 401, 'bad key');
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: { model?: unknown };
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return fail(res, 400, 'bad json');
      }
      const model = typeof body.model === 'string' ? routes.get(body.model) : undefined;
      if (!model) return fail(res, 404, 'no such model');
      const out = JSON.stringify({ ...body, model });
      const durable = journal?.append(`{"at":${Date.now()},"model":${JSON.stringify(model)}}\n`);
      const relay = (upRes: http.IncomingMessage) => {
        res.writeHead(upRes.statusCode ?? 502, { 'content-type': upRes.headers['content-type'] ?? 'application/json', ...(upRes.headers['content-length'] ? { 'content-length': upRes.headers['content-length'] } : {}) });
        upRes.pipe(res);
      };
      const up = http.request(
        { host: '127.0.0.1', port: upstreamPort, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), authorization: `Bearer ${UPSTREAM_KEY}` } },
        (upRes) => (durable ? void durable.then(() => relay(upRes)) : relay(upRes)),
      );
      up.on('error', () => (res.headersSent ? res.destroy() : fail(res, 502, 'upstream failed')));
      up.end(out);
    });
  });
  serveAsChild(server);
};


// -----------------------------------------------------------------------------------------------------------------
// Child processes

interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
}

function children(): Child[] {
  return ((globalThis as { __benchChildren?: Child[] }).__benchChildren ??= []);
}

function killAll() {
  for (const c of children()) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }
}

function spawnChild(name: string, command: string, argv: string[], options: { cwd: string; env: NodeJS.ProcessEnv; logDir: string }): Child {
  const logFile = join(options.logDir, `${name}.log`);
  const proc = spawn(command, argv, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  const child = { name, proc, logFile };
  children().push(child);
  return child;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `probe` resolves true; fail with the child's log tail if it exits or time runs out. */
async function waitReady(child: Child, probe: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited (${child.proc.exitCode}):\n${tail(child.logFile)}`);
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${child.name} not ready after ${timeoutMs} ms:\n${tail(child.logFile)}`);
}

const tail = (file: string, lines = 30) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '');

async function stopChild(child: Child, timeoutMs = 20_000): Promise<number | string | null> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return child.proc.exitCode ?? child.proc.signalCode;
  const exited = new Promise<number | string | null>((resolve) => child.proc.once('exit', (code, signal) => resolve(code ?? signal)));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

/**
 * The disk's floor under `full`: one 4 KiB append + fdatasync, `n` in a row, in a fresh file where the data
 * directories live (a reservation is answered only after such an fsync covers it). Percentiles in ms.
 */
const fsyncLatency = (n = 300) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-gateway-fsync-'));
  const fd = openSync(join(dir, 'probe'), 'a');
  const page = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      writeSync(fd, page);
      fdatasyncSync(fd);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
};

/** Peak resident set (VmHWM) and current RSS in MiB. */
const memoryOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { hwmMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
};

/** User + system CPU time in ms from a `/proc/.../stat` file. */
const cpuMsIn = (statFile: string) => {
  const stat = readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
};

/** User + system CPU time of a process in ms. */
const cpuMsOf = (pid: number) => cpuMsIn(`/proc/${pid}/stat`);

/** Times a thread blocked and was woken again (`voluntary_ctxt_switches` in its `/proc/.../status`). */
const wakesIn = (statusFile: string) => Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(statusFile, 'utf8'))?.[1] ?? 0);

/**
 * CPU ms and wake-ups per thread of a process: the main thread as `main`, the others by name (`comm`), summed per
 * name. On a VM a wake-up from idle costs a thread ~150 µs of CPU by itself (bench/README.md, gateway section).
 */
const threadCpuMsOf = (pid: number): Map<string, { ms: number; wakes: number }> => {
  const out = new Map<string, { ms: number; wakes: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      // Node names every thread "node" (the storage worker, WAL checkpointers, V8's GC helpers, libuv): keep them apart.
      const name = Number(tid) === pid ? 'main' : `${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()}#${tid}`;
      const seen = out.get(name) ?? { ms: 0, wakes: 0 };
      out.set(name, { ms: seen.ms + cpuMsIn(`/proc/${pid}/task/${tid}/stat`), wakes: seen.wakes + wakesIn(`/proc/${pid}/task/${tid}/status`) });
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return out;
};

// -----------------------------------------------------------------------------------------------------------------
// HTTP clients

type Kind = 'd0' | 'd20' | 'ttft' | 'streams';

interface Tally {
  ok: Record<Kind, number>;
  /** Sent by autocannon but still in flight when it stopped: the client left, the gateway still answers (and bills). */
  inflight: Record<Kind, number>;
  /** Responses that were not 2xx, transport errors and timeouts (autocannon), by kind. */
  bad: Record<Kind, number>;
}

interface Target {
  name: string;
  kind: 'direct' | 'switchyard' | 'portkey' | 'floor';
  port: number;
  path: string;
  headers: Record<string, string>;
  models: Record<Kind, string>;
  pid?: number;
  sync?: 'normal' | 'full';
  tally: Tally;
  switchyard?: SwitchyardHandle;
}

interface SwitchyardHandle {
  child: Child;
  dataDir: string;
  adminKey: string;
  userKey: string;
  accountId: string;
  port: number;
}

const UPSTREAM_MODELS: Record<Kind, string> = { d0: 'bench-d0', d20: 'bench-d20', ttft: 'bench-d0-n8-i0', streams: 'bench-d0-n20-i50' };
const STREAM_CHUNKS: Record<'ttft' | 'streams', number> = { ttft: 8, streams: 20 };
const PROMPT = 'Say hello to the benchmark.';
const PACE_MS = 10;

const bodyOf = (target: Target, kind: Kind) =>
  JSON.stringify({ model: target.models[kind], messages: [{ role: 'user', content: PROMPT }], ...(kind === 'ttft' || kind === 'streams' ? { stream: true } : {}) });

interface Timed {
  status: number;
  error?: string;
  /** ms from the request being sent until the whole response (or, streamed, the first token) arrived. */
  totalMs: number;
  firstTokenMs: number | null;
  body: string;
}

/** One request; `firstToken` marks when this substring first appears in the response body. */
function timedRequest(agent: http.Agent, target: Target, body: string, firstToken: string | null, timeoutMs = 60_000, onHeaders?: () => void): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    let settled = false;
    const done = (value: Timed) => {
      if (settled) return;
      settled = true;
      resolve(value);
    };
    const req = http.request(
      { host: '127.0.0.1', port: target.port, path: target.path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...target.headers } },
      (res) => {
        onHeaders?.();
        let text = '';
        let firstTokenMs: number | null = null;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (firstToken !== null && firstTokenMs === null && text.includes(firstToken)) firstTokenMs = ms();
        });
        res.on('end', () => done({ status: res.statusCode ?? 0, totalMs: ms(), firstTokenMs, body: text }));
        res.on('error', (e) => done({ status: res.statusCode ?? 0, error: e.message, totalMs: ms(), firstTokenMs, body: text }));
        res.on('aborted', () => done({ status: res.statusCode ?? 0, error: 'aborted', totalMs: ms(), firstTokenMs, body: text }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => done({ status: 0, error: e.message, totalMs: ms(), firstTokenMs: null, body: '' }));
    req.end(body);
  });
}

/** The streamed content (every delta concatenated) and whether `[DONE]` came. */
const parseSse = (text: string) => {
  let content = '';
  let done = false;
  let errors = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice(6).trim();
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    try {
      const chunk = JSON.parse(data) as { choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[]; error?: unknown };
      if (chunk.error) errors += 1;
      content += chunk.choices?.[0]?.delta?.content ?? '';
    } catch {
      errors += 1;
    }
  }
  return { content, done, errors };
};

const streamOk = (t: Timed, chunks: number) => {
  if (t.status !== 200 || t.error) return false;
  const { content, done, errors } = parseSse(t.body);
  return done && errors === 0 && content === expectedStreamText(chunks);
};

const completionOk = (t: Timed) => t.status === 200 && !t.error && t.body.includes(ANSWER);

const record = (target: Target, kind: Kind, ok: boolean) => {
  if (ok) target.tally.ok[kind] += 1;
  else target.tally.bad[kind] += 1;
};

/** Phase d's load: `count` streams of the slow upstream (20 chunks 50 ms apart), all opened at once. */
async function concurrentStreams(target: Target, count: number): Promise<{ results: Timed[]; peakOpen: number; wallMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const body = bodyOf(target, 'streams');
  let open = 0;
  let peakOpen = 0;
  const t0 = Date.now();
  const results = await Promise.all(
    Array.from({ length: count }, () =>
      timedRequest(agent, target, body, tokenText(0), 60_000, () => {
        open += 1;
        peakOpen = Math.max(peakOpen, open);
      }).then((r) => {
        if (r.status) open -= 1;
        return r;
      }),
    ),
  );
  const wallMs = Date.now() - t0;
  agent.destroy();
  return { results, peakOpen, wallMs };
}

// -----------------------------------------------------------------------------------------------------------------
// Statistics and formatting

const percentile = (sorted: number[], q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!);
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–');
const ms2 = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : '–');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '–');

const log = (line: string) => process.stdout.write(`${line}\n`);

// -----------------------------------------------------------------------------------------------------------------
// Starting the three servers

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const PORTKEY_START = join(REPO, 'node_modules/@portkey-ai/gateway/build/start-server.js');
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef0123456789';
const MASTER_KEY = 'bench-master-key-0123456789abcdef0123456789';
const UPSTREAM_KEY = 'bench-upstream-key';
/** Endpoint prices, nano-dollars per token ($1 / $2 per million) plus a request fee of $0.00001. */
const PRICES = { prompt: 1_000, completion: 2_000, request: 10_000 };
const costOf = (completionTokens: number) => PROMPT_TOKENS * PRICES.prompt + completionTokens * PRICES.completion + PRICES.request;
const COST: Record<Kind, number> = { d0: costOf(NONSTREAM_COMPLETION_TOKENS), d20: costOf(NONSTREAM_COMPLETION_TOKENS), ttft: costOf(STREAM_CHUNKS.ttft), streams: costOf(STREAM_CHUNKS.streams) };
const SWITCHYARD_MODELS: Record<Kind, string> = { d0: 'bench/d0', d20: 'bench/d20', ttft: 'bench/stream-fast', streams: 'bench/stream-slow' };
const GRANT = 100_000 * 1_000_000_000; // $100,000 of credits

const zeroes = (): Record<Kind, number> => ({ d0: 0, d20: 0, ttft: 0, streams: 0 });
const emptyTally = (): Tally => ({ ok: zeroes(), inflight: zeroes(), bad: zeroes() });

/** This file again as a child in another role (`upstream`, `floor`), ready once it prints its port. */
async function startRole(role: 'upstream' | 'floor', extra: string[], logDir: string): Promise<{ child: Child; port: number }> {
  const child = spawnChild(role, process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--role', role, ...extra], { cwd: REPO, env: process.env, logDir });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${role} did not start`)), 30_000);
    child.proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.proc.once('exit', (code) => reject(new Error(`${role} exited (${code})`)));
  });
  return { child, port };
}

const startUpstream = (logDir: string) => startRole('upstream', [], logDir);

async function gql(port: number, key: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await res.json()) as { data?: any; errors?: unknown };
  if (json.errors) throw new Error(`GraphQL error: ${JSON.stringify(json.errors)}`);
  return json.data;
}

/** Node's flags in `npm run start:prod` (the Docker image's too): what a user's server runs with. */
const START_FLAGS = (() => {
  const script = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start:prod']!;
  // `node <flags> dist/src/main.js` (test/e2e/productionBuild.e2e.test.ts holds it to that shape).
  return script.split(/\s+/).slice(1, -1);
})();
/** What runs Switchyard: the production build (what the Docker image runs), or with --tsx the sources through tsx. */
const ENTRY = [...START_FLAGS, ...(args.tsx ? ['--import', 'tsx', 'src/main.ts'] : [`${args.dist}/src/main.js`])];
const nodeOptions = args['node-options']?.split(' ').filter(Boolean) ?? [];

/** Compile the sources (`npm run build`) unless the run uses tsx. */
const build = async () => {
  if (args.tsx || args['no-build']) return;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm run build exited with ${code}`))));
  });
  log(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
};

async function startSwitchyard(sync: 'normal' | 'full', upstreamPort: number, logDir: string): Promise<SwitchyardHandle> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `bench-gateway-switchyard-${sync}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    SWITCHYARD_MASTER_KEY: MASTER_KEY,
    LOG_LEVEL: 'warn',
    EVENTSTORE_SYNC: sync,
    NODE_ENV: 'production',
  };
  for (const name of ['EVENTSTORE_URL', 'MONGODB_URL']) delete env[name];
  const profile = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(logDir, `profile-${sync}`)}`] : [];
  const child = spawnChild(`switchyard-${sync}`, process.execPath, [...profile, ...nodeOptions, ...ENTRY], { cwd: REPO, env, logDir });
  await waitReady(child, async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 60_000);

  const opened = await gql(
    port,
    ADMIN_KEY,
    `mutation { openAccount(name: "bench user") { ... on OpenAccountPayload { account { id } initialKey { secret } } ... on DomainError { code message } } }`,
  );
  const accountId = opened.openAccount.account?.id as string;
  const userKey = opened.openAccount.initialKey?.secret as string;
  if (!accountId || !userKey) throw new Error(`openAccount failed: ${JSON.stringify(opened)}`);
  const granted = await gql(
    port,
    ADMIN_KEY,
    `mutation ($id: ID!, $amount: Money!) { grantCredits(accountId: $id, amount: $amount, reason: "benchmark") { ... on Balance { available } ... on DomainError { code message } } }`,
    { id: accountId, amount: GRANT },
  );
  if (granted.grantCredits.available !== GRANT) throw new Error(`grantCredits failed: ${JSON.stringify(granted)}`);
  const registered = await gql(
    port,
    ADMIN_KEY,
    `mutation ($baseUrl: String!, $apiKey: String) { registerProvider(slug: "bench-upstream", name: "Bench upstream", protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) { ... on Provider { slug } ... on DomainError { code message } } }`,
    { baseUrl: `http://127.0.0.1:${upstreamPort}/v1`, apiKey: UPSTREAM_KEY },
  );
  if (registered.registerProvider.slug !== 'bench-upstream') throw new Error(`registerProvider failed: ${JSON.stringify(registered)}`);
  for (const kind of Object.keys(SWITCHYARD_MODELS) as Kind[]) {
    const published = await gql(
      port,
      ADMIN_KEY,
      `mutation ($model: String!, $upstream: String!, $prices: PricesInput!) {
        publishEndpoint(provider: "bench-upstream", model: $model, upstreamModel: $upstream, prices: $prices, contextLength: 32000, maxOutput: 1000) {
          ... on Endpoint { id } ... on DomainError { code message } } }`,
      { model: SWITCHYARD_MODELS[kind], upstream: UPSTREAM_MODELS[kind], prices: PRICES },
    );
    if (!published.publishEndpoint.id) throw new Error(`publishEndpoint failed: ${JSON.stringify(published)}`);
  }
  return { child, dataDir, adminKey: ADMIN_KEY, userKey, accountId, port };
}

async function startPortkey(upstreamPort: number, logDir: string): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = spawnChild('portkey', process.execPath, [PORTKEY_START, `--port=${port}`, '--headless'], { cwd: REPO, env: { ...process.env, NODE_ENV: 'production' }, logDir });
  const probeAgent = new http.Agent({ keepAlive: false });
  const probeTarget = portkeyTarget(port, upstreamPort);
  await waitReady(child, async () => completionOk(await timedRequest(probeAgent, probeTarget, bodyOf(probeTarget, 'd0'), null, 5_000)), 60_000);
  return { child, port };
}

const portkeyTarget = (port: number, upstreamPort: number): Target => ({
  name: 'Portkey 1.15.2',
  kind: 'portkey',
  port,
  path: '/v1/chat/completions',
  headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `http://127.0.0.1:${upstreamPort}/v1`, authorization: `Bearer ${UPSTREAM_KEY}` },
  models: UPSTREAM_MODELS,
  tally: emptyTally(),
});

// -----------------------------------------------------------------------------------------------------------------
// Idle and billing checks (Switchyard)

interface UsageSnapshot {
  byModel: Map<string, { requests: number; cost: number }>;
  requests: number;
  cost: number;
  settled: number;
  reserved: number;
  openReservations: number;
  lag: number | null;
}

async function usageSnapshot(h: SwitchyardHandle): Promise<UsageSnapshot> {
  const data = await gql(
    h.port,
    h.userKey,
    `{ usage(groupBy: MODEL) { group requests cost } balance { settled reserved openReservations } }`,
  );
  const health = (await (await fetch(`http://127.0.0.1:${h.port}/health`)).json()) as { projections?: { lag?: number | null } };
  const byModel = new Map<string, { requests: number; cost: number }>();
  let requests = 0;
  let cost = 0;
  for (const row of data.usage as { group: string; requests: number; cost: number }[]) {
    byModel.set(row.group, { requests: row.requests, cost: row.cost });
    requests += row.requests;
    cost += row.cost;
  }
  return { byModel, requests, cost, settled: data.balance.settled, reserved: data.balance.reserved, openReservations: data.balance.openReservations, lag: health.projections?.lag ?? null };
}

/** Poll until no reservation is open, the projections have caught up and the usage count stopped moving. */
/** Switchyard's event store commits and WAL fsyncs and its event loop's busy time since start (/health). */
async function writesOf(h: SwitchyardHandle): Promise<{ commits: number; syncs: number; busyMs: number }> {
  const health = (await (await fetch(`http://127.0.0.1:${h.port}/health`)).json()) as {
    eventStore?: { writes?: { commits: number; syncs: number } };
    eventLoop?: { busyMs: number };
  };
  return { commits: health.eventStore?.writes?.commits ?? NaN, syncs: health.eventStore?.writes?.syncs ?? NaN, busyMs: health.eventLoop?.busyMs ?? NaN };
}

async function waitIdle(h: SwitchyardHandle, timeoutMs = 60_000): Promise<{ snapshot: UsageSnapshot; waitedMs: number }> {
  const started = Date.now();
  let previous = -1;
  for (;;) {
    const snapshot = await usageSnapshot(h);
    const quiet = snapshot.openReservations === 0 && snapshot.reserved === 0 && snapshot.lag === 0 && snapshot.requests === previous;
    if (quiet || Date.now() - started > timeoutMs) return { snapshot, waitedMs: Date.now() - started };
    previous = snapshot.requests;
    await sleep(200);
  }
}

interface EventCounts {
  generation: Record<string, number>;
  ledger: Record<string, number>;
  /** ReservationSettled per usage model: how many and the sum charged. */
  settledByModel: Map<string, { requests: number; cost: number }>;
  /** GenerationCompleted per model. */
  completedByModel: Map<string, number>;
}

/** Read the stopped Switchyard's event store (read-only): generation and ledger events by type and by model. */
function countEvents(dataDir: string): EventCounts {
  const db = new Database(join(dataDir, 'events.db'), { readonly: true });
  try {
    const byType = (category: string) =>
      Object.fromEntries((db.prepare(`SELECT type, count(*) AS n FROM events WHERE category = ? GROUP BY type`).all(category) as { type: string; n: number }[]).map((r) => [r.type, r.n]));
    const settled = db
      .prepare(`SELECT json_extract(data, '$.usage.model') AS model, count(*) AS n, sum(json_extract(data, '$.charged')) AS cost FROM events WHERE category = 'ledger' AND type = 'ReservationSettled' GROUP BY 1`)
      .all() as { model: string | null; n: number; cost: number }[];
    const completed = db
      .prepare(`SELECT json_extract(data, '$.model') AS model, count(*) AS n FROM events WHERE category = 'generation' AND type = 'GenerationCompleted' GROUP BY 1`)
      .all() as { model: string | null; n: number }[];
    return {
      generation: byType('generation'),
      ledger: byType('ledger'),
      settledByModel: new Map(settled.map((r) => [r.model ?? '-', { requests: r.n, cost: r.cost }])),
      completedByModel: new Map(completed.map((r) => [r.model ?? '-', r.n])),
    };
  } finally {
    db.close();
  }
}

// -----------------------------------------------------------------------------------------------------------------
// autocannon (no bundled types: a narrow local interface)

interface AutocannonResult {
  requests: { average: number; total: number; sent: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  '2xx': number;
  duration: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** One open-loop step of b. */
interface Step {
  /** Offered requests per second. */
  rate: number;
  /** Correct answers per second, over the step's wall time. */
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  overloaded: boolean;
  ok: boolean;
  cpuUsPerRequest: number;
  cpuPercent: number;
  /** Switchyard only (from /health, sampled once its background appends are done): event store commits, WAL
   * fsyncs made off the event loop, and the time its event loop was not idle, each per answered request. */
  commitsPerRequest: number;
  syncsPerRequest: number;
  loopBusyUsPerRequest: number;
}

/** b': the closed-loop peak. */
interface Peak {
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerRequest: number;
}

async function cannon(target: Target, kind: Kind, connections: number, seconds: number): Promise<{ result: AutocannonResult; cpuMs: number; wallMs: number }> {
  const cpu0 = target.pid ? cpuMsOf(target.pid) : 0;
  const t0 = Date.now();
  const result = await autocannon({
    url: `http://127.0.0.1:${target.port}${target.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: bodyOf(target, kind),
    connections,
    duration: seconds,
    timeout: 10,
  });
  const wallMs = Date.now() - t0;
  const cpuMs = target.pid ? cpuMsOf(target.pid) - cpu0 : 0;
  target.tally.ok[kind] += result['2xx'];
  target.tally.bad[kind] += result.non2xx + result.errors;
  target.tally.inflight[kind] += Math.max(0, result.requests.sent - result['2xx'] - result.non2xx - result.errors);
  return { result, cpuMs, wallMs };
}

// -----------------------------------------------------------------------------------------------------------------
// Main

async function main() {
  const quick = args.quick;
  // The shipped default (full) first, then the tuned row.
  const syncs: ('normal' | 'full')[] = syncArg === 'both' ? ['full', 'normal'] : syncArg === 'full' ? ['full'] : ['normal'];
  const writeReadme = args['no-readme'] ? false : (args.readme ?? !quick);
  const cfg = quick
    ? { warmupSeconds: 3, latencyWarmup: 100, latencyN: 300, pacedN: 100, rounds: 4, ttftWarmup: 20, ttftN: 60, rates: [100, 200, 400, 700, 1000, 1500, 2500, 4000], refine: 1, stepSeconds: 2, streams: 1000 }
    : { warmupSeconds: 15, latencyWarmup: 200, latencyN: 2000, pacedN: 1000, rounds: 10, ttftWarmup: 30, ttftN: 300, rates: [100, 200, 300, 400, 600, 800, 1000, 1200, 1400, 1700, 2000, 2500, 3000, 4000, 5000, 6500, 8000], refine: 3, stepSeconds: 5, streams: 1000 };
  const startedAt = Date.now();
  const command = `npm run bench:gateway${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const logDir = mkdtempSync(join(tmpdir(), 'bench-gateway-logs-'));
  const load0 = loadavg();

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  process.once('exit', killAll);

  log(`# Gateway benchmark (${quick ? 'quick' : 'default'}; Switchyard sync: ${syncs.join(', ')})`);
  log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average ${load0.map((l) => l.toFixed(2)).join(' ')}; logs in ${logDir}`);

  const disk = fsyncLatency();
  log(`disk: 4 KiB append + fdatasync p50 ${ms2(disk.p50)}, p99 ${ms2(disk.p99)}`);
  await build();
  const upstream = await startUpstream(logDir);
  log(`upstream on :${upstream.port} (pid ${upstream.child.proc.pid})`);
  const direct: Target = { name: 'direct (fake upstream)', kind: 'direct', port: upstream.port, path: '/v1/chat/completions', headers: { authorization: `Bearer ${UPSTREAM_KEY}` }, models: UPSTREAM_MODELS, tally: emptyTally() };

  const targets: Target[] = [direct];
  for (const sync of syncs) {
    const h = await startSwitchyard(sync, upstream.port, logDir);
    targets.push({
      name: `Switchyard (sync=${sync}${sync === 'full' ? ', default' : ''})`,
      kind: 'switchyard',
      port: h.port,
      path: '/api/v1/chat/completions',
      headers: { authorization: `Bearer ${h.userKey}` },
      models: SWITCHYARD_MODELS,
      pid: h.child.proc.pid!,
      sync,
      tally: emptyTally(),
      switchyard: h,
    });
    log(`Switchyard sync=${sync} on :${h.port} (pid ${h.child.proc.pid}, data ${h.dataDir})`);
  }
  const portkey = await startPortkey(upstream.port, logDir);
  targets.push({ ...portkeyTarget(portkey.port, upstream.port), pid: portkey.child.proc.pid! });
  log(`Portkey on :${portkey.port} (pid ${portkey.child.proc.pid})`);
  const floorProxy = await startRole('floor', ['--upstream', String(upstream.port)], logDir);
  targets.push({ name: FLOOR_NAME, kind: 'floor', port: floorProxy.port, path: '/v1/chat/completions', headers: { authorization: `Bearer ${FLOOR_KEY}` }, models: SWITCHYARD_MODELS, pid: floorProxy.child.proc.pid!, tally: emptyTally() });
  log(`${FLOOR_NAME} on :${floorProxy.port} (pid ${floorProxy.child.proc.pid})`);
  // Its journal lives where Switchyard's data directories do (the same file system, so the same fsync).
  const journalDir = mkdtempSync(join(tmpdir(), 'bench-gateway-journal-'));
  const durableFloor = await startRole('floor', ['--upstream', String(upstream.port), '--journal', journalDir], logDir);
  targets.push({ name: DURABLE_FLOOR_NAME, kind: 'floor', port: durableFloor.port, path: '/v1/chat/completions', headers: { authorization: `Bearer ${FLOOR_KEY}` }, models: SWITCHYARD_MODELS, pid: durableFloor.child.proc.pid!, tally: emptyTally() });
  log(`${DURABLE_FLOOR_NAME} on :${durableFloor.port} (pid ${durableFloor.child.proc.pid}, journal ${journalDir})`);
  const gateways = targets.filter((t) => t.kind !== 'direct');
  const switchyards = targets.filter((t) => t.switchyard);
  const pk = targets.find((t) => t.kind === 'portkey')!;
  // The ratio columns: each Switchyard row against Portkey, and the floor against Portkey (what Node itself allows).
  const compared = targets.filter((t) => t.switchyard || t.kind === 'floor');

  // Smoke: every target answers both shapes correctly before any timing.
  for (const t of targets) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const c = await timedRequest(agent, t, bodyOf(t, 'd0'), null);
    const s = await timedRequest(agent, t, bodyOf(t, 'ttft'), null);
    record(t, 'd0', completionOk(c));
    record(t, 'ttft', streamOk(s, STREAM_CHUNKS.ttft));
    if (!completionOk(c) || !streamOk(s, STREAM_CHUNKS.ttft)) throw new Error(`${t.name} smoke test failed: ${c.status} ${c.body.slice(0, 300)} / ${s.status} ${s.body.slice(0, 300)}`);
    agent.destroy();
  }
  const memoryAtStart = new Map<Target, { hwmMiB: number; rssMiB: number }>(gateways.map((t) => [t, memoryOf(t.pid!)]));
  const settle = async () => {
    for (const t of switchyards) await waitIdle(t.switchyard!);
  };

  // Warm-up: V8 keeps optimising a server's hot path for tens of seconds of traffic, and until then the same code costs
  // more per request (bench/README, "CPU per request at moderate load"). A gateway in service runs warm, so each one
  // serves the same closed-loop load first, before anything is timed.
  log(`\n## warm-up: ${cfg.warmupSeconds} s per gateway, 10 connections, 20 ms upstream`);
  for (const t of gateways) {
    const { result } = await cannon(t, 'd20', 10, cfg.warmupSeconds);
    log(`${t.name.padEnd(28)} ${fmt(result['2xx'])} answers`);
  }
  await settle();

  // a. Added latency at concurrency 1 (non-streaming, 0 ms upstream), rounds interleaved.
  log(`\n## a. latency at concurrency 1 (${cfg.latencyN} requests per target after ${cfg.latencyWarmup} warm-up)`);
  const latency = new Map<Target, number[]>();
  const agents = new Map<Target, http.Agent>(targets.map((t) => [t, new http.Agent({ keepAlive: true, maxSockets: 1 })]));
  const sequential = async (t: Target, kind: Kind, n: number, into: number[] | null, pick: (r: Timed) => number | null, pauseMs = 0) => {
    const body = bodyOf(t, kind);
    const chunks = kind === 'ttft' || kind === 'streams' ? STREAM_CHUNKS[kind] : 0;
    for (let i = 0; i < n; i++) {
      if (pauseMs) await sleep(pauseMs);
      const r = await timedRequest(agents.get(t)!, t, body, chunks ? tokenText(0) : null);
      const ok = chunks ? streamOk(r, chunks) : completionOk(r);
      record(t, kind, ok);
      const v = pick(r);
      if (ok && into && v !== null) into.push(v);
    }
  };
  for (const t of targets) await sequential(t, 'd0', cfg.latencyWarmup, null, () => null);
  await settle();
  for (const t of targets) latency.set(t, []);
  for (let round = 0; round < cfg.rounds; round++) {
    for (const t of targets) await sequential(t, 'd0', cfg.latencyN / cfg.rounds, latency.get(t)!, (r) => r.totalMs);
  }
  const lat = new Map<Target, { p50: number; p90: number; p99: number; mean: number; n: number }>();
  for (const t of targets) {
    const s = latency.get(t)!.sort((a, b) => a - b);
    lat.set(t, { p50: percentile(s, 0.5), p90: percentile(s, 0.9), p99: percentile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length, n: s.length });
  }
  const dl = lat.get(direct)!;
  for (const t of targets) {
    const l = lat.get(t)!;
    log(`${t.name.padEnd(28)} n=${l.n} p50 ${ms2(l.p50)} p90 ${ms2(l.p90)} p99 ${ms2(l.p99)} mean ${ms2(l.mean)}${t === direct ? '' : `  added p50 ${ms2(l.p50 - dl.p50)} p99 ${ms2(l.p99 - dl.p99)}`}`);
  }
  await settle();

  // a'. The same, paced: a pause before each request lets work a gateway does after answering (Switchyard: settle,
  // generation append, projections) finish first, so this is the request's own path without queueing behind it.
  log(`\n## a'. latency at concurrency 1, paced (${cfg.pacedN} requests per target, ${PACE_MS} ms pause before each)`);
  const pacedLatency = new Map<Target, number[]>(targets.map((t) => [t, []]));
  for (let round = 0; round < cfg.rounds; round++) {
    for (const t of targets) await sequential(t, 'd0', cfg.pacedN / cfg.rounds, pacedLatency.get(t)!, (r) => r.totalMs, PACE_MS);
  }
  const paced = new Map<Target, { p50: number; p99: number; n: number }>();
  for (const t of targets) {
    const s = pacedLatency.get(t)!.sort((a, b) => a - b);
    paced.set(t, { p50: percentile(s, 0.5), p99: percentile(s, 0.99), n: s.length });
  }
  const dp = paced.get(direct)!;
  for (const t of targets) {
    const l = paced.get(t)!;
    log(`${t.name.padEnd(28)} n=${l.n} p50 ${ms2(l.p50)} p99 ${ms2(l.p99)}${t === direct ? '' : `  added p50 ${ms2(l.p50 - dp.p50)} p99 ${ms2(l.p99 - dp.p99)}`}`);
  }
  await settle();

  // c. Streaming time to first token at concurrency 1.
  log(`\n## c. streaming TTFT at concurrency 1 (${cfg.ttftN} streams of ${STREAM_CHUNKS.ttft} chunks per target)`);
  const ttft = new Map<Target, number[]>(targets.map((t) => [t, []]));
  for (const t of targets) await sequential(t, 'ttft', cfg.ttftWarmup, null, () => null);
  for (let round = 0; round < cfg.rounds; round++) {
    for (const t of targets) await sequential(t, 'ttft', Math.ceil(cfg.ttftN / cfg.rounds), ttft.get(t)!, (r) => r.firstTokenMs);
  }
  const tt = new Map<Target, { p50: number; p99: number; n: number }>();
  for (const t of targets) {
    const s = ttft.get(t)!.sort((a, b) => a - b);
    tt.set(t, { p50: percentile(s, 0.5), p99: percentile(s, 0.99), n: s.length });
  }
  const dt = tt.get(direct)!;
  for (const t of targets) {
    const v = tt.get(t)!;
    log(`${t.name.padEnd(28)} n=${v.n} TTFT p50 ${ms2(v.p50)} p99 ${ms2(v.p99)}${t === direct ? '' : `  added p50 ${ms2(v.p50 - dt.p50)} p99 ${ms2(v.p99 - dt.p99)}`}`);
  }
  for (const a of agents.values()) a.destroy();
  await settle();

  // b. Sustained throughput at the 20 ms upstream: open-loop rates stepped up until steps fail, then bisected.
  log(
    `\n## b. throughput at the 20 ms upstream (open loop, ${cfg.stepSeconds} s per rate, latency from each request's due time; pass = p99 < 50 ms, ` +
      `every request answered correctly, never more than a quarter second's requests unanswered; stops after 2 failing rates in a row, then up to ${cfg.refine} rates bisect between the last pass and the fail above it)`,
  );
  const steps = new Map<Target, Step[]>(targets.map((t) => [t, []]));
  const runStep = async (t: Target, rate: number): Promise<Step> => {
    const cpu0 = t.pid ? cpuMsOf(t.pid) : 0;
    const writes0 = t.switchyard ? await writesOf(t.switchyard) : null;
    const r = await openLoop({ port: t.port, path: t.path, headers: t.headers, body: bodyOf(t, 'd20'), rate, seconds: cfg.stepSeconds, check: (status, body) => status === 200 && body.includes(ANSWER) });
    const cpuMs = t.pid ? cpuMsOf(t.pid) - cpu0 : 0;
    t.tally.ok.d20 += r.ok;
    t.tally.bad.d20 += r.non2xx + r.errors;
    const p99 = percentile(r.latencies, 0.99);
    const step: Step = {
      rate,
      rps: r.ok / (r.wallMs / 1000),
      p50: percentile(r.latencies, 0.5),
      p99,
      errors: r.errors,
      non2xx: r.non2xx,
      overloaded: r.overloaded,
      ok: !r.overloaded && r.ok === r.sent && r.sent > 0 && p99 < 50,
      cpuUsPerRequest: t.pid && r.ok ? (cpuMs * 1000) / r.ok : NaN,
      cpuPercent: t.pid ? (cpuMs / r.wallMs) * 100 : NaN,
      commitsPerRequest: NaN,
      syncsPerRequest: NaN,
      loopBusyUsPerRequest: NaN,
    };
    if (t.switchyard && writes0) {
      await waitIdle(t.switchyard);
      const writes1 = await writesOf(t.switchyard);
      step.commitsPerRequest = (writes1.commits - writes0.commits) / r.ok;
      step.syncsPerRequest = (writes1.syncs - writes0.syncs) / r.ok;
      step.loopBusyUsPerRequest = ((writes1.busyMs - writes0.busyMs) * 1000) / r.ok;
    }
    const list = steps.get(t)!;
    list.push(step);
    list.sort((a, b) => a.rate - b.rate);
    log(
      `${t.name.padEnd(28)} ${fmt(rate).padStart(6)}/s offered ${fmt(step.rps).padStart(6)} req/s answered  p50 ${ms2(step.p50)} p99 ${ms2(step.p99)}  errors ${step.errors} non2xx ${step.non2xx}` +
        (step.overloaded ? `  overloaded (stopped after ${fmt(r.sent)} of ${fmt(rate * cfg.stepSeconds)})` : '') +
        (r.firstFailure ? `  first failure: ${r.firstFailure}` : '') +
        (t.pid ? `  gateway CPU ${fmt(step.cpuPercent)}% (${fmt(step.cpuUsPerRequest)} µs/req)` : '') +
        (t.switchyard ? `  per req: ${step.commitsPerRequest.toFixed(2)} commits, ${step.syncsPerRequest.toFixed(2)} fsyncs, loop busy ${fmt(step.loopBusyUsPerRequest)} µs` : '') +
        (r.maxLagMs > 5 ? `  generator up to ${ms2(r.maxLagMs)} late` : '') +
        (step.ok ? '' : '  ✗'),
    );
    return step;
  };
  for (const t of targets) {
    await cannon(t, 'd20', 10, quick ? 1 : 2); // warm-up
    if (t.switchyard) await waitIdle(t.switchyard);
  }
  // Rates are interleaved across targets (each rate runs on every target before the next), so a busy spell of the
  // shared host hits all of them alike, as in a.
  const failing = new Map<Target, number>(targets.map((t) => [t, 0]));
  for (const rate of cfg.rates) {
    for (const t of targets) {
      if (failing.get(t)! >= 2) continue;
      const step = await runStep(t, rate);
      failing.set(t, step.ok ? 0 : failing.get(t)! + 1);
    }
  }
  // Bisect the rate between the highest passing step and the failing one right above it, the same way for every
  // target, so the sustained rate is not an artefact of the grid.
  for (let i = 0; i < cfg.refine; i++) {
    for (const t of targets) {
      const list = steps.get(t)!;
      const passing = list.filter((x) => x.ok);
      const pass = passing[passing.length - 1];
      const fail = pass && list.find((x) => x.rate > pass.rate);
      if (!pass || !fail) continue;
      const rate = Math.round((pass.rate + fail.rate) / 2 / 10) * 10;
      if (rate - pass.rate >= Math.max(20, pass.rate / 16)) await runStep(t, rate);
    }
  }
  const best = (t: Target) => {
    const passing = steps.get(t)!.filter((s) => s.ok);
    return passing.length ? passing.reduce((a, b) => (b.rate > a.rate ? b : a)) : null;
  };

  // b'. Closed-loop peak: 100 connections, each sending its next request when the last is answered.
  log(`\n## b'. closed-loop peak at the 20 ms upstream (autocannon, 100 connections, ${cfg.stepSeconds} s)`);
  const peaks = new Map<Target, Peak>();
  for (const t of targets) {
    const { result, cpuMs, wallMs } = await cannon(t, 'd20', 100, cfg.stepSeconds);
    const p: Peak = { rps: result['2xx'] / (wallMs / 1000), p50: result.latency.p50, p99: result.latency.p99, cpuUsPerRequest: t.pid && result['2xx'] ? (cpuMs * 1000) / result['2xx'] : NaN };
    peaks.set(t, p);
    log(`${t.name.padEnd(28)} ${fmt(p.rps).padStart(6)} req/s  p50 ${p.p50} ms p99 ${p.p99} ms  errors ${result.errors} non2xx ${result.non2xx}${t.pid ? `  ${fmt(p.cpuUsPerRequest)} µs/req` : ''}`);
    if (t.switchyard) await waitIdle(t.switchyard);
  }

  // d. Concurrent streams: all opened at once, slow upstream tokens.
  log(`\n## d. ${cfg.streams} concurrent streams (${STREAM_CHUNKS.streams} chunks, 50 ms apart)`);
  const streamsResult = new Map<Target, { completed: number; failed: number; peakOpen: number; wallMs: number; ttftP50: number; ttftP99: number; totalP99: number; firstFailure: string | null }>();
  for (const t of targets) {
    const { results, peakOpen, wallMs } = await concurrentStreams(t, cfg.streams);
    let completed = 0;
    let firstFailure: string | null = null;
    for (const r of results) {
      const ok = streamOk(r, STREAM_CHUNKS.streams);
      record(t, 'streams', ok);
      if (ok) completed += 1;
      else firstFailure ??= `status ${r.status}${r.error ? ` ${r.error}` : ''}: ${r.body.slice(0, 200).replace(/\n/g, '\\n')}`;
    }
    const firsts = results.map((r) => r.firstTokenMs).filter((v): v is number => v !== null).sort((a, b) => a - b);
    const totals = results.filter((r) => streamOk(r, STREAM_CHUNKS.streams)).map((r) => r.totalMs).sort((a, b) => a - b);
    const v = { completed, failed: cfg.streams - completed, peakOpen, wallMs, ttftP50: percentile(firsts, 0.5), ttftP99: percentile(firsts, 0.99), totalP99: percentile(totals, 0.99), firstFailure };
    streamsResult.set(t, v);
    log(`${t.name.padEnd(28)} completed ${v.completed}/${cfg.streams} (peak open ${v.peakOpen}) in ${fmt(wallMs)} ms; TTFT p50 ${ms2(v.ttftP50)} p99 ${ms2(v.ttftP99)}; stream p99 ${ms2(v.totalP99)}${firstFailure ? `; first failure: ${firstFailure}` : ''}`);
    if (t.switchyard) await waitIdle(t.switchyard);
  }

  // e. Peak RSS.
  const memory = new Map<Target, { hwmMiB: number; rssMiB: number }>();
  for (const t of gateways) memory.set(t, memoryOf(t.pid!));

  // Billing and recording check.
  log(`\n## Billing and recording check (Switchyard)`);
  const checks: string[] = [];
  for (const t of switchyards) {
    const h = t.switchyard!;
    const { snapshot, waitedMs } = await waitIdle(h, 120_000);
    const sum = (r: Record<Kind, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    const kinds = Object.keys(SWITCHYARD_MODELS) as Kind[];
    // Non-streamed calls whose client left (autocannon stopping mid-request) are still answered and billed, so they
    // are expected too. A client-side failure may or may not have been charged: it widens the range by one.
    const lo = (k: Kind) => t.tally.ok[k] + t.tally.inflight[k];
    const hi = (k: Kind) => lo(k) + t.tally.bad[k];
    const within = (k: Kind, n: number) => n >= lo(k) && n <= hi(k);
    const range = (k: Kind) => (lo(k) === hi(k) ? fmt(lo(k)) : `${fmt(lo(k))}–${fmt(hi(k))}`);
    const liveRows = kinds.map((k) => ({ k, got: snapshot.byModel.get(SWITCHYARD_MODELS[k]) ?? { requests: 0, cost: 0 } }));
    const liveOk =
      liveRows.every(({ k, got }) => within(k, got.requests) && got.cost === got.requests * COST[k]) &&
      snapshot.requests === liveRows.reduce((a, r) => a + r.got.requests, 0) &&
      snapshot.settled === snapshot.cost &&
      snapshot.openReservations === 0 &&
      snapshot.reserved === 0;
    const exit = await stopChild(h.child);
    const events = countEvents(h.dataDir);
    const storeRows = kinds.map((k) => ({ k, settled: events.settledByModel.get(SWITCHYARD_MODELS[k]) ?? { requests: 0, cost: 0 }, completed: events.completedByModel.get(SWITCHYARD_MODELS[k]) ?? 0 }));
    const settledTotal = [...events.settledByModel.values()].reduce((a, r) => a + r.requests, 0);
    const storeOk =
      storeRows.every(({ k, settled, completed }) => within(k, settled.requests) && settled.cost === settled.requests * COST[k] && completed === settled.requests) &&
      settledTotal === (events.ledger.CreditsReserved ?? 0) &&
      (events.generation.GenerationRequested ?? 0) === settledTotal &&
      (events.ledger.ReservationReleased ?? 0) === 0 &&
      (events.ledger.ReservationExpired ?? 0) === 0;
    const lines = [
      `${t.name}: ${fmt(sum(t.tally.ok))} correct 2xx answers, ${fmt(sum(t.tally.inflight))} non-streamed requests still in flight when autocannon stopped (the gateway finishes and bills a call whose client left), ${fmt(sum(t.tally.bad))} failed or non-2xx on the client side.`,
      `  live, GraphQL as the user once idle (${fmt(waitedMs)} ms): usage requests by model, recorded vs expected: ${liveRows.map(({ k, got }) => `${SWITCHYARD_MODELS[k]} ${fmt(got.requests)} vs ${range(k)}`).join(', ')}; ` +
        `balance settled ${fmt(snapshot.settled)} n$ = usage cost ${fmt(snapshot.cost)} n$ (each request at its exact price: ${kinds.map((k) => `${fmt(COST[k])}`).join(' / ')} n$); reserved ${fmt(snapshot.reserved)}, open reservations ${snapshot.openReservations} → ${liveOk ? 'OK' : 'MISMATCH'}`,
      `  event store after a clean shutdown (exit ${exit}): GenerationRequested ${fmt(events.generation.GenerationRequested ?? 0)}, GenerationCompleted ${fmt(events.generation.GenerationCompleted ?? 0)}, GenerationFailed ${fmt(events.generation.GenerationFailed ?? 0)}, GenerationCancelled ${fmt(events.generation.GenerationCancelled ?? 0)}; ` +
        `CreditsReserved ${fmt(events.ledger.CreditsReserved ?? 0)}, ReservationSettled ${fmt(settledTotal)} (charged ${fmt([...events.settledByModel.values()].reduce((a, r) => a + r.cost, 0))} n$), ReservationReleased ${fmt(events.ledger.ReservationReleased ?? 0)}, ReservationExpired ${fmt(events.ledger.ReservationExpired ?? 0)} → ${storeOk ? 'OK' : 'MISMATCH'}`,
    ];
    for (const l of lines) log(l);
    checks.push(`- ${lines[0]}`, ...lines.slice(1).map((l) => `  - ${l.trim()}`));
    checks.push(`  - **${liveOk && storeOk ? 'PASS' : 'FAIL'}**: every answered request charged once at its exact price and recorded as a completed generation${sum(t.tally.bad) ? ' (within the range the client-side failures leave open)' : ''}.`);
  }

  // Gateway logs: anything Switchyard or Portkey printed at warn level or above.
  const notes: string[] = [];
  for (const c of children()) {
    if (c.name === 'upstream' || c.name === 'floor') continue;
    const text = existsSync(c.logFile) ? readFileSync(c.logFile, 'utf8') : '';
    // Without ANSI escapes and Portkey's start-up spinner; Switchyard logs only warn and above here (LOG_LEVEL=warn).
    const lines = text
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .split(/[\r\n]+/)
      .map((l) => l.trim())
      .filter((l) => l && !/AI Gateway|Ready for connections|^https?:\/\/\S+$|^[⠀-⣿]|^\W*$/u.test(l));
    if (lines.length) notes.push(`${c.name} wrote ${lines.length} log lines; first: \`${lines[0]!.slice(0, 300).replace(/`/g, "'")}\``);
    else notes.push(`${c.name}: nothing logged${c.name.startsWith('switchyard') ? ' at warn or above' : ' besides its start-up banner'}`);
  }

  // Results table.
  const load1 = loadavg();
  const table: string[] = [];
  const head = ['Measurement', ...gateways.map((g) => g.name), direct.name];
  for (const s of compared) head.push(`${s.name} / Portkey`);
  table.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  const row = (label: string, value: (t: Target) => number, format: (n: number) => string, withDirect = true) => {
    const cells = [label, ...gateways.map((g) => format(value(g))), withDirect ? format(value(direct)) : ''];
    for (const s of compared) cells.push(ratio(value(s), value(pk)));
    table.push(`| ${cells.join(' | ')} |`);
  };
  row('a. added latency p50, c=1, 0 ms upstream', (t) => lat.get(t)!.p50 - dl.p50, ms2, false);
  row('a. added latency p99, c=1, 0 ms upstream', (t) => lat.get(t)!.p99 - dl.p99, ms2, false);
  row(`a'. added latency p50, paced (${PACE_MS} ms pauses)`, (t) => paced.get(t)!.p50 - dp.p50, ms2, false);
  row(`a'. added latency p99, paced (${PACE_MS} ms pauses)`, (t) => paced.get(t)!.p99 - dp.p99, ms2, false);
  table.push(`| a. end-to-end latency p50 / p99 | ${[...gateways, direct].map((t) => `${lat.get(t)!.p50.toFixed(2)} / ${lat.get(t)!.p99.toFixed(2)} ms`).join(' | ')} |${compared.map(() => ' |').join('')}`);
  row('b. sustained req/s, p99 < 50 ms, 20 ms upstream (open loop)', (t) => best(t)?.rate ?? NaN, (n) => fmt(n));
  table.push(
    `| b. … p50 / p99 at that rate | ${[...gateways, direct].map((t) => {
      const b = best(t);
      return b ? `${b.p50.toFixed(1)} / ${b.p99.toFixed(1)} ms` : 'none passed';
    }).join(' | ')} |${compared.map(() => ' |').join('')}`,
  );
  row('b. gateway CPU per request at that rate', (t) => best(t)?.cpuUsPerRequest ?? NaN, (n) => (Number.isFinite(n) ? `${fmt(n)} µs` : '–'), false);
  // CPU per request falls as the rate rises (at low rates each request wakes idle threads, ~150 µs a wake-up on a VM),
  // so "at that rate" favours the gateway that sustains more. This row compares the same work: every gateway at one
  // rate, the highest step of the grid that Portkey sustained (else the first step).
  const sameRate =
    [...cfg.rates].reverse().find((r) => r <= (best(pk)?.rate ?? cfg.rates[0]!) && gateways.every((g) => steps.get(g)!.some((x) => x.rate === r))) ?? cfg.rates[0]!;
  row(
    `b. gateway CPU per request at ${fmt(sameRate)} req/s, every gateway`,
    (t) => steps.get(t)!.find((x) => x.rate === sameRate)?.cpuUsPerRequest ?? NaN,
    (n) => (Number.isFinite(n) ? `${fmt(n)} µs` : '–'),
    false,
  );
  const perRequest = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
  const swCell = (label: string, value: (s: Step) => number, format: (n: number) => string) =>
    table.push(`| ${label} | ${gateways.map((t) => (t.switchyard && best(t) ? format(value(best(t)!)) : '–')).join(' | ')} | |${compared.map(() => ' |').join('')}`);
  swCell('b. event store commits per request at that rate', (s) => s.commitsPerRequest, (n) => perRequest(n, 2));
  swCell('b. … WAL fsyncs per request (off the event loop)', (s) => s.syncsPerRequest, (n) => perRequest(n, 2));
  swCell('b. event loop busy per request at that rate', (s) => s.loopBusyUsPerRequest, (n) => (Number.isFinite(n) ? `${fmt(n)} µs` : '–'));
  row("b'. closed-loop peak req/s (100 connections, any p99)", (t) => peaks.get(t)!.rps, (n) => fmt(n));
  row("b'. gateway CPU per request at the peak", (t) => peaks.get(t)!.cpuUsPerRequest, (n) => (Number.isFinite(n) ? `${fmt(n)} µs` : '–'), false);
  row('c. added TTFT p50, c=1', (t) => tt.get(t)!.p50 - dt.p50, ms2, false);
  row('c. added TTFT p99, c=1', (t) => tt.get(t)!.p99 - dt.p99, ms2, false);
  row(`d. of ${cfg.streams} concurrent streams, completed`, (t) => streamsResult.get(t)!.completed, (n) => fmt(n));
  row('d. TTFT p99 with all streams open', (t) => streamsResult.get(t)!.ttftP99, ms2);
  row('e. peak RSS (VmHWM)', (t) => memory.get(t)?.hwmMiB ?? NaN, (n) => (Number.isFinite(n) ? `${fmt(n, 1)} MiB` : '–'), false);
  table.push(
    `| e. RSS after start-up → at the end | ${gateways.map((t) => `${fmt(memoryAtStart.get(t)!.rssMiB, 1)} → ${fmt(memory.get(t)!.rssMiB, 1)} MiB`).join(' | ')} | |${compared.map(() => ' |').join('')}`,
  );

  const minutes = ((Date.now() - startedAt) / 60_000).toFixed(1);
  const machine = `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${load1.map((l) => l.toFixed(2)).join(' ')} at the end; run took ${minutes} min on ${new Date().toISOString().slice(0, 10)}; one 4 KiB append + fdatasync in the data directories' file system took ${ms2(disk.p50)} p50, ${ms2(disk.p99)} p99 (300 in a row before the run). Switchyard ran ${args.tsx ? 'src/ through tsx' : `the production build (\`${['node', ...START_FLAGS, 'dist/src/main.js'].join(' ')}\`, as \`npm run start:prod\` and the Docker image)`}.`;
  log(`\n## Results\n\n${table.join('\n')}\n\n${machine}`);
  for (const n of notes) log(`log: ${n}`);

  if (writeReadme) {
    const block = [
      '<!-- gateway-bench:begin (generated by bench/gateway.bench.ts; rerunning replaces this block) -->',
      '```',
      command,
      '```',
      '',
      machine,
      '',
      table.join('\n'),
      '',
      'Billing and recording check:',
      '',
      ...checks,
      '',
      'Gateway logs:',
      '',
      ...notes.map((n) => `- ${n}`),
      '',
      'Open-loop steps (offered rate: answered req/s, p50 / p99 ms, gateway CPU µs per request; ✗ failed, "overloaded": stopped with a quarter second of requests unanswered):',
      '',
      ...[...gateways, direct].map(
        (t) =>
          `- ${t.name}: ${steps
            .get(t)!
            .map((s) => `${fmt(s.rate)}: ${fmt(s.rps)}, ${s.p50.toFixed(1)} / ${s.p99.toFixed(1)}${Number.isFinite(s.cpuUsPerRequest) ? `, ${fmt(s.cpuUsPerRequest)} µs` : ''}${s.overloaded ? ' overloaded' : ''}${s.ok ? '' : ' ✗'}`)
            .join('; ')}`,
      ),
      '<!-- gateway-bench:end -->',
    ].join('\n');
    const readme = join(REPO, 'bench/README.md');
    let text = readFileSync(readme, 'utf8');
    const begin = text.indexOf('<!-- gateway-bench:begin');
    const end = text.indexOf('<!-- gateway-bench:end -->');
    if (begin >= 0 && end > begin) text = `${text.slice(0, begin)}${block}${text.slice(end + '<!-- gateway-bench:end -->'.length)}`;
    else if (/^## Gateway$/m.test(text)) text = text.replace(/^## Gateway$/m, `## Gateway\n\n${block}`);
    else text = `${text.trimEnd()}\n\n## Gateway\n\n${block}\n`;
    writeFileSync(readme, text);
    log(`\nwrote bench/README.md (## Gateway)`);
  }

  for (const c of children()) await stopChild(c, 5_000);
  if (!args['keep-data']) {
    for (const t of switchyards) rmSync(t.switchyard!.dataDir, { recursive: true, force: true });
    rmSync(journalDir, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  }
}

/**
 * `--probe 10,25,50 [--seconds 6] [--sync full] [--probe-upstream d0]`: Switchyard alone on the 20 ms upstream (or the
 * 0 ms one; or with `--probe 1 --probe-upstream ttft`, phase c's streams, timed to their first token) at the given connection counts
 * (closed loop, autocannon), or `--probe-rates 300,600` at the given rates (open loop), with each thread's CPU per
 * request. For iterating on the hot path; prints only.
 */
async function probe(loads: number[], open: boolean, seconds: number, streams = false) {
  const logDir = mkdtempSync(join(tmpdir(), 'bench-gateway-probe-'));
  await build();
  const upstream = await startUpstream(logDir);
  const sync = syncArg as 'normal' | 'full';
  const h = await startSwitchyard(sync, upstream.port, logDir);
  const target: Target = { name: 'Switchyard', kind: 'switchyard', port: h.port, path: '/api/v1/chat/completions', headers: { authorization: `Bearer ${h.userKey}` }, models: SWITCHYARD_MODELS, pid: h.child.proc.pid!, sync, tally: emptyTally(), switchyard: h };
  log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; Switchyard pid ${target.pid}, data ${h.dataDir}`);
  // Long enough for V8 to have optimised the hot path: at a few hundred requests a second its compiler threads
  // keep working for tens of seconds, and code not yet optimised costs several times more per request.
  const started = memoryOf(target.pid!);
  await cannon(target, probeKind, 10, Number(args.warmup));
  await waitIdle(h);
  const warm = memoryOf(target.pid!);
  log(`RSS after start-up ${started.rssMiB.toFixed(1)} MiB, after the warm-up ${warm.rssMiB.toFixed(1)} MiB (VmHWM ${warm.hwmMiB.toFixed(1)})`);
  // PROBE_GAP_S: Switchyard idle this long before each step, as it is in the full run while the other targets run theirs.
  const gapMs = Number(process.env.PROBE_GAP_S ?? 0) * 1000;
  for (const load of loads) {
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    if (streams) {
      // Phase d alone: the peak resident set it reaches (VmHWM before and after), and RSS once idle again.
      const before = memoryOf(target.pid!);
      const { results, peakOpen, wallMs } = await concurrentStreams(target, load);
      const during = memoryOf(target.pid!);
      const completed = results.filter((r) => streamOk(r, STREAM_CHUNKS.streams)).length;
      target.tally.ok.streams += completed;
      const firsts = results.map((r) => r.firstTokenMs).filter((v): v is number => v !== null).sort((a, b) => a - b);
      await waitIdle(h);
      const idle = memoryOf(target.pid!);
      log(`streams ${String(load).padStart(5)}  completed ${completed} (peak open ${peakOpen}) in ${fmt(wallMs)} ms; TTFT p50 ${ms2(percentile(firsts, 0.5))} p99 ${ms2(percentile(firsts, 0.99))}  VmHWM ${before.hwmMiB.toFixed(1)} → ${during.hwmMiB.toFixed(1)} MiB, RSS before ${before.rssMiB.toFixed(1)}, at the end ${during.rssMiB.toFixed(1)}, idle ${idle.rssMiB.toFixed(1)} MiB`);
      continue;
    }
    const writes0 = await writesOf(h);
    const before = threadCpuMsOf(target.pid!);
    const others0 = [cpuMsOf(process.pid), cpuMsOf(upstream.child.proc.pid!)];
    const t0 = Date.now();
    const { n, latency, failures } = open ? await probeOpen(target, load, seconds) : await probeClosed(target, load, seconds);
    const wallMs = Date.now() - t0;
    const after = threadCpuMsOf(target.pid!);
    const others = [cpuMsOf(process.pid) - others0[0]!, cpuMsOf(upstream.child.proc.pid!) - others0[1]!].map((ms) => `${Math.round((100 * ms) / wallMs)}%`);
    const busy = [...after]
      .map(([name, { ms, wakes }]) => [name, ms - (before.get(name)?.ms ?? 0), wakes - (before.get(name)?.wakes ?? 0)] as const)
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1]);
    // Every thread that used at least 2% of a CPU, by name and id (main, then usually the storage thread; V8's four
    // helper threads are busy while code is still being optimised), the rest summed.
    const shown: (readonly [string, number, number])[] = busy.filter(([, ms]) => ms >= wallMs * Number(process.env.PROBE_THREAD_SHARE ?? 0.02));
    const rest = busy.slice(shown.length);
    if (rest.length > 0) shown.push([`${rest.length} other threads`, rest.reduce((sum, [, ms]) => sum + ms, 0), rest.reduce((sum, [, , wakes]) => sum + wakes, 0)]);
    const threads = shown.map(([name, ms, wakes]) => `${name} ${Math.round((ms * 1000) / n)} µs (${Math.round((100 * ms) / wallMs)}%, ${(wakes / n).toFixed(2)} wake-ups)`);
    const allWakes = [...after].reduce((sum, [name, { wakes }]) => sum + wakes - (before.get(name)?.wakes ?? 0), 0);
    await waitIdle(h);
    const writes1 = await writesOf(h);
    const perRequest = (a: number, b: number) => ((b - a) / n).toFixed(2);
    const storeLine = `commits ${perRequest(writes0.commits, writes1.commits)} fsyncs ${perRequest(writes0.syncs, writes1.syncs)} loop busy ${Math.round(((writes1.busyMs - writes0.busyMs) * 1000) / n)} µs per request`;
    log(`${open ? 'rate' : 'c='}${String(load).padStart(open ? 5 : 3)} ${Math.round(n / (wallMs / 1000)).toLocaleString('en-US').padStart(6)} req/s  p50 ${latency.p50} p99 ${latency.p99} ms  ${failures}  RSS ${memoryOf(target.pid!).rssMiB.toFixed(0)} MiB (VmHWM ${memoryOf(target.pid!).hwmMiB.toFixed(0)})  per request: ${threads.join(', ')}; ${(allWakes / n).toFixed(2)} wake-ups in all; load generator ${others[0]}, upstream ${others[1]}; ${storeLine}`);
  }
  for (const c of children()) await stopChild(c, 5_000);
  if (!args['keep-data']) {
    rmSync(h.dataDir, { recursive: true, force: true });
    rmSync(logDir, { recursive: true, force: true });
  }
}

async function probeClosed(target: Target, connections: number, seconds: number) {
  // One connection: requests one after another, timed to the microsecond (autocannon reports whole milliseconds).
  if (connections === 1) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = bodyOf(target, probeKind);
    const times: number[] = [];
    let failed = 0;
    const streamed = probeKind === 'ttft';
    // PROBE_PACE_MS: a pause before each request, as phase a' makes.
    const paceMs = Number(process.env.PROBE_PACE_MS ?? 0);
    for (const end = Date.now() + seconds * 1000; Date.now() < end; ) {
      if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
      const r = await timedRequest(agent, target, body, streamed ? tokenText(0) : null);
      if (streamed ? streamOk(r, STREAM_CHUNKS.ttft) : completionOk(r)) times.push(streamed ? r.firstTokenMs! : r.totalMs);
      else failed++;
    }
    agent.destroy();
    times.sort((a, b) => a - b);
    const q = (f: number) => percentile(times, f).toFixed(2);
    return { n: times.length, latency: { p50: q(0.5), p99: q(0.99) }, failures: `failed ${failed}` };
  }
  const { result } = await cannon(target, probeKind, connections, seconds);
  return { n: result['2xx'], latency: { p50: result.latency.p50, p99: result.latency.p99 }, failures: `errors ${result.errors} non2xx ${result.non2xx}` };
}

async function probeOpen(target: Target, rate: number, seconds: number) {
  const r = await openLoop({ port: target.port, path: target.path, headers: target.headers, body: bodyOf(target, probeKind), rate, seconds, check: (status, body) => status === 200 && body.includes(ANSWER) });
  target.tally.ok[probeKind] += r.ok;
  const q = (f: number) => percentile(r.latencies, f).toFixed(1);
  return { n: r.ok, latency: { p50: q(0.5), p99: q(0.99) }, failures: `failed ${r.sent - r.ok}${r.firstFailure ? ` (first: ${r.firstFailure})` : ''}${r.overloaded ? ' overloaded' : ''}, generator up to ${r.maxLagMs.toFixed(1)} ms late` };
}

// Last, so every module-level constant above is initialised before it runs.
if (args.role === 'upstream') {
  runUpstream();
} else if (args.role === 'floor') {
  runFloor(Number(args.upstream), args.journal);
} else if (probeLoads.length > 0) {
  await probe(probeLoads, args['probe-rates'] !== undefined, stepSeconds, args['probe-streams'] !== undefined).catch((error: unknown) => {
    process.stderr.write(`\nprobe failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
  killAll();
} else {
  await main().catch((error: unknown) => {
    process.stderr.write(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killAll();
    process.exitCode = 1;
  });
  killAll();
}

/**
 * Designers' expressions run on threads of their own, which are stopped at an expression's time limit.
 *
 * Why: jsonata checks its time limit between evaluation steps, and nothing can interrupt one synchronous call on the
 * thread that makes it. `$toMillis(text, picture)` builds a case-insensitive regexp from the picture inside jsonata
 * (not through the RegexEngine option, and V8's linear-time fallback cannot run `i`): a picture such as
 * `[Y]1[M]1[D]1[H]1[m]1[s]1[f]1[d]1[F]1[W]` on "111…1x" backtracks for ever. On the request thread that stopped the
 * whole server, SIGTERM included, and the resumed run stopped it again at every start. Guarding each built-in that
 * may run long (date pictures, number pictures, sorts, `$string` of shared structure...) would be a list never known
 * to be complete; a thread can be terminated in the middle of any call (V8 interrupts running code, a regexp too).
 *
 * Cost: one message each way per step input or condition, not one per expression: about 0.1 ms for a small scope. The
 * scope goes as JSON text made once per value of the run (WireScope): a 7 MB trigger costs this thread about 2 ms
 * per step to copy (a structured clone of it took 35-50 ms every time), and the expression thread parses it. What no thread contains is left
 * to run.expressions.ts: V8's fatal "invalid size" errors (which end the process from any thread) are kept out of
 * reach by bounding every string an expression makes and the widths of `$pad` and `$fromMillis`.
 *
 * Each thread evaluates one job at a time (so stopping it stops no one else's expression). Threads start when first
 * needed and are replaced when stopped. A thread writes when its current expression started to a shared clock; a
 * timer on this thread reads it, and terminates the thread once that expression is past its limit plus GRACE_MS
 * (jsonata's own check stops a well-behaved one at the limit, without losing the thread), or once the whole job is
 * past JOB_LIMIT_FACTOR times that limit (a step input of hundreds of expressions, each under the limit, held a thread
 * for minutes), or at once when the job's signal aborts (its run cancelled, its step timed out, the server stopping).
 *
 * Fairness: jobs wait per account, and a free thread takes the next account's in turn (round-robin), an account with
 * no job running first: one account's runs cannot hold every thread while another account's job waits for longer
 * than one job's limit.
 */
import { Worker } from 'node:worker_threads';
import type { JsonValue } from '../../eventStore/eventStore.js';
import { UnavailableError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { BACKGROUND_NICE } from '../../threadPriority.js';
import { CLOCK_INDEX, CLOCK_SLOTS, CLOCK_STARTED, type ExpressionAnswer, type ExpressionJob, type WireScope } from './expressionThreads.protocol.js';
import { EXPRESSION_ERROR_CODES, expressionPlaces, type ExpressionLimits, type ExpressionScope } from './run.expressions.js';
import { StepError } from './steps/step.js';

/** How long past its limit an expression may hold its thread before the thread is terminated. */
const GRACE_MS = 250;
/** A job (a step's whole input, or a condition) holds its thread for at most this many times one expression's limit. */
export const JOB_LIMIT_FACTOR = 2;
/** Threads at most: a job waits for a free one. */
const DEFAULT_THREADS = 2;

// The thread runs the TypeScript sources through tsx when this module is itself TypeScript (npm start, tests), and
// the compiled JavaScript next to it after `npm run build` (as the storage thread, src/storage/storageThread.ts).
const BOOT = `
const { workerData } = require('node:worker_threads');
// As lowerThisThreadPriority (src/threadPriority.ts): a designer's expression never comes before a request.
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, workerData.nice);
} catch { /* not Linux, or not permitted */ }
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})();
`;

export interface ExpressionThreads {
  /** A step's whole input with its expressions evaluated (as run.expressions' evaluateStepInput). */
  evaluateStepInput(input: JsonValue, scope: ExpressionScope, path: string, limits: ExpressionLimits, job: JobOptions): Promise<JsonValue>;
  /** One expression's value (as run.expressions' evaluateExpression). */
  evaluateExpression(source: string, scope: ExpressionScope, where: string, limits: ExpressionLimits, job: JobOptions): Promise<JsonValue>;
  /** Terminate the threads; what waits or runs fails with UNAVAILABLE. */
  close(): Promise<void>;
}

export interface JobOptions {
  /** The account whose workflow the job belongs to: threads are shared in turn between accounts. */
  readonly account: string;
  /** Aborted: the job leaves its queue, or its thread is terminated (and replaced), and it fails with the reason. */
  readonly signal?: AbortSignal;
}

type Job = { readonly message: ExpressionJob; readonly account: string; readonly resolve: (value: JsonValue) => void; readonly reject: (error: Error) => void; readonly detach: () => void };

interface Thread {
  readonly worker: Worker;
  readonly clock: BigInt64Array;
  ready: boolean;
  job: Job | null;
  /** When the job was handed to the thread (ms). */
  jobStarted: number;
  watchdog: NodeJS.Timeout | null;
}

export const createExpressionThreads = (options: { threads?: number; logger?: Logger } = {}): ExpressionThreads => {
  const size = Math.max(1, options.threads ?? DEFAULT_THREADS);
  const typescript = import.meta.url.endsWith('.ts');
  const entry = new URL(`./expressionWorker.${typescript ? 'ts' : 'js'}`, import.meta.url).href;
  const tsx = typescript ? import.meta.resolve('tsx/esm/api') : null;
  const threads = new Set<Thread>();
  /** Waiting jobs per account; the order of the keys is the turn (an account served goes to the end). */
  const queues = new Map<string, Job[]>();
  let nextId = 1;
  let closed = false;
  /** The JSON text of a run's values (its trigger, its steps' outputs), made once each: they never change. */
  const texts = new WeakMap<object, string>();
  const textOf = (value: JsonValue): string => {
    if (typeof value !== 'object' || value === null) return JSON.stringify(value);
    let text = texts.get(value);
    if (text === undefined) texts.set(value, (text = JSON.stringify(value)));
    return text;
  };
  const wire = (scope: ExpressionScope): WireScope => {
    const steps: Record<string, string> = {};
    for (const [key, output] of Object.entries(scope.steps)) steps[key] = textOf(output);
    return { trigger: textOf(scope.trigger), steps, run: scope.run, workflow: scope.workflow };
  };

  const place = (job: ExpressionJob, index: number): string => (job.kind === 'input' ? (expressionPlaces(job.input, job.where)[index] ?? job.where) : job.where);

  const settle = (thread: Thread, outcome: { value: JsonValue } | { error: Error }) => {
    const job = thread.job;
    if (thread.watchdog !== null) clearTimeout(thread.watchdog);
    thread.job = null;
    thread.watchdog = null;
    if (job === null) return;
    job.detach();
    if ('error' in outcome) job.reject(outcome.error);
    else job.resolve(outcome.value);
  };

  /** Leave the thread (terminated, or ended): its job fails with `error`, and a new thread takes the queue. */
  const retire = (thread: Thread, error: Error) => {
    if (!threads.delete(thread)) return;
    settle(thread, { error });
    void thread.worker.terminate();
    pump();
  };

  const watch = (thread: Thread) => {
    const job = thread.job!;
    const { timeoutMs } = job.message.limits;
    const budget = timeoutMs + GRACE_MS;
    const jobLimitMs = JOB_LIMIT_FACTOR * timeoutMs;
    const jobBudget = jobLimitMs + GRACE_MS;
    const look = () => {
      const now = Date.now();
      const started = Number(Atomics.load(thread.clock, CLOCK_STARTED));
      // Not started yet (the thread is still reading its message): a whole budget from now.
      const elapsed = started === 0 ? 0 : now - started;
      const jobElapsed = now - thread.jobStarted;
      if (elapsed < budget && jobElapsed < jobBudget) {
        thread.watchdog = setTimeout(look, Math.min(budget - elapsed, jobBudget - jobElapsed));
        return;
      }
      const where = place(job.message, Number(Atomics.load(thread.clock, CLOCK_INDEX)));
      if (elapsed >= budget) {
        options.logger?.warn({ where, elapsedMs: elapsed }, 'An expression held its thread past its time limit: the thread was terminated');
        retire(thread, new StepError(EXPRESSION_ERROR_CODES.timeout, `${where}: the expression ran longer than ${timeoutMs} ms and was stopped`, false));
        return;
      }
      options.logger?.warn({ where: job.message.where, at: where, elapsedMs: jobElapsed }, "A job's expressions held their thread past the job's time limit: the thread was terminated");
      retire(
        thread,
        new StepError(EXPRESSION_ERROR_CODES.timeout, `${job.message.where}: its expressions ran longer than ${jobLimitMs} ms in all (the limit of one step input or condition) and were stopped at ${where}`, false),
      );
    };
    thread.watchdog = setTimeout(look, budget);
  };

  const spawn = () => {
    const clock = new BigInt64Array(new SharedArrayBuffer(CLOCK_SLOTS * BigInt64Array.BYTES_PER_ELEMENT));
    const worker = new Worker(BOOT, { eval: true, workerData: { entry, tsx, clock: clock.buffer, nice: BACKGROUND_NICE } });
    // An idle thread keeps no process alive (a job in flight is awaited by whoever asked for it).
    worker.unref();
    const thread: Thread = { worker, clock, ready: false, job: null, jobStarted: 0, watchdog: null };
    threads.add(thread);
    worker.on('message', (message: ExpressionAnswer | { ready: true }) => {
      if ('ready' in message) {
        thread.ready = true;
        pump();
        return;
      }
      if (thread.job?.message.id !== message.id) return;
      if (message.ok) settle(thread, { value: message.value });
      else settle(thread, { error: new StepError(message.code ?? EXPRESSION_ERROR_CODES.failed, message.message, false) });
      pump();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const where = thread.job === null ? null : place(thread.job.message, Number(Atomics.load(clock, CLOCK_INDEX)));
      const failure =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new StepError(EXPRESSION_ERROR_CODES.tooLarge, `${where}: the expression used more memory than its thread may and was stopped`, false)
          : new StepError(EXPRESSION_ERROR_CODES.failed, `${where}: the expression thread failed (${error.message})`, false);
      options.logger?.warn({ where, err: error }, 'An expression thread failed');
      if (!thread.ready) notStarted(error.message);
      retire(thread, failure);
    });
    worker.on('exit', (code) => {
      if (!thread.ready) notStarted(`exit code ${code}`);
      retire(thread, new StepError(EXPRESSION_ERROR_CODES.failed, `the expression thread ended (exit code ${code})`, false));
    });
  };

  /** A thread that ends before it is ready would again: what waits fails now, rather than threads start for ever. */
  const notStarted = (reason: string) => {
    for (const job of takeAll()) fail(job, new UnavailableError(`Expressions cannot be evaluated: their thread did not start (${reason})`));
  };

  const fail = (job: Job, error: Error) => {
    job.detach();
    job.reject(error);
  };

  const waiting = (): number => {
    let count = 0;
    for (const jobs of queues.values()) count += jobs.length;
    return count;
  };
  const takeAll = (): Job[] => {
    const all = [...queues.values()].flat();
    queues.clear();
    return all;
  };
  /** The next job in turn: of the first account with none running, else of the first account. */
  const take = (): Job | undefined => {
    const running = new Set([...threads].flatMap((thread) => (thread.job === null ? [] : [thread.job.account])));
    let account: string | undefined;
    for (const candidate of queues.keys()) {
      account ??= candidate;
      if (!running.has(candidate)) {
        account = candidate;
        break;
      }
    }
    if (account === undefined) return undefined;
    const jobs = queues.get(account)!;
    const job = jobs.shift()!;
    queues.delete(account);
    if (jobs.length > 0) queues.set(account, jobs);
    return job;
  };

  const pump = () => {
    if (closed) return;
    for (const thread of threads) {
      if (!thread.ready || thread.job !== null) continue;
      const job = take();
      if (job === undefined) return;
      thread.job = job;
      thread.jobStarted = Date.now();
      // Zeroed before the message goes: the watchdog never reads the previous job's start.
      Atomics.store(thread.clock, CLOCK_STARTED, 0n);
      thread.worker.postMessage(job.message);
      watch(thread);
    }
    const starting = [...threads].filter((thread) => !thread.ready).length;
    for (let missing = Math.min(waiting() - starting, size - threads.size); missing > 0; missing--) spawn();
  };

  const submit = (message: ExpressionJob, { account, signal }: JobOptions): Promise<JsonValue> =>
    new Promise<JsonValue>((resolve, reject) => {
      if (closed) return reject(new UnavailableError('Expressions cannot be evaluated: the server is stopping'));
      if (signal?.aborted) return reject(signal.reason);
      // Aborted while it waits for a thread, it leaves the queue; while it runs, its thread is terminated (and replaced).
      const onAbort = () => {
        const reason = signal!.reason as Error;
        const jobs = queues.get(account);
        const at = jobs?.indexOf(job) ?? -1;
        if (at !== -1) {
          jobs!.splice(at, 1);
          if (jobs!.length === 0) queues.delete(account);
          fail(job, reason);
          return;
        }
        const holder = [...threads].find((thread) => thread.job === job);
        if (holder !== undefined) retire(holder, reason);
      };
      const job: Job = { message, account, resolve, reject, detach: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      const jobs = queues.get(account);
      if (jobs === undefined) queues.set(account, [job]);
      else jobs.push(job);
      pump();
    });

  return {
    evaluateStepInput: (input, scope, path, limits, job) => submit({ id: nextId++, kind: 'input', input, scope: wire(scope), where: path, limits }, job),
    evaluateExpression: (source, scope, where, limits, job) => submit({ id: nextId++, kind: 'expression', source, scope: wire(scope), where, limits }, job),
    close: async () => {
      closed = true;
      const stopping = new UnavailableError('Expressions cannot be evaluated: the server is stopping');
      for (const job of takeAll()) fail(job, stopping);
      const all = [...threads];
      threads.clear();
      for (const thread of all) settle(thread, { error: stopping });
      await Promise.all(all.map((thread) => thread.worker.terminate()));
    },
  };
};

/**
 * An open-loop load generator: requests leave at a fixed rate whatever the server's answers do, and each latency is
 * measured from the moment the request was due, not from when it was sent. A closed-loop generator (autocannon: each
 * connection waits for its answer before the next request) slows down with the server it measures and hides the
 * queueing it causes ("coordinated omission"); ../shared/reference/peers.md §7 asks for open-loop load.
 *
 * A step never abandons a request: once more than `maxOutstanding` are unanswered, the server is overloaded at this
 * rate, the step stops sending and is marked overloaded, and every request already sent is awaited. So every request
 * sent is answered or failed, and the benchmark's billing check can count them exactly.
 */
import http from 'node:http';

export interface OpenLoopOptions {
  readonly port: number;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Requests per second. */
  readonly rate: number;
  readonly seconds: number;
  /** Whether an answer is correct (status 200 and the expected text). */
  readonly check: (status: number, body: string) => boolean;
  /** Stop sending once this many requests are unanswered. Default: a quarter second's worth, at least 50. */
  readonly maxOutstanding?: number;
}

export interface OpenLoopResult {
  readonly rate: number;
  readonly sent: number;
  /** Correct 2xx answers. */
  readonly ok: number;
  readonly non2xx: number;
  /** Transport errors and 2xx answers that failed the check. */
  readonly errors: number;
  /** The step stopped sending: too many requests were unanswered. */
  readonly overloaded: boolean;
  /** ms from each request's due time to the end of its answer, sorted ascending (correct answers only). */
  readonly latencies: number[];
  /** From the first due time until the last answer. */
  readonly wallMs: number;
  /** How far behind its schedule the generator itself sent a request, at worst (ms). */
  readonly maxLagMs: number;
  /** The first failure: status and the start of the body, or the transport error. */
  readonly firstFailure: string | null;
}

export const openLoop = (options: OpenLoopOptions): Promise<OpenLoopResult> =>
  new Promise((resolve) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096 });
    const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(options.body)), ...options.headers };
    const total = Math.round(options.rate * options.seconds);
    const intervalMs = 1000 / options.rate;
    const maxOutstanding = options.maxOutstanding ?? Math.max(50, Math.ceil(options.rate / 4));
    const latencies: number[] = [];
    let sent = 0;
    let answered = 0;
    let ok = 0;
    let non2xx = 0;
    let errors = 0;
    let overloaded = false;
    let maxLagMs = 0;
    let firstFailure: string | null = null;
    const start = performance.now() + 5;

    const finish = () => {
      if (answered < sent || (sent < total && !overloaded)) return;
      agent.destroy();
      latencies.sort((a, b) => a - b);
      resolve({ rate: options.rate, sent, ok, non2xx, errors, overloaded, latencies, wallMs: performance.now() - start, maxLagMs, firstFailure });
    };
    const answer = (due: number, status: number, body: string | null, error?: Error) => {
      answered += 1;
      const good = body !== null && status >= 200 && status < 300 && options.check(status, body);
      if (good) {
        ok += 1;
        latencies.push(performance.now() - due);
      } else {
        if (body !== null && (status < 200 || status >= 300)) non2xx += 1;
        else errors += 1;
        firstFailure ??= body === null ? `transport: ${error?.message ?? 'error'}` : `${status}: ${body.slice(0, 300)}`;
      }
      finish();
    };
    const send = (due: number) => {
      sent += 1;
      const req = http.request({ host: '127.0.0.1', port: options.port, path: options.path, method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => answer(due, res.statusCode ?? 0, text));
        res.on('error', (error) => answer(due, 0, null, error));
      });
      req.on('error', (error) => answer(due, 0, null, error));
      req.end(options.body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * intervalMs <= now) {
        if (sent - answered >= maxOutstanding) {
          overloaded = true;
          return finish();
        }
        const due = start + sent * intervalMs;
        maxLagMs = Math.max(maxLagMs, now - due);
        send(due);
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()));
      else finish();
    };
    setTimeout(tick, 5);
  });

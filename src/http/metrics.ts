/**
 * Prometheus metrics at `GET /metrics` (prom-client's text exposition format).
 *
 * One registry per app instance (tests start several apps in one process) for the app's own metrics, and one per
 * process for Node's default metrics (they describe the process, whichever app asks). On the hot path only counter
 * and histogram updates happen: HTTP requests when a response closes, and a generation's latency, tokens, cost and
 * upstream errors when the gateway records it (after the answer went out). The ledger's queue and the projections'
 * lag are read when scraped.
 *
 * Access: with METRICS_TOKEN set, `Authorization: Bearer <token>` from anywhere; unset, only from the loopback
 * interface (a Prometheus on the same host or through an SSH tunnel), since per-model traffic is the operator's
 * business. Behind a reverse proxy on the same host every request comes from loopback: set METRICS_TOKEN there.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ForbiddenError, UnauthenticatedError } from '../errors.js';
import type { FollowState, FollowStatus } from '../eventStore/followStatus.js';
import type { GenerationFacts } from '../modules/generations/generation.api.js';
import { bearerOf, type Route } from './rest.js';

/** Seconds: from a fast cached answer to a long reasoning model. */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160];
const FOLLOW_STATES: readonly FollowState[] = ['catchingUp', 'live', 'retrying', 'stopped'];

let processRegistry: Registry | null = null;
/** Node's default metrics, once per process (their collectors hook the process: GC, event-loop delay). */
const processMetrics = (): Registry => {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
};

/** What the scrape reads: the event store's head, the projection runner and the followers. */
export interface MetricsSources {
  headPosition(): Promise<number>;
  runner(): FollowStatus;
  followers(): Record<string, FollowStatus>;
  ledgerQueue(): { readonly ops: number; readonly batches: number; readonly appends: number };
}

export const createMetrics = () => {
  const registry = new Registry();
  const requests = new Counter({ name: 'switchyard_http_requests_total', help: 'HTTP requests answered, by route pattern and status.', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const generations = new Counter({
    name: 'switchyard_generations_total',
    help: 'Generations recorded (chat, completions, embeddings, GraphQL, workflow steps), by provider, model, API and outcome.',
    labelNames: ['provider', 'model', 'api', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'switchyard_generation_duration_seconds',
    help: 'Completed generations: from the request to the last token, by provider and model.',
    labelNames: ['provider', 'model'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const firstToken = new Histogram({
    name: 'switchyard_generation_time_to_first_token_seconds',
    help: 'Completed text generations: from the request to the first token, by provider and model.',
    labelNames: ['provider', 'model'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const tokens = new Counter({ name: 'switchyard_tokens_total', help: 'Tokens billed, by provider, model and kind (prompt or completion).', labelNames: ['provider', 'model', 'kind'], registers: [registry] });
  const cost = new Counter({
    name: 'switchyard_cost_nanodollars_total',
    help: 'Amount charged to accounts in nano-dollars (1 USD = 1e9; integers, exact below 2^53), by provider and model.',
    labelNames: ['provider', 'model'],
    registers: [registry],
  });
  const upstreamErrors = new Counter({
    name: 'switchyard_upstream_errors_total',
    help: 'Failed upstream attempts, by provider, model and kind (rate_limited, server_error, timeout, connection, ...).',
    labelNames: ['provider', 'model', 'kind'],
    registers: [registry],
  });

  let sources: MetricsSources | null = null;
  new Gauge({
    name: 'switchyard_ledger_queued_ops',
    help: 'Ledger operations not yet written (waiting, or in decided batches).',
    registers: [registry],
    collect() {
      this.set(sources?.ledgerQueue().ops ?? 0);
    },
  });
  new Gauge({
    name: 'switchyard_ledger_pending_batches',
    help: 'Ledger batches decided and not yet written.',
    registers: [registry],
    collect() {
      this.set(sources?.ledgerQueue().batches ?? 0);
    },
  });
  new Counter({
    name: 'switchyard_ledger_appends_total',
    help: 'Ledger batches appended by this process since start (read from the ledger when scraped).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources?.ledgerQueue().appends ?? 0);
    },
  });
  /**
   * The head, the runner and the followers, read once per scrape before any gauge below is serialised (prom-client
   * serialises the metrics in order, each after its own collect: set from another gauge's collect, a gauge showed the
   * previous scrape's value, and 0 on the first scrape after a start).
   */
  let snapshot: Promise<{ head: number; runner: FollowStatus; followers: Record<string, FollowStatus> } | null> = Promise.resolve(null);
  new Gauge({
    name: 'switchyard_event_store_head_position',
    help: "The event store's last position.",
    registers: [registry],
    async collect() {
      const now = await snapshot;
      if (now) this.set(now.head);
    },
  });
  new Gauge({
    name: 'switchyard_projection_position',
    help: 'The last position the projection runner applied to the read models.',
    registers: [registry],
    async collect() {
      const now = await snapshot;
      if (now) this.set(now.runner.position);
    },
  });
  new Gauge({
    name: 'switchyard_projection_lag_events',
    help: 'Events the read models are behind the head (embedded store; on EventStoreDB positions are byte offsets and this is head minus position in bytes).',
    registers: [registry],
    async collect() {
      const now = await snapshot;
      if (now) this.set(Math.max(0, now.head - now.runner.position));
    },
  });
  new Gauge({
    name: 'switchyard_follower_state',
    help: 'Each consumer of the event log (projections and the in-memory followers): 1 for its current state.',
    labelNames: ['follower', 'state'],
    registers: [registry],
    async collect() {
      const now = await snapshot;
      if (!now) return;
      const all = { projections: now.runner, ...now.followers };
      for (const [name, status] of Object.entries(all)) for (const state of FOLLOW_STATES) this.set({ follower: name, state }, status.state === state ? 1 : 0);
    },
  });
  return {
    /** A response closed: its route pattern (`/api/v1/models/:id`, never the raw path) and status. */
    request(method: string, route: string, status: number): void {
      requests.inc({ method, route, status });
    },
    /** A generation was recorded (GenerationRecorder.record). */
    generation(facts: GenerationFacts): void {
      for (const attempt of facts.attempts) {
        if (attempt.error) upstreamErrors.inc({ provider: attempt.target.endpoint.provider.slug, model: attempt.target.model, kind: attempt.error.code });
      }
      const { end } = facts;
      const provider = end.target?.endpoint.provider.slug ?? 'none';
      const model = end.target?.model ?? 'none';
      generations.inc({ provider, model, api: facts.apiType, outcome: end.kind });
      if (end.usage.prompt_tokens > 0) tokens.inc({ provider, model, kind: 'prompt' }, end.usage.prompt_tokens);
      if (end.usage.completion_tokens > 0) tokens.inc({ provider, model, kind: 'completion' }, end.usage.completion_tokens);
      if (end.cost > 0) cost.inc({ provider, model }, end.cost);
      if (end.kind !== 'completed') return;
      duration.observe({ provider, model }, (end.endedAt - facts.startedAt) / 1000);
      if (end.firstTokenAt !== null && facts.apiType !== 'embeddings') firstToken.observe({ provider, model }, (end.firstTokenAt - facts.startedAt) / 1000);
    },
    /** What the scrape reads once the app's parts exist. */
    watch(from: MetricsSources): void {
      sources = from;
    },
    /** The app's metrics, then the process's, in the text format. */
    async text(): Promise<string> {
      // One read of the head per scrape, taken as the text is made; the runner first, so that its position is not
      // past the head it is compared with.
      const from = sources;
      if (from) {
        const runner = from.runner();
        const followers = from.followers();
        snapshot = from.headPosition().then((head) => ({ head, runner, followers }));
      } else snapshot = Promise.resolve(null);
      return `${await registry.metrics()}\n${await processMetrics().metrics()}`;
    },
    contentType: registry.contentType,
  };
};

export type Metrics = ReturnType<typeof createMetrics>;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/** Who may read /metrics: the METRICS_TOKEN bearer when set, else loopback clients only. */
const checkAccess = (req: IncomingMessage, token: string | undefined) => {
  if (token !== undefined) {
    const given = bearerOf(req);
    if (given === null || !sameSecret(given, token)) throw new UnauthenticatedError('GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
    return;
  }
  if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) throw new ForbiddenError('/metrics answers loopback clients only unless METRICS_TOKEN is set');
};

export const metricsRoute = (metrics: Metrics, token: string | undefined): Route => ({
  method: 'GET',
  path: '/metrics',
  handler: async ({ req, res }) => {
    checkAccess(req, token);
    const body = await metrics.text();
    res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  },
});

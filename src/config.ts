import { z } from 'zod';
import { NANOS_PER_USD } from './modules/ledger/money.js';
import { DEFAULT_PLANS, plansSchema } from './modules/ledger/plans.js';
import { EMPTY_ALLOW_LIST, parseOutboundAllow } from './modules/outbound/outboundPolicy.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * The longest delay Node.js's timers take (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms, so every
 * variable that becomes a timer (a timeout, a cooldown, a backoff) is at most this.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A whole number written in decimal digits (with a minus sign for a negative one), between the bounds. `Number()`
 * (z.coerce) would read `" "` as 0, `0x10` as 16 and `1e3` as 1000: a blank or mistyped value must stop the start,
 * not set a fee to zero or listen on a random port.
 */
const integer = (name: string, bounds: { min: number; max?: number; maxMessage?: string }) =>
  z
    .string()
    .regex(/^-?\d+$/, `${name} must be a whole number written in decimal digits`)
    .transform(Number)
    .pipe(
      z
        .number()
        .min(bounds.min, `${name} must be at least ${bounds.min}`)
        .max(bounds.max ?? Number.MAX_SAFE_INTEGER, bounds.maxMessage ?? `${name} must be at most ${bounds.max ?? Number.MAX_SAFE_INTEGER}`),
    );

/** Milliseconds that end up in a timer: at most MAX_TIMER_MS. */
const timerMs = (name: string, min: number) =>
  integer(name, { min, max: MAX_TIMER_MS, maxMessage: `${name} must be at most ${MAX_TIMER_MS} (ms, about 24.8 days: the longest timer Node.js sets)` });

/**
 * A secret compared with what clients send in a header, which has no leading or trailing whitespace (the bearer is
 * trimmed) and is read as Latin-1 bytes: a value with either, a control character or a non-ASCII one could never
 * match (a trailing space or CR from an .env file locked the admin out).
 */
const headerSecret = (name: string, minLength: number) =>
  z
    .string()
    .min(minLength, `${name} must be at least ${minLength} characters`)
    .refine((v) => v === v.trim(), `${name} has leading or trailing whitespace (a space, tab or CR from an .env file?): remove it`)
    .refine((v) => /^[\x20-\x7e]*$/.test(v.trim()), `${name} must be printable ASCII characters only (no control characters, no accents)`);

const schema = z.object({
  PORT: integer('PORT', { min: 0, max: 65535 }).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ADMIN_API_KEY: headerSecret('ADMIN_API_KEY', 32).optional(),
  EVENTSTORE_URL: z.string().regex(/^esdb(\+discover)?:\/\//, 'EVENTSTORE_URL must start with esdb:// (or esdb+discover://)').optional(),
  MONGODB_URL: z.string().regex(/^mongodb(\+srv)?:\/\//, 'MONGODB_URL must start with mongodb:// or mongodb+srv://').optional(),
  EVENTSTORE_SYNC: z.enum(['full', 'normal']).default('full'),
  SELF_SIGNUP: bool.default(false),
  /**
   * Accounts opened without a key (SELF_SIGNUP) per client address (an IPv6 client's /64) in any hour, counted per
   * process; 0: no limit. The free plan's quotas are per account, so each signup is fresh free use.
   */
  SELF_SIGNUP_PER_HOUR: integer('SELF_SIGNUP_PER_HOUR', { min: 0, max: 1_000_000 }).default(5),
  /**
   * Changes an account (not an admin) may make through the API in any minute, counted per process: each GraphQL
   * mutation field run (model calls excepted: they are billed) and each REST change made with a key (keys, presets, table
   * entries, runs); and the runs one workflow's webhook starts, counted per workflow
   * (src/modules/auth/writeBudget.ts). Past it, RATE_LIMITED (429) with when to retry.
   */
  WRITES_PER_MINUTE: integer('WRITES_PER_MINUTE', { min: 60, max: 1_000_000 }).default(600),
  GRAPHQL_INTROSPECTION: bool.default(true),
  MAX_BODY_BYTES: integer('MAX_BODY_BYTES', { min: 1024 }).default(1_048_576),
  /**
   * How long a client has to send a whole request (headers and body) before it is answered 408 and closed. Unset:
   * httpRequestTimeoutMs (60 s, longer when MAX_BODY_BYTES is raised).
   */
  HTTP_REQUEST_TIMEOUT_MS: integer('HTTP_REQUEST_TIMEOUT_MS', { min: 100, max: 3_600_000 }).optional(),
  /**
   * GraphQL subscriptions (graphql-ws and SSE) an account may have open at once, across all its connections: each holds
   * memory, replays what it follows and is sent every change. Per process.
   */
  GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT: integer('GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT', { min: 1, max: 100_000 }).default(100),
  /**
   * graphql-ws connections of an account open at once: opened with one of its keys (connection_init), or opened without
   * a key and then running an operation with one of its keys. Per process.
   */
  GRAPHQL_MAX_SOCKETS_PER_ACCOUNT: integer('GRAPHQL_MAX_SOCKETS_PER_ACCOUNT', { min: 1, max: 100_000 }).default(20),
  /**
   * graphql-ws connections open at once that are no account's: initialised without a key and not (yet) used with one,
   * or whose key was refused since.
   * Per process. Anyone may open them, so without a bound anyone could hold the server's memory and sockets.
   */
  GRAPHQL_MAX_KEYLESS_SOCKETS: integer('GRAPHQL_MAX_KEYLESS_SOCKETS', { min: 1, max: 1_000_000 }).default(1_000),
  /** Days a generation's logged content (input & output logging, opt-in per account) is kept. */
  CONTENT_RETENTION_DAYS: integer('CONTENT_RETENTION_DAYS', { min: 1, max: 3650 }).default(30),
  /** Bearer token for GET /metrics (Prometheus); unset, /metrics answers loopback clients only (src/http/metrics.ts). */
  METRICS_TOKEN: headerSecret('METRICS_TOKEN', 16).optional(),
  /**
   * Tables (src/modules/tables): bytes of one entry as JSON, entries per table, tables per account, and what all of an
   * account's live entries may count (each its JSON and TABLE_ENTRY_OVERHEAD_BYTES): the event log and the read model
   * hold about twice that.
   */
  TABLE_MAX_ENTRY_BYTES: integer('TABLE_MAX_ENTRY_BYTES', { min: 256, max: 1_048_576 }).default(65_536),
  TABLE_MAX_ENTRIES: integer('TABLE_MAX_ENTRIES', { min: 1 }).default(100_000),
  TABLE_MAX_PER_ACCOUNT: integer('TABLE_MAX_PER_ACCOUNT', { min: 1 }).default(100),
  TABLE_MAX_BYTES_PER_ACCOUNT: integer('TABLE_MAX_BYTES_PER_ACCOUNT', { min: 1024 }).default(268_435_456),
  /**
   * Workflows (src/modules/workflows), per account: workflows it has (not deleted); runs running or queued at once
   * across them (past it, a start is RATE_LIMITED, 429, and a trigger's firing is recorded as a FAILED run,
   * TOO_MANY_RUNS, not queued); the shortest interval between two due times of a schedule.
   */
  WORKFLOW_MAX_PER_ACCOUNT: integer('WORKFLOW_MAX_PER_ACCOUNT', { min: 1 }).default(100),
  WORKFLOW_MAX_RUNS_PER_ACCOUNT: integer('WORKFLOW_MAX_RUNS_PER_ACCOUNT', { min: 1 }).default(100),
  WORKFLOW_MIN_SCHEDULE_SECONDS: integer('WORKFLOW_MIN_SCHEDULE_SECONDS', { min: 1, max: 86_400 }).default(60),
  /**
   * Catalog (src/modules/catalog), per account that is not an admin: active endpoints on the providers it owns plus its
   * proposals waiting for an admin. Each puts a model (and its description) in the public listing or the admins' queue.
   */
  ENDPOINT_MAX_PER_ACCOUNT: integer('ENDPOINT_MAX_PER_ACCOUNT', { min: 1 }).default(200),
  /** Purchase fee in basis points (550 = 5.5%) with a minimum in nano-dollars ($0.80). */
  PURCHASE_FEE_BASIS_POINTS: integer('PURCHASE_FEE_BASIS_POINTS', { min: 0, max: 10_000 }).default(550),
  PURCHASE_FEE_MINIMUM: integer('PURCHASE_FEE_MINIMUM', { min: 0 }).default(800_000_000),
  /**
   * The fee on a call served with the account's own provider key (BYOK), in percent of what the call costs at the
   * endpoint's list price: up to two decimals (`5`, `2.5`), read as exact basis points (500, 250).
   */
  BYOK_FEE_PERCENT: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,2})?$/, 'BYOK_FEE_PERCENT must be a percentage with at most two decimals, such as 5 or 2.5')
    .transform((percent) => {
      const [whole, fraction = ''] = percent.split('.');
      return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
    })
    .refine((basisPoints) => basisPoints <= 10_000, 'BYOK_FEE_PERCENT must be at most 100')
    .default(500),
  /**
   * A reservation older than this is expired by the sweeper (its generation is presumed dead). Unset: the request
   * timeout plus a minute (see reservationTtlMs). Embedded mode expires every open reservation at start anyway.
   */
  RESERVATION_TTL_SECONDS: integer('RESERVATION_TTL_SECONDS', {
    min: 10,
    max: Math.floor(MAX_TIMER_MS / 1000),
    maxMessage: `RESERVATION_TTL_SECONDS must be at most ${Math.floor(MAX_TIMER_MS / 1000)} (about 24.8 days: the longest timer Node.js sets)`,
  }).optional(),
  /**
   * The most credits (lifetime purchased + granted) one account may receive, in nano-dollars: $1,000,000 by default,
   * at most $4,000,000 so every counter and balance stays an exact integer (below 2^53 nano-dollars).
   */
  ACCOUNT_CREDITS_CAP: integer('ACCOUNT_CREDITS_CAP', { min: 1, max: 4_000_000 * NANOS_PER_USD }).default(1_000_000 * NANOS_PER_USD),
  /** Plans as JSON, e.g. {"free":{...},"pro":{...}}; see src/modules/ledger/plans.ts for the fields. */
  PLANS: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'PLANS must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(plansSchema)
    .default(DEFAULT_PLANS),
  // Gateway (src/gateway): provider credentials, catalog seed, timeouts, retries, circuit breaker, demo model.
  SWITCHYARD_MASTER_KEY: z.string().min(32, 'SWITCHYARD_MASTER_KEY must be at least 32 characters').optional(),
  /**
   * Takes a master key that does not open the secrets sealed in the event log, its predecessor being lost for good: the
   * id of the newest sealed secret, as the start refused without it printed (see checkMasterKey).
   */
  SWITCHYARD_MASTER_KEY_REPLACES: z
    .string()
    .regex(/^[0-9a-f]{16}$/, 'SWITCHYARD_MASTER_KEY_REPLACES must be the 16-character id a start refused for a master key printed')
    .optional(),
  /**
   * Environment variables an admin may name as a provider's key (credentialEnv): a comma list, `NAME*` for a prefix,
   * `none` for no variable at all. Unset: the variables the catalog seeds name (OPENAI_API_KEY, ...).
   */
  PROVIDER_CREDENTIAL_ENV_ALLOW: z
    .string()
    .transform((text) => (text.trim() === 'none' ? [] : text.split(',').map((e) => e.trim()).filter((e) => e !== '')))
    .pipe(z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\*?$/, 'PROVIDER_CREDENTIAL_ENV_ALLOW entries are variable names, or prefixes ending in *')))
    .optional(),
  /**
   * Private, loopback, link-local ... addresses that providers (other than an admin's) may still reach: a comma list
   * of host names, addresses and CIDR ranges, e.g. `ollama.internal,10.1.0.0/16`. Unset: public addresses only.
   */
  OUTBOUND_ALLOW: z
    .string()
    .transform((text, ctx) => {
      try {
        return parseOutboundAllow(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `OUTBOUND_ALLOW: ${(error as Error).message}` });
        return z.NEVER;
      }
    })
    .default(EMPTY_ALLOW_LIST),
  /** The catalog seed (src/modules/catalog/seed/SEED.md); `none` starts with an empty catalog. */
  CATALOG_SEED_FILE: z.string().min(1).optional(),
  GATEWAY_REQUEST_TIMEOUT_MS: timerMs('GATEWAY_REQUEST_TIMEOUT_MS', 100).default(600_000),
  GATEWAY_FIRST_TOKEN_TIMEOUT_MS: timerMs('GATEWAY_FIRST_TOKEN_TIMEOUT_MS', 50).default(120_000),
  GATEWAY_STREAM_IDLE_TIMEOUT_MS: timerMs('GATEWAY_STREAM_IDLE_TIMEOUT_MS', 50).default(120_000),
  GATEWAY_MAX_ATTEMPTS: integer('GATEWAY_MAX_ATTEMPTS', { min: 1, max: 20 }).default(5),
  GATEWAY_MAX_RETRY_AFTER_MS: timerMs('GATEWAY_MAX_RETRY_AFTER_MS', 0).default(10_000),
  GATEWAY_BACKOFF_BASE_MS: timerMs('GATEWAY_BACKOFF_BASE_MS', 0).default(250),
  GATEWAY_BREAKER_FAILURES: integer('GATEWAY_BREAKER_FAILURES', { min: 1 }).default(3),
  GATEWAY_BREAKER_COOLDOWN_MS: timerMs('GATEWAY_BREAKER_COOLDOWN_MS', 100).default(30_000),
  GATEWAY_KEEPALIVE_MS: timerMs('GATEWAY_KEEPALIVE_MS', 10).default(2_000),
  /**
   * What the process holds at once of whole upstream answers being read (src/gateway/upstream.ts): 256 MiB; and as much
   * again for the live feeds of startGeneration (src/modules/generations/generationFeed.ts).
   */
  GATEWAY_ANSWER_BUFFER_BYTES: integer('GATEWAY_ANSWER_BUFFER_BYTES', { min: 1_048_576 }).default(268_435_456),
  /**
   * `price`: OpenRouter's default load balancing (the endpoint tried first drawn among the healthy ones, weighted by
   * 1/price², when a request sets no sort and no provider order); `off`: the cheapest first, always.
   */
  ROUTING_LOAD_BALANCING: z.enum(['price', 'off'], { error: 'ROUTING_LOAD_BALANCING must be price or off' }).default('price'),
  /** GitHub's REST API for `action.githubComment` (GitHub Enterprise: https://host/api/v3; tests: a local fake). */
  GITHUB_API_URL: z
    .string()
    .regex(/^https?:\/\/[^\s]+$/, 'GITHUB_API_URL must be an http(s) URL')
    .transform((url) => url.replace(/\/+$/, ''))
    .default('https://api.github.com'),
  DEMO_TOKEN_DELAY_MS: integer('DEMO_TOKEN_DELAY_MS', { min: 0, max: 5_000 }).default(20),
  /**
   * On SIGTERM / SIGINT: how long the requests in flight have to finish while new ones are refused (503); past it a
   * stream still running ends with an error event and a JSON call is answered 503 (src/app.ts stop).
   */
  SHUTDOWN_GRACE_MS: integer('SHUTDOWN_GRACE_MS', { min: 0, max: 3_600_000 }).default(10_000),
});

export type Config = z.infer<typeof schema>;

/** Every variable the configuration reads (`.env.example` documents each: test/unit/envExample.unit.test.ts). */
export const CONFIG_VARIABLES = Object.keys(schema.shape) as readonly (keyof Config)[];

/** Margin after the request timeout for the generation's settlement before its reservation is presumed dead. */
const SETTLE_MARGIN_MS = 60_000;

/** How long a reservation may stay open: RESERVATION_TTL_SECONDS, else the request timeout plus a margin. */
export const reservationTtlMs = (config: Config): number =>
  config.RESERVATION_TTL_SECONDS !== undefined ? config.RESERVATION_TTL_SECONDS * 1000 : config.GATEWAY_REQUEST_TIMEOUT_MS + SETTLE_MARGIN_MS;

/** The slowest upload a default deadline allows for: 20,000 bytes/s (160 kbit/s, a poor mobile uplink). */
const SLOW_LINK_BYTES_PER_SECOND = 20_000;
const MIN_DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/**
 * The deadline for receiving a request: HTTP_REQUEST_TIMEOUT_MS, else 60 s or, when MAX_BODY_BYTES is raised past
 * what 60 s carries on a slow link, the time the largest accepted body takes at 20,000 bytes/s (1 MiB: 52 s; 10 MiB:
 * 524 s). Node's own default is 5 minutes for any request, so a client that declares a body it never sends holds its
 * connection and request that long.
 */
export const httpRequestTimeoutMs = (config: Config): number =>
  config.HTTP_REQUEST_TIMEOUT_MS ?? Math.max(MIN_DEFAULT_REQUEST_TIMEOUT_MS, Math.ceil((config.MAX_BODY_BYTES * 1000) / SLOW_LINK_BYTES_PER_SECOND));

/** Fully embedded: this process holds the lock on DATA_DIR and is the only user of its event store. */
export const isEmbedded = (config: Config): boolean => config.EVENTSTORE_URL === undefined && config.MONGODB_URL === undefined;

export class ConfigError extends Error {}

/**
 * Validate the environment once at boot; a bad value stops the process with a message naming the variable. An empty
 * value (`PORT=`) is unset, as a shell or compose file writes one; a value of only whitespace (`PORT=" "`) is refused,
 * for it is a mistake rather than a choice (read as a number it used to be 0: no purchase fee, a random port).
 */
export const loadConfig = (env: Record<string, string | undefined> = process.env): Config => {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const blank = Object.keys(schema.shape).filter((name) => cleaned[name] !== undefined && cleaned[name]!.trim() === '');
  const result = schema.safeParse(cleaned);
  const issues = [
    ...blank.map((name) => `  ${name}: ${name} is blank (only whitespace): give it a value, or leave it empty or unset for the default`),
    ...(result.success ? [] : result.error.issues.filter((issue) => !blank.includes(String(issue.path[0]))).map((issue) => `  ${issue.path.join('.')}: ${issue.message}`)),
  ];
  if (issues.length > 0 || !result.success) throw new ConfigError(`Invalid configuration:\n${issues.join('\n')}`);
  return result.data;
};

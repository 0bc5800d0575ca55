import { z } from 'zod';
import { NANOS_PER_USD } from './modules/ledger/money.js';
import { DEFAULT_PLANS, plansSchema } from './modules/ledger/plans.js';
import { EMPTY_ALLOW_LIST, parseOutboundAllow } from './modules/outbound/outboundPolicy.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ADMIN_API_KEY: z.string().min(32, 'ADMIN_API_KEY must be at least 32 characters').optional(),
  EVENTSTORE_URL: z.string().regex(/^esdb(\+discover)?:\/\//, 'EVENTSTORE_URL must start with esdb:// (or esdb+discover://)').optional(),
  MONGODB_URL: z.string().regex(/^mongodb(\+srv)?:\/\//, 'MONGODB_URL must start with mongodb:// or mongodb+srv://').optional(),
  EVENTSTORE_SYNC: z.enum(['full', 'normal']).default('full'),
  SELF_SIGNUP: bool.default(false),
  GRAPHQL_INTROSPECTION: bool.default(true),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  /**
   * How long a client has to send a whole request (headers and body) before it is answered 408 and closed. Unset:
   * httpRequestTimeoutMs (60 s, longer when MAX_BODY_BYTES is raised).
   */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number({ error: 'HTTP_REQUEST_TIMEOUT_MS must be a number of milliseconds' }).int().min(100).max(3_600_000).optional(),
  /** Days a generation's logged content (input & output logging, opt-in per account) is kept. */
  CONTENT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  /** Bearer token for GET /metrics (Prometheus); unset, /metrics answers loopback clients only (src/http/metrics.ts). */
  METRICS_TOKEN: z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional(),
  /** Tables (src/modules/tables): bytes of one entry as JSON, entries per table, tables per account. */
  TABLE_MAX_ENTRY_BYTES: z.coerce.number().int().min(256).max(1_048_576).default(65_536),
  TABLE_MAX_ENTRIES: z.coerce.number().int().min(1).default(100_000),
  TABLE_MAX_PER_ACCOUNT: z.coerce.number().int().min(1).default(100),
  /**
   * Workflows (src/modules/workflows), per account: workflows it has (not deleted); runs running or queued at once
   * across them (past it, a start is RATE_LIMITED, 429, and a trigger's firing is recorded as a FAILED run,
   * TOO_MANY_RUNS, not queued); the shortest interval between two due times of a schedule.
   */
  WORKFLOW_MAX_PER_ACCOUNT: z.coerce.number().int().min(1).default(100),
  WORKFLOW_MAX_RUNS_PER_ACCOUNT: z.coerce.number().int().min(1).default(100),
  WORKFLOW_MIN_SCHEDULE_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Purchase fee in basis points (550 = 5.5%) with a minimum in nano-dollars ($0.80). */
  PURCHASE_FEE_BASIS_POINTS: z.coerce.number().int().min(0).max(10_000).default(550),
  PURCHASE_FEE_MINIMUM: z.coerce.number().int().min(0).default(800_000_000),
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
  RESERVATION_TTL_SECONDS: z.coerce.number().int().min(10).optional(),
  /**
   * The most credits (lifetime purchased + granted) one account may receive, in nano-dollars: $1,000,000 by default,
   * at most $4,000,000 so every counter and balance stays an exact integer (below 2^53 nano-dollars).
   */
  ACCOUNT_CREDITS_CAP: z.coerce.number().int().min(1).max(4_000_000 * NANOS_PER_USD).default(1_000_000 * NANOS_PER_USD),
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
  GATEWAY_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(600_000),
  GATEWAY_FIRST_TOKEN_TIMEOUT_MS: z.coerce.number().int().min(50).default(120_000),
  GATEWAY_STREAM_IDLE_TIMEOUT_MS: z.coerce.number().int().min(50).default(120_000),
  GATEWAY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  GATEWAY_MAX_RETRY_AFTER_MS: z.coerce.number().int().min(0).default(10_000),
  GATEWAY_BACKOFF_BASE_MS: z.coerce.number().int().min(0).default(250),
  GATEWAY_BREAKER_FAILURES: z.coerce.number().int().min(1).default(3),
  GATEWAY_BREAKER_COOLDOWN_MS: z.coerce.number().int().min(100).default(30_000),
  GATEWAY_KEEPALIVE_MS: z.coerce.number().int().min(10).default(2_000),
  /** What the process holds at once of whole upstream answers being read (src/gateway/upstream.ts): 256 MiB. */
  GATEWAY_ANSWER_BUFFER_BYTES: z.coerce.number({ error: 'GATEWAY_ANSWER_BUFFER_BYTES must be a number of bytes' }).int().min(1_048_576).default(268_435_456),
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
  DEMO_TOKEN_DELAY_MS: z.coerce.number().int().min(0).max(5_000).default(20),
  /**
   * On SIGTERM / SIGINT: how long the requests in flight have to finish while new ones are refused (503); past it a
   * stream still running ends with an error event and a JSON call is answered 503 (src/app.ts stop).
   */
  SHUTDOWN_GRACE_MS: z.coerce.number({ error: 'SHUTDOWN_GRACE_MS must be a number of milliseconds' }).int().min(0).max(3_600_000).default(10_000),
});

export type Config = z.infer<typeof schema>;

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

/** Validate the environment once at boot; a bad value stops the process with a message naming the variable. */
export const loadConfig = (env: Record<string, string | undefined> = process.env): Config => {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
};

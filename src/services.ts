import { abandonedClaims, createIdempotencyClaims, createIdempotentReplays } from './modules/generations/requestIdempotency.js';
import type { ContentStore } from './contentStore/contentStore.js';
import { providerStatsQueries } from '../projections/providerStats.js';
import type { ProjectionRunner } from '../projections/runner.js';
import { ConfigError, isEmbedded, reservationTtlMs, type Config } from './config.js';
import type { EventStore } from './eventStore/eventStore.js';
import type { Logger } from './logger.js';
import type { AuthDirectory } from './modules/auth/authDirectory.js';
import { createCatalog } from './modules/catalog/catalog.js';
import { checkMasterKey, createCredentialVault, parseEnvAllowList } from './modules/catalog/credentials.js';
import { DEFAULT_SEED_FILE, applySeed, readSeed, type CatalogSeed } from './modules/catalog/seed.js';
import { createGenerationRecorder, type GenerationFacts, type GenerationRecorder } from './modules/generations/generation.api.js';
import type { WriteRetry } from './eventStore/writeRetry.js';
import { createPresetView } from './modules/presets/presetView.js';
import { createOutboundPolicy } from './modules/outbound/outboundPolicy.js';
import type { Ledger } from './modules/ledger/ledger.js';
import type { LedgerService } from './modules/ledger/ledgerService.js';
import { generationStream } from './modules/generations/generation.events.js';
import type { ReadStore } from './readStore/readStore.js';
import { createGateway, type ContentLog, type GatewayConfig } from './gateway/gateway.js';
import { createStatsSnapshot } from './gateway/routeStats.js';
import { createUpstreamClient } from './gateway/upstream.js';

const STATS_REFRESH_MS = 5_000;

export const gatewayConfigFrom = (config: Config): GatewayConfig => ({
  requestTimeoutMs: config.GATEWAY_REQUEST_TIMEOUT_MS,
  firstTokenTimeoutMs: config.GATEWAY_FIRST_TOKEN_TIMEOUT_MS,
  idleTimeoutMs: config.GATEWAY_STREAM_IDLE_TIMEOUT_MS,
  maxAttempts: config.GATEWAY_MAX_ATTEMPTS,
  maxRetryAfterMs: config.GATEWAY_MAX_RETRY_AFTER_MS,
  backoffBaseMs: config.GATEWAY_BACKOFF_BASE_MS,
  breakerFailures: config.GATEWAY_BREAKER_FAILURES,
  breakerCooldownMs: config.GATEWAY_BREAKER_COOLDOWN_MS,
  loadBalancing: config.ROUTING_LOAD_BALANCING === 'price',
  demoTokenDelayMs: config.DEMO_TOKEN_DELAY_MS,
  byokFeeBasisPoints: config.BYOK_FEE_PERCENT,
});

/** The recorder, telling `onGeneration` each generation first (a failure there never costs the record). */
const observed = (recorder: GenerationRecorder, onGeneration: ((facts: GenerationFacts) => void) | undefined, logger: Logger): GenerationRecorder =>
  onGeneration === undefined
    ? recorder
    : {
        ...recorder,
        record: (facts) => {
          try {
            onGeneration(facts);
          } catch (error) {
            logger.error({ err: error, generationId: facts.generationId }, 'could not observe a generation');
          }
          return recorder.record(facts);
        },
      };

/**
 * The catalog seed CATALOG_SEED_FILE names (the shipped one when unset, null for `none`), read before anything
 * starts: a file that cannot be read, is not JSON or is no seed stops the start with a line naming the variable.
 */
export const loadCatalogSeed = async (config: Config): Promise<CatalogSeed | null> => {
  if (config.CATALOG_SEED_FILE === 'none') return null;
  if (config.CATALOG_SEED_FILE === undefined) return readSeed(DEFAULT_SEED_FILE);
  const file = config.CATALOG_SEED_FILE;
  try {
    return await readSeed(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'cannot be read: no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read: permission denied'
          : code === 'EISDIR'
            ? 'is a directory, not a seed file'
            : error instanceof SyntaxError
              ? `is not JSON (${error.message})`
              : (error as Error).message.replace(/^Catalog seed \S+ /, '').replace(/:\n\s+/, ': ').replace(/\n\s+/g, '; ');
    throw new ConfigError(`CATALOG_SEED_FILE (${file}) ${why}`);
  }
};

const seedEnvNames = (seed: CatalogSeed) => seed.providers.flatMap((p) => (p.credentialEnv ? [p.credentialEnv] : []));

/**
 * Part of the composition root (main.ts), for the gateway and the catalog it routes with: the in-memory catalog (caught up before serving), the routing stats
 * snapshot, the gateway itself; `seed()` loads the catalog seed once the root account exists; `stop()` waits for
 * in-flight settlements and generation records. `masterKey` is SWITCHYARD_MASTER_KEY or the embedded mode's own.
 */
export const createGatewayServices = async (deps: {
  config: Config;
  /** The catalog seed (loadCatalogSeed), null for none. */
  seed: CatalogSeed | null;
  masterKey: string | undefined;
  /** Where `masterKey` came from (`SWITCHYARD_MASTER_KEY`, or the key file's path), named when it opens no sealed secret. */
  masterKeyFrom?: string;
  logger: Logger;
  eventStore: EventStore;
  readStore: ReadStore;
  ledger: Ledger & Pick<LedgerService, 'reservationOf'>;
  runner: ProjectionRunner;
  /** Told each generation as it is recorded (the metrics). */
  onGeneration?: (facts: GenerationFacts) => void;
  /** Input & output logging (see modules/generations/generationContent.ts). */
  contentLog?: ContentLog;
  /** Where Idempotency-Key answers are kept for replay (the content store; sealed under `masterKey`, none without it). */
  replayStore?: Pick<ContentStore, 'putReplay' | 'getReplay'>;
  /** The accounts' provider lists the gateway routes within. */
  directory: Pick<AuthDirectory, 'account' | 'key'>;
  /** The clock of calls and of Idempotency-Key claims and their replay window (tests move it). */
  now?: () => Date;
  /** How a generation record whose append failed is tried again: the ledger's, shared (see eventStore/writeRetry.ts). */
  writeRetry?: WriteRetry;
}) => {
  const { config, logger, eventStore, readStore, runner } = deps;
  const now = deps.now ?? (() => new Date());
  // Idempotency-Key claims made before this are a previous process's (embedded mode: see abandonedClaims).
  const startedAt = now().getTime();
  const { seed } = deps;
  // By default the variables the seeds name (the shipped one too, so its providers keep their keys under another seed).
  const defaultEnvAllow = async () => {
    const shipped = seed !== null && config.CATALOG_SEED_FILE === undefined ? seed : await readSeed(DEFAULT_SEED_FILE);
    return [...new Set([...seedEnvNames(shipped), ...(seed ? seedEnvNames(seed) : [])])];
  };
  const envAllow = config.PROVIDER_CREDENTIAL_ENV_ALLOW ?? (await defaultEnvAllow());
  const vault = createCredentialVault({ masterKey: deps.masterKey, envAllow: parseEnvAllowList(envAllow) });
  // A wrong master key, or none over sealed secrets, stops the start here, before anything is served or sealed under it.
  const keyFrom = deps.masterKey === undefined ? undefined : (deps.masterKeyFrom ?? 'SWITCHYARD_MASTER_KEY');
  const checked = await checkMasterKey({ eventStore, vault, from: keyFrom, replaces: config.SWITCHYARD_MASTER_KEY_REPLACES });
  if (checked.outcome === 'replaced') {
    logger.warn(`the master key in ${keyFrom} replaces one named lost (SWITCHYARD_MASTER_KEY_REPLACES): the ${checked.unopenable} were sealed under a lost master key and do not open; set them again`);
  } else if (config.SWITCHYARD_MASTER_KEY_REPLACES !== undefined) {
    const why = checked.outcome === 'opens' ? 'opens the secrets sealed in the event log' : 'has nothing sealed to open';
    logger.warn(`SWITCHYARD_MASTER_KEY_REPLACES is set, but the master key${keyFrom === undefined ? '' : ` in ${keyFrom}`} ${why}: it can be removed`);
  }
  const upstream = createUpstreamClient(createOutboundPolicy({ allow: config.OUTBOUND_ALLOW }), { answerBufferBytes: config.GATEWAY_ANSWER_BUFFER_BYTES });
  const catalog = createCatalog({ eventStore, vault, logger });
  await catalog.start();
  const presets = createPresetView({ eventStore, logger });
  await presets.start();
  const stats = createStatsSnapshot(providerStatsQueries(readStore).all);
  await stats.refresh();
  stats.start(STATS_REFRESH_MS);
  const gateway = createGateway({
    // Tests move the clock: the gateway's (a call's start, its created_at) then moves with the ledger's (its reservation).
    ...(deps.now && { now: () => now().getTime() }),
    catalog,
    vault,
    upstream,
    ledger: deps.ledger,
    generations: observed(createGenerationRecorder({ eventStore, logger, ...(deps.writeRetry && { writeRetry: deps.writeRetry }) }), deps.onGeneration, logger),
    stats,
    presets,
    logger,
    config: gatewayConfigFrom(config),
    waitForReadModels: (position) => runner.waitFor(position),
    ...(deps.contentLog && { contentLog: deps.contentLog }),
    directory: deps.directory,
    claims: createIdempotencyClaims(
      eventStore,
      now,
      abandonedClaims({
        soleProcessSince: isEmbedded(config) ? startedAt : null,
        ttlMs: reservationTtlMs(config),
        now,
        reservationOf: async (accountId, generationId) => (await deps.ledger.reservationOf(accountId, generationId)).outcome,
        recorded: async (generationId) => (await eventStore.readStream(generationStream(generationId), { maxCount: 1 })).length > 0,
      }),
    ),
    ...(eventStore.hurry && { hurry: () => eventStore.hurry!() }),
    ...(deps.replayStore && deps.masterKey && { replays: createIdempotentReplays({ store: deps.replayStore, masterKey: deps.masterKey, now, logger }) }),
  });
  return {
    gateway,
    presets,
    async seed() {
      if (seed === null) return;
      const position = await applySeed({ eventStore, catalog, seed, now: () => new Date() });
      if (position > 0) {
        await Promise.all([catalog.waitFor(position), runner.waitFor(position)]);
        logger.info({ position }, 'catalog seed loaded');
      }
    },
    async stop() {
      await gateway.idle();
      stats.stop();
      upstream.close();
      await catalog.stop();
      await presets.stop();
    },
  };
};

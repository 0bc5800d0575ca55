import { providerStatsQueries } from '../../projections/providerStats.js';
import type { ProjectionRunner } from '../../projections/runner.js';
import type { Config } from '../config.js';
import type { EventStore } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import { createCatalog } from '../modules/catalog/catalog.js';
import { createCredentialVault } from '../modules/catalog/credentials.js';
import { DEFAULT_SEED_FILE, applySeed, readSeed } from '../modules/catalog/seed.js';
import type { Ledger } from '../modules/ledger/ledger.js';
import type { ReadStore } from '../readStore/readStore.js';
import { createGateway, type GatewayConfig } from './gateway.js';
import { createStatsSnapshot } from './routeStats.js';

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
  demoTokenDelayMs: config.DEMO_TOKEN_DELAY_MS,
});

/**
 * The gateway's part of the composition root: the in-memory catalog (caught up before serving), the routing stats
 * snapshot, the gateway itself; `seed()` loads the catalog seed once the root account exists; `stop()` waits for
 * in-flight settlements and generation records.
 */
export const createGatewayServices = async (deps: { config: Config; logger: Logger; eventStore: EventStore; readStore: ReadStore; ledger: Ledger; runner: ProjectionRunner }) => {
  const { config, logger, eventStore, readStore, runner } = deps;
  const vault = createCredentialVault(config.SWITCHYARD_MASTER_KEY);
  const catalog = createCatalog({ eventStore, vault });
  await catalog.start();
  const stats = createStatsSnapshot(providerStatsQueries(readStore).all);
  await stats.refresh();
  stats.start(STATS_REFRESH_MS);
  const gateway = createGateway({
    catalog,
    vault,
    ledger: deps.ledger,
    eventStore,
    stats,
    logger,
    config: gatewayConfigFrom(config),
    waitForReadModels: (position) => runner.waitFor(position),
  });
  return {
    gateway,
    async seed() {
      if (config.CATALOG_SEED_FILE === 'none') return;
      const seed = await readSeed(config.CATALOG_SEED_FILE ?? DEFAULT_SEED_FILE);
      const position = await applySeed({ eventStore, catalog, seed, now: () => new Date() });
      if (position > 0) {
        await Promise.all([catalog.waitFor(position), runner.waitFor(position)]);
        logger.info({ position }, 'catalog seed loaded');
      }
    },
    async stop() {
      await gateway.idle();
      stats.stop();
      await catalog.stop();
    },
  };
};

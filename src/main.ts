import { balanceQueries } from '../projections/balances.js';
import { buildApp, followerStatuses } from './app.js';
import { bootstrapAdmin } from './bootstrap.js';
import { ConfigError, isEmbedded, loadConfig, reservationTtlMs, type Config } from './config.js';
import { createCore, createTopics } from './core.js';
import { graceDeadline, SharedCancellation } from './cancellation.js';
import { DataFileError, DomainError } from './errors.js';
import { trackWrites } from './eventStore/trackWrites.js';
import { createWriteHealth } from './storage/writeHealth.js';
import { loadEventStoreWrapper } from './eventStore/eventStoreWrapper.js';
import { createLogger, type Logger } from './logger.js';
import { createAccountsApi } from './modules/accounts/account.api.js';
import { createApiKeysApi } from './modules/apiKeys/apiKey.api.js';
import { createAuthDirectory } from './modules/auth/authDirectory.js';
import { createCatalogApi } from './modules/catalog/catalog.api.js';
import { catalogRoutes } from './modules/catalog/catalog.rest.js';
import { createGenerationsApi } from './modules/generations/generation.api.js';
import { generationRoutes } from './modules/generations/generation.rest.js';
import { countSealedSecrets, loadOrCreateMasterKey } from './modules/catalog/credentials.js';
import { createLedgerApi } from './modules/ledger/ledger.api.js';
import { createLedgerService } from './modules/ledger/ledgerService.js';
import { apiKeyRoutes } from './modules/apiKeys/apiKey.rest.js';
import { ledgerRoutes } from './modules/ledger/ledger.rest.js';
import { builtInPaymentProcessor, type PaymentProcessor } from './modules/ledger/payments.js';
import type { Modules } from './modules/modules.js';
import { createPresetsApi } from './modules/presets/presets.api.js';
import { presetRoutes } from './modules/presets/presets.rest.js';
import { createExpressionThreads } from './modules/workflows/expressionThreads.js';
import { createRunsApi } from './modules/workflows/run.api.js';
import { createTablesApi } from './modules/tables/tables.api.js';
import { tableRoutes } from './modules/tables/tables.rest.js';
import { createWorkflowEngine } from './modules/workflows/engine.js';
import { createEntryTrigger } from './modules/workflows/triggers/entry.js';
import { createSecretsApi } from './modules/workflows/secrets.js';
import { createEventTriggers } from './modules/workflows/triggers/events.js';
import { createStepRunners } from './modules/workflows/steps/index.js';
import { createScheduler } from './modules/workflows/triggers/schedule.js';
import { createWorkflowsApi } from './modules/workflows/workflow.api.js';
import { workflowRoutes } from './modules/workflows/workflow.rest.js';
import { gatewayRoutes } from './gateway/rest.js';
import { responsesRoutes } from './gateway/skins/openaiResponses.js';
import { anthropicMessagesRoutes } from './gateway/skins/anthropicMessages.rest.js';
import { createMetrics, metricsRoute } from './http/metrics.js';
import { createGatewayServices, loadCatalogSeed } from './services.js';
import { createWriteRetry } from './eventStore/writeRetry.js';
import { openContentStore, openStorage } from './stores.js';
import { createGenerationContent } from './modules/generations/generationContent.js';

/** Composition root: config → stores → read side → app. Returns a handle to stop everything. */
export const startSwitchyard = async (
  config: Config,
  options: {
    log?: (line: string) => void;
    logger?: Logger;
    /** Tests only: see eventStore/eventStoreWrapper.ts. */
    eventStoreWrapper?: string;
    /** Tests only: the modules', the ledger's and the gateway's clock (e.g. to move past the webhook's 24 h Idempotency-Key window). */
    now?: () => Date;
    /** Tests only: the payment processor behind the payment port (default: the built-in one, configured). */
    payments?: PaymentProcessor;
    /** Tests only: how often the ledger sweeps for stale reservations (default: every minute). */
    ledgerSweepMs?: number;
  } = {},
) => {
  const started = performance.now();
  const logger = options.logger ?? createLogger(config.LOG_LEVEL);
  // Read before anything is created or written: a seed file that cannot be used stops the start with nothing done.
  const seed = await loadCatalogSeed(config);
  const storage = await openStorage(config, logger, { ...(options.eventStoreWrapper !== undefined && { eventStoreWrapper: options.eventStoreWrapper }) });
  const { readStore, runner } = storage;
  // Outermost, so that /health reports every append's outcome (a test's injected faults too).
  const eventStore = trackWrites(
    (await loadEventStoreWrapper(options.eventStoreWrapper))(storage.eventStore, { dataDir: config.DATA_DIR, thread: 'request' }),
    createWriteHealth('event store', { logger }),
  );
  const directory = createAuthDirectory({ eventStore, logger, adminApiKey: config.ADMIN_API_KEY });
  await directory.start();
  const now = options.now ?? (() => new Date());
  // Settlements, releases and generation records whose append failed are tried again under one bound, stopped together.
  const writeRetry = createWriteRetry({ logger });
  const ledger = createLedgerService({
    eventStore,
    writeRetry,
    directory,
    logger,
    payments: options.payments ?? builtInPaymentProcessor({ basisPoints: config.PURCHASE_FEE_BASIS_POINTS, minimum: config.PURCHASE_FEE_MINIMUM }),
    plans: config.PLANS,
    reservationTtlMs: reservationTtlMs(config),
    soleProcess: isEmbedded(config),
    creditsCap: config.ACCOUNT_CREDITS_CAP,
    accountsWithReservations: balanceQueries(readStore).accountsWithReservations,
    now,
    ...(options.ledgerSweepMs !== undefined && { sweepIntervalMs: options.ledgerSweepMs }),
  });
  await ledger.start();
  const contentStore = await openContentStore(config);
  const content = createGenerationContent({ store: contentStore, directory, retentionDays: config.CONTENT_RETENTION_DAYS, logger, now });
  await content.start();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Embedded mode keeps its own master key next to the data; production mode (shared stores) must be given one.
  const ownKey = config.SWITCHYARD_MASTER_KEY || config.EVENTSTORE_URL ? null : await loadOrCreateMasterKey(config.DATA_DIR, { sealedSecrets: () => countSealedSecrets(eventStore) });
  if (ownKey?.generated) {
    log(
      [
        '',
        `  SWITCHYARD_MASTER_KEY is not set: generated a master key for provider keys in ${ownKey.file} (mode 0600).`,
        '  Back it up with the data: provider keys stored under it cannot be decrypted without it.',
        '',
      ].join('\n'),
    );
  }
  const masterKey = config.SWITCHYARD_MASTER_KEY ?? ownKey?.key;
  const masterKeyFrom = config.SWITCHYARD_MASTER_KEY ? 'SWITCHYARD_MASTER_KEY' : ownKey?.file;
  const metrics = createMetrics();
  const gatewayServices = await createGatewayServices({ config, seed, masterKey, ...(masterKeyFrom && { masterKeyFrom }), logger, eventStore, readStore, ledger, writeRetry, runner, contentLog: content.log, replayStore: contentStore, directory, onGeneration: metrics.generation, ...(options.now && { now: options.now }) });
  const { gateway } = gatewayServices;
  const topics = createTopics(config.GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT);
  const apiKeys = createApiKeysApi({ eventStore, readStore, directory, runner, pubsub: topics.pubsub, logger, now });
  const expressions = createExpressionThreads({ logger });
  const core = createCore({
    config,
    logger,
    eventStore,
    readStore,
    directory,
    runner,
    ledger,
    gateway,
    topics,
    now,
    modules: (base): Modules => {
      const ledgerApi = createLedgerApi({
        ledger,
        eventStore,
        readStore,
        directory,
        runner,
        balanceDocs: (accountId) => base.pubsub.subscribe('balanceChanged', accountId),
        readYourWrites: (accountId) => gateway.readYourWrites(accountId),
        recordOf: (generationId) => gateway.recordOf(generationId),
      });
      const catalog = createCatalogApi({
        eventStore,
        readStore,
        routing: gateway.catalog,
        vault: gateway.vault,
        outbound: gateway.upstream.policy,
        routeHealth: { speed: (id) => gateway.stats.get(id), breakerState: (id) => gateway.breakers.state(id) },
        byokKeys: (accountId) => directory.account(accountId)?.byokKeys,
        weeklyModelUsage: () => ledgerApi.weeklyModelUsage(),
        maxEndpointsPerAccount: config.ENDPOINT_MAX_PER_ACCOUNT,
        execute: base.execute,
        now: base.now,
      });
      const accounts = createAccountsApi({ eventStore, readStore, directory, runner, logger, apiKeys, plans: config.PLANS, catalog, routing: gateway.catalog, vault: gateway.vault, byokFeeBasisPoints: config.BYOK_FEE_PERCENT, selfSignup: config.SELF_SIGNUP, selfSignupPerHour: config.SELF_SIGNUP_PER_HOUR, cutContent: content.cut, now });
      const generations = createGenerationsApi({
        readStore,
        eventStore,
        gateway,
        ledger,
        content,
        logger,
        waitForReadModels: (position) => runner.waitFor(position),
        feedBufferBytes: config.GATEWAY_ANSWER_BUFFER_BYTES,
      });
      const workflows = createWorkflowsApi({
        eventStore,
        readStore,
        execute: base.execute,
        vault: gateway.vault,
        stepInputs: { catalog, outbound: gateway.upstream.policy, presets: gateway.presets },
        now: base.now,
        limits: { maxPerAccount: config.WORKFLOW_MAX_PER_ACCOUNT, minScheduleSeconds: config.WORKFLOW_MIN_SCHEDULE_SECONDS },
      });
      const tables = createTablesApi({
        eventStore,
        readStore,
        runner,
        logger,
        now: base.now,
        limits: { maxEntryBytes: config.TABLE_MAX_ENTRY_BYTES, maxEntries: config.TABLE_MAX_ENTRIES, maxTablesPerAccount: config.TABLE_MAX_PER_ACCOUNT, maxBytesPerAccount: config.TABLE_MAX_BYTES_PER_ACCOUNT },
        workflowsNaming: workflows.namingTable,
        tableTurn: workflows.tableTurn,
      });
      const secrets = createSecretsApi({ eventStore, vault: gateway.vault, now: base.now });
      const steps = createStepRunners({ catalog, generations, tables, outbound: gateway.upstream.policy, eventStore, now: base.now, secrets, githubApiUrl: config.GITHUB_API_URL });
      return {
        accounts,
        apiKeys,
        ledger: ledgerApi,
        catalog,
        generations,
        workflows,
        runs: createRunsApi({
          eventStore,
          readStore,
          runner,
          execute: base.execute,
          workflows,
          steps,
          expressions,
          logger,
          now: base.now,
          limits: { maxRunsPerAccount: config.WORKFLOW_MAX_RUNS_PER_ACCOUNT },
          rolesOf: (accountId) => directory.account(accountId)?.roles ?? new Set(),
          // A key this process has not heard of yet (its directory a moment behind the log, on a process other than
          // the one that created it) is not refused for good: keys are never forgotten, so unknown means not yet.
          keyRefusal: (keyId) => (directory.key(keyId) === undefined ? null : directory.keyRefusal(keyId)),
        }),
        tables,
        secrets,
        presets: createPresetsApi({ eventStore, view: gatewayServices.presets, catalog, logger, now: base.now }),
      };
    },
  });
  const { generatedKey } = await bootstrapAdmin(core);
  await gatewayServices.seed();
  const { modules } = core;
  metrics.watch({
    headPosition: () => eventStore.headPosition(),
    runner: () => runner.status(),
    followers: () => followerStatuses(core),
    ledgerQueue: () => ledger.queue(),
  });
  // One process at a time (the `workflows` lease) drives runs and runs the triggers; on taking the lease it resumes
  // the runs a stop, a crash or a handover interrupted, then starts the triggers from their stored checkpoints.
  const workflowEngine = createWorkflowEngine({
    readStore,
    runs: modules.runs,
    logger,
    triggers: () => [
      // Entry events since the last checkpoint (those written while down included) start their workflows' runs.
      createEntryTrigger({ eventStore, readStore, runs: modules.runs, workflows: modules.workflows, logger }),
      // After the runs: the runs the triggers start count against the slots resumeAll rebuilt.
      createEventTriggers({ eventStore, readStore, runner, workflows: modules.workflows, runs: modules.runs, logger }),
      // Schedule triggers: one run per due time (catch-up of the times missed while down, as each trigger says).
      createScheduler({ eventStore, runner, runs: modules.runs, logger, now: core.now }),
    ],
  });
  // Aborted when a stop's grace period ends: the gateway's calls still running then are cut (src/app.ts stop).
  const shutdown = new SharedCancellation();
  const app = buildApp(core, [
    metricsRoute(metrics, config.METRICS_TOKEN),
    ...gatewayRoutes({ gateway, directory, logger, config, shutdown }),
    ...responsesRoutes({ gateway, directory, logger, config, shutdown }),
    ...anthropicMessagesRoutes({ gateway, directory, logger, config, shutdown }),
    ...ledgerRoutes(modules.ledger, directory),
    ...apiKeyRoutes({
      apiKeys: modules.apiKeys,
      ledger: modules.ledger,
      directory,
      providerNames: async () => new Map((await modules.catalog.providers()).map((p) => [p._id, p.name])),
      maxBodyBytes: config.MAX_BODY_BYTES,
      now: core.now,
      writes: core.writes,
    }),
    ...catalogRoutes({ catalog: modules.catalog, directory }),
    ...generationRoutes(modules.generations, directory),
    ...tableRoutes({ tables: modules.tables, directory, maxBodyBytes: config.MAX_BODY_BYTES, writes: core.writes }),
    ...presetRoutes({ presets: modules.presets, directory, maxBodyBytes: config.MAX_BODY_BYTES, writes: core.writes }),
    ...workflowRoutes({ workflows: modules.workflows, runs: modules.runs, directory, maxBodyBytes: config.MAX_BODY_BYTES, writes: core.writes }),
  ], { onResponse: metrics.request, workflowEngine: () => workflowEngine.status(), shutdown });
  const port = await app.start(config.PORT, config.HOST);
  await workflowEngine.start();
  if (generatedKey) {
    log(
      [
        '',
        '  A bootstrap admin key was created. It is shown this once and never again:',
        '',
        `    ${generatedKey}`,
        '',
        '  Set ADMIN_API_KEY to use your own admin secret instead.',
        '',
      ].join('\n'),
    );
  }
  logger.info(
    { port, host: config.HOST, eventStore: eventStore.kind, readStore: readStore.kind, readyMs: Math.round(performance.now() - started) },
    `Switchyard listening on http://${config.HOST}:${port} (GraphQL at /graphql)`,
  );
  let stopped: ReturnType<typeof graceDeadline> | null = null;
  return {
    port,
    core,
    routes: app.routes,
    /**
     * Drain the HTTP server and the workflow runs (`graceMs` for the requests and the workflow steps in flight,
     * default 0; see src/app.ts and RunsApi.drain), then stop the rest and close the stores. Called again while
     * draining (a second signal), it ends the grace period sooner.
     */
    stop: async (options: { graceMs?: number } = {}) => {
      if (stopped) {
        stopped.hurry(options.graceMs ?? 0);
        return app.stop(options);
      }
      const grace = (stopped = graceDeadline(options.graceMs ?? 0));
      // Side by side, with the same deadline: a step still running at its end stops unrecorded and runs again at the
      // next start, as after a crash (the triggers stop at once: no run starts meanwhile).
      await Promise.all([app.stop(options), workflowEngine.stop({ grace: grace.signal })]);
      grace.clear();
      // A settlement or record still trying to be written (a full disk) would hold up the gateway's idle() below for ever.
      writeRetry.stop();
      await modules.runs.stop();
      await expressions.close();
      await gatewayServices.stop();
      await content.stop();
      await ledger.stop();
      await directory.stop();
      await storage.close();
    },
  };
};

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const running = await startSwitchyard(config).catch((error: unknown) => {
    // What the configuration cannot do (a HOST not of this machine, a DATA_DIR that is a file, a missing seed file or
    // master.key): one line naming the variable, and exit 78 (EX_CONFIG) as for a bad value.
    if (error instanceof ConfigError) {
      process.stderr.write(`Switchyard could not start: ${error.message}\n`);
      process.exit(78);
    }
    // A data file the machine does not let a store open, create or write (another user's, a read-only file system, a
    // full disk, an I/O error): one line naming the file, what is wrong and what to do. Exit 78 as for the rest of the
    // configuration; a full disk exit 1, as a full disk met later (StorageFullError): it passes once space is freed.
    if (error instanceof DataFileError) {
      process.stderr.write(`Switchyard could not start: ${error.message}\n`);
      process.exit(error.failure === 'disk_full' || error.failure === 'io_error' ? 1 : 78);
    }
    // Expected start-up failures (a DATA_DIR in use, a port in use, a store that cannot be reached) get one clear line.
    if (error instanceof DomainError) {
      process.stderr.write(`Switchyard could not start: ${error.message}\n`);
      process.exit(1);
    }
    // A damaged database file (SQLite's own words), said as what it means for the operator, not as a stack.
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(CORRUPT|NOTADB)/.test(code)) {
      process.stderr.write(
        `Switchyard could not start: a database in DATA_DIR (${config.DATA_DIR}) is damaged (${(error as Error).message}). ` +
          'Restore events.db from a backup; readmodels.db and content.db can be deleted (the read models are rebuilt from the events; logged content is lost).\n',
      );
      process.exit(1);
    }
    throw error;
  });
  // The first SIGTERM or SIGINT drains (SHUTDOWN_GRACE_MS for the requests in flight); a second one cuts them now.
  let signals = 0;
  const shutdown = async (signal: string) => {
    signals += 1;
    if (signals > 1) {
      running.core.logger.warn({ signal }, 'a second signal: ending the shutdown grace period now');
      await running.stop({ graceMs: 0 });
      return;
    }
    running.core.logger.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down');
    await running.stop({ graceMs: config.SHUTDOWN_GRACE_MS });
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

import { loadConfig } from '../src/config.js';
import { openStores } from '../src/stores.js';
import { allProjections } from './index.js';
import { createProjectionRunner } from './runner.js';

/**
 * `npm run projections:rebuild`: empty every read model and rebuild it from the first event, printing progress.
 * Stop the server first: in embedded mode the server keeps the read models in memory.
 */
const config = loadConfig();
const { eventStore, readStore } = await openStores(config).catch((error: unknown) => {
  // A clear line, not a stack trace: the usual cause is a server still running on the same DATA_DIR.
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
for (const projection of allProjections) await readStore.reset(projection.name, [projection.collection]);
const head = await eventStore.headPosition();
const started = performance.now();
let lastPrint = 0;
const runner = createProjectionRunner({
  eventStore,
  readStore,
  projections: allProjections,
  batchSize: 5000,
  onProgress: ({ position, eventsApplied, caughtUp }) => {
    const now = performance.now();
    if (!caughtUp && now - lastPrint < 500) return;
    lastPrint = now;
    const seconds = (now - started) / 1000;
    const percent = head === 0 ? 100 : Math.min(100, (position / head) * 100);
    process.stdout.write(
      `${caughtUp ? 'done' : 'rebuilding'}: ${eventsApplied.toLocaleString('en-US')} events, position ${position}/${head} (${percent.toFixed(1)}%), ` +
        `${Math.round(eventsApplied / Math.max(seconds, 0.001)).toLocaleString('en-US')} events/s\n`,
    );
  },
});
await runner.start();
await runner.stop();
console.log(`Rebuilt ${allProjections.map((p) => p.name).join(', ')} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
await Promise.all([eventStore.close(), readStore.close()]);

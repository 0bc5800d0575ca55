import { cliOptions, openCliStores } from '../src/cli/cliStores.js';
import { allProjections } from './index.js';
import { createProjectionRunner, describeRebuild } from './runner.js';

/**
 * `npm run projections:rebuild`: empty every read model and rebuild it from the first event, printing progress.
 * Stop the server first: in embedded mode the server keeps the read models in memory.
 */
const USAGE = `usage: npm run projections:rebuild
       (built: node dist/projections/rebuild.js)

Empties every read model and rebuilds it from the first event of DATA_DIR's event log (or EVENTSTORE_URL's), with
progress. Stop the server first in embedded mode. It takes no arguments.

  -h, --help  this text`;

cliOptions(USAGE, {});
const { eventStore, readStore } = await openCliStores();
const head = await eventStore.headPosition();
/** Stop with one line, not a stack or a silent retry: the stores closed, exit 1. */
const stop = async (message: string): Promise<never> => {
  console.error(message);
  await Promise.all([eventStore.close(), readStore.close()]).catch(() => undefined);
  process.exit(1);
};
// Every event is read once before anything is reset: an event that cannot be read (UnreadableEventError) would
// otherwise stop the rebuild half-way with every read model already emptied, and the server could not start on them.
try {
  for (let after = 0, batch = await eventStore.readAll({ after, maxCount: 5000 }); batch.length > 0; batch = await eventStore.readAll({ after, maxCount: 5000 })) {
    after = batch[batch.length - 1]!.position;
  }
} catch (error) {
  await stop(`projections:rebuild: nothing was reset: ${error instanceof Error ? error.message : String(error)}`);
}
// The versions found, to say which read models change version (the reset leaves none to read).
const found = new Map<string, number | null>();
for (const projection of allProjections) {
  found.set(projection.name, (await readStore.getCheckpoint(projection.name))?.version ?? null);
  await readStore.reset(projection.name, [projection.collection]);
}
const started = performance.now();
let lastPrint = 0;
const runner = createProjectionRunner({
  eventStore,
  readStore,
  projections: allProjections,
  batchSize: 5000,
  // The log was read whole above, so this is a store failing now: said and stopped, not retried in silence.
  onError: (error) =>
    void stop(`projections:rebuild failed at position ${runner.position} (the read models are partly rebuilt; run it again): ${error instanceof Error ? error.message : String(error)}`),
  // One line per read model once it is done, with the version it had (none: it was missing) and has now (the
  // progress lines say how far it is meanwhile).
  onRebuild: (rebuild) => {
    if (rebuild.phase !== 'done') return;
    const fromVersion = found.get(rebuild.projection) ?? null;
    console.log(describeRebuild({ ...rebuild, fromVersion, reason: fromVersion === null ? 'missing' : 'version' }));
  },
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

import { loadConfig } from '../config.js';
import { runBillingAudit } from '../modules/ledger/audit.js';
import { openStores } from '../stores.js';
import { allProjections } from '../../projections/index.js';
import { createProjectionRunner } from '../../projections/runner.js';

/**
 * `npm run audit [-- --account acc_…]`: bring the read models up to the log, replay the ledger and compare with
 * them. Exit code 1 when anything differs. Run it against a stopped server in embedded mode (the server holds the read models in memory).
 */
const args = process.argv.slice(2);
const accountIndex = args.indexOf('--account');
const accountId = accountIndex >= 0 ? args[accountIndex + 1] : undefined;
if (accountIndex >= 0 && !accountId) {
  console.error('usage: npm run audit [-- --account <accountId>]');
  process.exit(2);
}
const { eventStore, readStore } = await openStores(loadConfig()).catch((error: unknown) => {
  // A clear line, not a stack trace: the usual cause is a server still running on the same DATA_DIR.
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
// A server stopped by kill -9 leaves its read models behind the log: bring them up to it first (as the server does
// at its next start), so the audit compares what the log says with what the read models will hold, not with a lag.
const runner = createProjectionRunner({ eventStore, readStore, projections: allProjections, batchSize: 5000 });
await runner.start();
await runner.stop();
const report = await runBillingAudit({ eventStore, readStore }, { accountId });
console.log(`Replayed ${report.eventsReplayed.toLocaleString('en-US')} ledger events for ${report.accountsChecked} account(s) in ${report.durationMs} ms`);
for (const d of report.differences) {
  console.log(`DIFFERENCE ${d.model} ${d.documentId} ${d.field}: events say ${JSON.stringify(d.expected)}, read model has ${JSON.stringify(d.actual)}`);
}
console.log(report.ok ? 'OK: read models match the ledger' : `FAILED: ${report.differences.length} difference(s)`);
await Promise.all([eventStore.close(), readStore.close()]);
process.exit(report.ok ? 0 : 1);

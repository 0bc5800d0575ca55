import { NotFoundError } from '../errors.js';
import { UnreadableEventError } from '../eventStore/eventStore.js';
import { runBillingAudit } from '../modules/ledger/audit.js';
import { allProjections } from '../../projections/index.js';
import { createProjectionRunner, describeRebuild } from '../../projections/runner.js';
import { cliOptions, openCliStores } from './cliStores.js';

/**
 * `npm run audit [-- --account acc_…]`: bring the read models up to the log, replay the ledger and compare with
 * them. Exit code 1 when anything differs, 2 for a wrong argument or an account that does not exist. Run it against a
 * stopped server in embedded mode (the server holds the read models in memory).
 */
const USAGE = `usage: npm run audit [-- --account <accountId>]
       (built: node dist/src/cli/audit.js [--account <accountId>])

Replays the ledger in DATA_DIR's event log (or EVENTSTORE_URL's) from the first event and compares the balances and
usage it gives with the read models, and each generation's cost with its charge. Charges whose generation has no
record (the process stopped between the two, or the record could not be written, e.g. on a full disk, before it
stopped) are listed as UNRECORDED: the money is right, so they are no failure.
Stop the server first in embedded mode.

  --account <accountId>  audit this account only (it must exist)
  -h, --help             this text

Exit code: 0 when the read models match the ledger, 1 when anything differs, 2 for a wrong argument or an unknown account.`;

const { account: accountId } = cliOptions(USAGE, { account: { type: 'string' } });
if (accountId !== undefined && accountId.trim() === '') {
  console.error(`--account needs an account id\n\n${USAGE}`);
  process.exit(2);
}
const { eventStore, readStore } = await openCliStores();
// A server stopped by kill -9 leaves its read models behind the log: bring them up to it first (as the server does
// at its next start), so the audit compares what the log says with what the read models will hold, not with a lag.
/**
 * An event the log holds but cannot read (UnreadableEventError) is a finding, reported as one with exit 1; so is a
 * store failing while the read models catch up (the runner would otherwise retry in silence).
 */
const fail = async (error: unknown): Promise<never> => {
  console.log(error instanceof UnreadableEventError ? `UNREADABLE EVENT ${error.message}` : `ERROR ${error instanceof Error ? error.message : String(error)}`);
  console.log('FAILED: the audit could not read the whole log');
  await Promise.all([eventStore.close(), readStore.close()]).catch(() => undefined);
  process.exit(1);
};
const runner = createProjectionRunner({
  eventStore,
  readStore,
  projections: allProjections,
  batchSize: 5000,
  onError: (error) => void fail(error),
  // Read models of another version (written by an older or newer Switchyard) are rebuilt to this one's: said.
  onRebuild: (rebuild) => console.log(describeRebuild(rebuild)),
});
await runner.start();
await runner.stop();
const report = await runBillingAudit({ eventStore, readStore }, { accountId }).catch(async (error: unknown) => {
  if (error instanceof UnreadableEventError) return fail(error);
  if (!(error instanceof NotFoundError)) throw error;
  console.error(`${error.message}: nothing to audit`);
  await Promise.all([eventStore.close(), readStore.close()]);
  process.exit(2);
});
console.log(`Replayed ${report.eventsReplayed.toLocaleString('en-US')} ledger events for ${report.accountsChecked} account(s) in ${report.durationMs} ms`);
for (const d of report.differences) {
  console.log(`DIFFERENCE ${d.model} ${d.documentId} ${d.field}: events say ${JSON.stringify(d.expected)}, read model has ${JSON.stringify(d.actual)}`);
}
console.log(report.ok ? 'OK: read models match the ledger' : `FAILED: ${report.differences.length} difference(s)`);
// Not a difference (the money replays): calls charged whose record a stopped process never wrote (or could not).
if (report.unrecordedCharges.length > 0) {
  console.log(`${report.unrecordedCharges.length} charge(s) without a generation record (the process stopped before writing it: between the settlement and the record, or while a failed write of it, e.g. on a full disk, was retried):`);
  for (const c of report.unrecordedCharges) console.log(`UNRECORDED ${c.generationId} account ${c.accountId} charged ${c.charged}`);
}
await Promise.all([eventStore.close(), readStore.close()]);
process.exit(report.ok ? 0 : 1);

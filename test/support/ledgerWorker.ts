import { RateLimitedError } from '../../src/errors.js';
import { DEADLINE_MS } from './eventually.js';
import { openLedger } from './ledgerFixture.js';

/**
 * A second app process for the cross-process race: waits for "go" on stdin, fires N concurrent reservations at one
 * account, and prints how many were granted.
 */
const [dir, accountId, countText, amountText, prefix] = process.argv.slice(2);
const { ledger, directory, close } = await openLedger(dir!);
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
// The account was opened by the parent; make sure this process's directory has seen it.
for (const deadline = Date.now() + DEADLINE_MS; !directory.account(accountId!) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
const results = await Promise.allSettled(
  Array.from({ length: Number(countText) }, (_, i) =>
    ledger.reserve({ accountId: accountId!, keyId: null, generationId: `${prefix}-${i}`, amount: Number(amountText), freeModel: false }),
  ),
);
const unexpected = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code !== 'INSUFFICIENT_CREDITS' && !(r.reason instanceof RateLimitedError));
for (const r of unexpected) process.stderr.write(`${String((r as PromiseRejectedResult).reason)}\n`);
process.stdout.write(`${JSON.stringify({ granted: results.filter((r) => r.status === 'fulfilled').length, unexpected: unexpected.length })}\n`);
await close();

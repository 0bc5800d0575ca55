/**
 * kill -9 under load (shared/reference/reliability.md §6, T-CRASH-1/2/3), embedded mode: Switchyard runs as its own
 * process (the gateway and the projection runner in one), a load of metered calls is killed twice at an arbitrary
 * moment and restarted on the same DATA_DIR, then a third run ends cleanly. Afterwards, with the server stopped:
 * - `npm run audit` finds every read model equal to the fold of the ledger and generation events;
 * - read models rebuilt from position 0 (`projections:rebuild`) are identical, document for document, to those the
 *   crashed-and-restarted runner kept (a commit torn by a kill would show here as a document applied twice or lost);
 * - every charge belongs to a call whose answer the client saw begin (its X-Generation-Id), no call is charged twice,
 *   and every answer the client received whole is charged, except those in flight at a kill, at most one per
 *   concurrent client: the documented policy (README, Credits and billing: the settlement is appended just after
 *   the answer, so a crash in that moment leaves the call answered but uncharged, its reservation expired at start).
 * The production stores (EventStoreDB, MongoDB) cannot be killed here: they are not available on this machine.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { allProjections, diskCollections } from '../../projections/index.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { ledgerStream } from '../../src/modules/ledger/ledger.events.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import { eventually, within } from '../support/eventually.js';
import { spawnedSwitchyards } from '../support/spawnedServer.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const USD = 1_000_000_000;
const CLIENTS = 8;

const switchyards = spawnedSwitchyards();
const spawnSwitchyard = (dir: string) => switchyards.start(dir, { env: { DEMO_TOKEN_DELAY_MS: '3' } });

interface Call {
  readonly generationId: string;
  /** The whole answer reached the client (a streamed one through `[DONE]`). */
  complete: boolean;
}

/**
 * CLIENTS clients calling the metered demo model in turn (every other call streamed), until `stop()` or until the
 * server is gone. Each call the server answered is logged with its generation id.
 */
const load = (url: string, key: string, calls: Call[]) => {
  let stopped = false;
  const client = async (n: number) => {
    for (let i = 0; !stopped; i++) {
      const stream = (n + i) % 2 === 0;
      try {
        const res = await fetch(`${url}/api/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ model: 'switchyard/demo-paid', messages: [{ role: 'user', content: `Call ${n}-${i}: count to twenty` }], max_tokens: 30, stream }),
        });
        const generationId = res.headers.get('x-generation-id');
        if (res.status !== 200 || generationId === null) throw new Error(`unexpected ${res.status}: ${await res.text()}`);
        const call: Call = { generationId, complete: false };
        calls.push(call);
        const text = await res.text();
        call.complete = stream ? text.trimEnd().endsWith('data: [DONE]') : (JSON.parse(text) as { usage?: unknown }).usage !== undefined;
      } catch (error) {
        // The server was killed: this client is done.
        if (error instanceof TypeError || (error as { code?: string }).code === 'ECONNRESET') return;
        throw error;
      }
    }
  };
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
  return {
    clients,
    stop: async () => {
      stopped = true;
      await clients;
    },
  };
};

/** Every read model's documents, in _id order: what a rebuild must reproduce exactly. */
const snapshot = async (dir: string) => {
  const readStore = await openEmbeddedReadStore({ dir, diskCollections });
  try {
    const out: Record<string, unknown[]> = {};
    for (const { collection } of allProjections) out[collection] = await readStore.collection(collection).find({}, { sort: { _id: 1 } });
    return out;
  } finally {
    await readStore.close();
  }
};

describe('T-CRASH-1/2/3: kill -9 under load, restart, rebuild', () => {
  it('read models equal the fold of the events and a rebuild from zero; every charge is a call the client saw, none twice; answered calls go uncharged only when in flight at a kill', { timeout: 180_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-crash-load-');
    let server = await spawnSwitchyard(dir);
    const gql = async (query: string, variables: Record<string, unknown> = {}) => (await server.graphql(query, variables)).body.data;
    const opened = await gql(`mutation { openAccount(name: "Crash load") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
    const accountId = opened.openAccount.account.id as string;
    const key = opened.openAccount.initialKey.secret as string;
    await gql(`mutation ($id: ID!) { grantCredits(accountId: $id, amount: ${100 * USD}, reason: "load") { __typename } }`, { id: accountId });

    const calls: Call[] = [];
    /** Calls answered whole before each kill could have been in flight then: at most one per client per kill. */
    let kills = 0;
    for (const answersBeforeKill of [40, 90]) {
      const { clients } = load(server.url, key, calls);
      await eventually(`${answersBeforeKill} answers`, () => calls.filter((c) => c.complete).length >= answersBeforeKill, { timeoutMs: 60_000 });
      server.child.kill('SIGKILL');
      kills += 1;
      await server.exited;
      await within('the clients to see the server gone', clients, 30_000);
      server = await spawnSwitchyard(dir);
    }
    // A last run that ends cleanly: every one of its answers is charged.
    const lastRun: Call[] = [];
    const last = load(server.url, key, lastRun);
    await eventually('30 answers after the last restart', () => lastRun.filter((c) => c.complete).length >= 30, { timeoutMs: 60_000 });
    await last.stop();
    calls.push(...lastRun);
    // Nothing is still reserved: the crashed runs' reservations were expired at each start.
    const balance = (await gql(`query ($id: ID!) { balance(accountId: $id) { reserved openReservations } }`, { id: accountId })).balance;
    expect(balance).toEqual({ reserved: 0, openReservations: 0 });
    server.child.kill('SIGTERM');
    await server.exited;

    // T-CRASH-1: the read models are the fold of the events (the audit replays every ledger and generation event).
    // A failed audit (exit 1) throws with its report, so that the difference it found is in the test's failure.
    const audit = await run(process.execPath, ['--import', 'tsx', 'src/cli/audit.ts'], { cwd: ROOT, env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'silent' } }).catch(
      (error: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`npm run audit failed: ${error.message}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
      },
    );
    expect(audit.stdout).toContain('OK: read models match the ledger');
    // T-CRASH-1/3: and what the runner kept through two kills is what a rebuild from position 0 makes.
    const kept = await snapshot(dir);
    expect(kept.generations!.length).toBeGreaterThan(100);
    await run(process.execPath, ['--import', 'tsx', 'projections/rebuild.ts'], { cwd: ROOT, env: { ...process.env, DATA_DIR: dir, LOG_LEVEL: 'silent' } });
    expect(await snapshot(dir)).toEqual(kept);

    // T-CRASH-2: charges against what the client saw.
    const events = openSqliteEventStore({ dir, synchronous: 'normal' });
    const ledger = await events.readStream(ledgerStream(accountId));
    await events.close();
    const settled = ledger.filter((e) => e.type === 'ReservationSettled').map((e) => (e.data as { generationId: string }).generationId);
    expect(new Set(settled).size).toBe(settled.length);
    const seen = new Set(calls.map((c) => c.generationId));
    expect(settled.filter((id) => !seen.has(id))).toEqual([]);
    const charged = new Set(settled);
    const answered = calls.filter((c) => c.complete);
    const uncharged = answered.filter((c) => !charged.has(c.generationId));
    expect(uncharged.length).toBeLessThanOrEqual(kills * CLIENTS);
    expect(lastRun.filter((c) => c.complete && !charged.has(c.generationId))).toEqual([]);
    // A call that was expired uncharged is recorded as such in the ledger, never left open.
    const expired = new Set(ledger.filter((e) => e.type === 'ReservationExpired').map((e) => (e.data as { generationId: string }).generationId));
    for (const call of uncharged) expect(expired.has(call.generationId), call.generationId).toBe(true);
  });
});

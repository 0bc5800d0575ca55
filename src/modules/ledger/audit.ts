import { BALANCES, applyToBalance, emptyBalance, type BalanceDoc } from '../../../projections/balances.js';
import { USAGE_DAILY, applyToUsage, usageKey, type UsageDoc } from '../../../projections/usageDaily.js';
import { NotFoundError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { accountStream } from '../accounts/account.events.js';
import type { ReadStore } from '../../readStore/readStore.js';
import { GENERATION_CATEGORY, generationStream, type GenerationEvent } from '../generations/generation.events.js';
import { LEDGER_CATEGORY, ledgerStream, type LedgerEvent } from './ledger.events.js';

export interface AuditDifference {
  readonly accountId: string;
  /**
   * `balances` or `usageDaily` (a read model differs from the replay), `invariant` (the replay itself found a negative
   * available balance), or `generations` (a generation's recorded cost differs from what the ledger settled for it).
   */
  readonly model: string;
  readonly documentId: string;
  readonly field: string;
  /** What replaying the events gives. */
  readonly expected: unknown;
  /** What the read model holds. */
  readonly actual: unknown;
}

/**
 * A call the ledger charged whose generation has no record at all (appended after the settlement, so the log never
 * holds a record of a charge it lacks): the process stopped between the two, or the record's append failed (a full
 * disk, a store unavailable: retried by writeRetry until written, so listed until then, and for good if the process
 * stops first; any other failure loses it at once). The money is right (the balance replays it); the generation is
 * shown from the charge alone (status `unrecorded`).
 */
export interface UnrecordedCharge {
  readonly accountId: string;
  readonly generationId: string;
  /** What the account paid for it, nano-dollars. */
  readonly charged: number;
}

export interface AuditReport {
  /** No difference: the read models and the records reproduce the ledger (charges without a record are listed apart). */
  readonly ok: boolean;
  readonly accountsChecked: number;
  readonly eventsReplayed: number;
  readonly differences: readonly AuditDifference[];
  /** Settlements whose generation has no record, in the ledger's order. */
  readonly unrecordedCharges: readonly UnrecordedCharge[];
  readonly durationMs: number;
}

const BALANCE_FIELDS = ['purchased', 'granted', 'refunded', 'settled', 'reserved', 'available', 'lifetimePurchased', 'fees', 'uncollected', 'openReservations'] as const;
const USAGE_FIELDS = ['requests', 'promptTokens', 'completionTokens', 'reasoningTokens', 'cachedTokens', 'cost', 'byokUsage'] as const;
const PAGE = 10_000;

/**
 * The billing audit: replay every ledger event from the first, recompute each balance and usage row with the same
 * pure functions the projections use, check the no-overspend invariant after every event, and compare the results
 * with the read models field by field. Then replay the generations: each one's recorded cost must be what the ledger
 * settled for it, and each settlement must have a record (those without are listed as unrecorded charges, apart from
 * the differences). A healthy system reports no differences. An `accountId` that names no account is NOT_FOUND.
 */
export const runBillingAudit = async (
  deps: {
    eventStore: EventStore;
    readStore: ReadStore;
    /**
     * The position the read models have applied, on a live server (absent offline, where they stand still). The
     * read models are compared at their own positions, so an audit during traffic reports only real differences.
     */
    appliedPosition?: () => number;
    /**
     * On a live server: resolves once the record of a call this process is still recording is appended (the gateway's
     * `recordOf`), so a charge whose record is on its way is not reported as having none.
     */
    recordOf?: (generationId: string) => Promise<unknown>;
  },
  options: { accountId?: string } = {},
): Promise<AuditReport> => {
  const started = performance.now();
  // An account that never existed has nothing to match: "OK" would be a false all-clear (a mistyped id).
  if (options.accountId && (await deps.eventStore.readStream(accountStream(options.accountId), { maxCount: 1 })).length === 0) {
    throw new NotFoundError('Account', options.accountId);
  }
  // Each stored document is the replay up to max(applied, its own `_pos`): every event of its account up to the
  // position applied before it was read is in it, and one applied since is its `_pos`, with all before it. Read first,
  // then replay only that far for each document (events after it are compared on the next audit).
  const applied = deps.appliedPosition?.() ?? Infinity;
  const storedBalances = new Map(
    (await deps.readStore.collection<BalanceDoc>(BALANCES).find(options.accountId ? { _id: options.accountId } : {})).map((doc) => [doc._id, doc]),
  );
  const storedUsage = new Map(
    (await deps.readStore.collection<UsageDoc>(USAGE_DAILY).find(options.accountId ? { accountId: options.accountId } : {})).map((doc) => [doc._id, doc]),
  );
  const upTo = (doc: object | undefined): number => {
    const pos = doc === undefined ? undefined : (doc as { _pos?: unknown })._pos;
    return Math.max(applied, typeof pos === 'number' ? pos : 0);
  };
  const balances = new Map<string, BalanceDoc>();
  const usage = new Map<string, UsageDoc>();
  const differences: AuditDifference[] = [];
  /** generationId → the actual cost the ledger settled, with what the account paid and whose account it was. */
  const settledCost = new Map<string, { readonly actual: number; readonly charged: number; readonly accountId: string }>();
  /** Generations with a record (any event in their stream). */
  const recorded = new Set<string>();
  let eventsReplayed = 0;

  const apply = (event: RecordedEvent<LedgerEvent>) => {
    const { accountId } = event.data;
    // Each read model is read at its own moment, so each document gets its own cut: a balance and a usage row may
    // stand at different positions.
    if (event.type === 'ReservationSettled') {
      settledCost.set(event.data.generationId, { actual: event.data.actual, charged: event.data.charged, accountId });
      const key = usageKey(event.data);
      if (event.position <= upTo(storedUsage.get(key))) usage.set(key, applyToUsage(usage.get(key) ?? null, event.data));
    }
    eventsReplayed++;
    if (event.position > upTo(storedBalances.get(accountId))) return;
    const next = applyToBalance(balances.get(accountId) ?? emptyBalance(accountId), event);
    balances.set(accountId, next);
    if (next.available < 0) {
      differences.push({ accountId, model: 'invariant', documentId: event.id, field: 'available', expected: '>= 0', actual: next.available });
    }
  };

  const replayCategory = async (category: string, each: (event: RecordedEvent) => void) => {
    for (let after = 0; ; ) {
      const page = await deps.eventStore.readAll({ after, maxCount: PAGE, filter: { categories: [category] } });
      for (const event of page) each(event);
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.position;
    }
  };

  if (options.accountId) {
    for (const event of await deps.eventStore.readStream(ledgerStream(options.accountId))) apply(event as RecordedEvent<LedgerEvent>);
  } else {
    await replayCategory(LEDGER_CATEGORY, (event) => apply(event as RecordedEvent<LedgerEvent>));
  }

  await replayCategory(GENERATION_CATEGORY, (recordedEvent) => {
    const event = recordedEvent as RecordedEvent<GenerationEvent>;
    recorded.add(event.data.generationId);
    if (event.type !== 'GenerationCompleted' && event.type !== 'GenerationFailed' && event.type !== 'GenerationCancelled') return;
    const { generationId, accountId, cost } = event.data;
    if (options.accountId && accountId !== options.accountId) return;
    eventsReplayed++;
    const settled = settledCost.get(generationId)?.actual;
    // Nothing owed and nothing settled (a failure before the first token is released) is consistent too.
    if (settled === cost || (settled === undefined && cost === 0)) return;
    differences.push({ accountId, model: 'generations', documentId: generationId, field: 'cost', expected: settled ?? null, actual: cost });
  });

  // The other direction: a charge with no record. On a live server a call's record follows its settlement by a few
  // milliseconds, so each one found is looked at again (its own stream, after the gateway's append if in flight).
  const unrecordedCharges: UnrecordedCharge[] = [];
  for (const [generationId, { charged, accountId }] of settledCost) {
    if (recorded.has(generationId)) continue;
    await deps.recordOf?.(generationId);
    if ((await deps.eventStore.readStream(generationStream(generationId), { maxCount: 1 })).length > 0) continue;
    unrecordedCharges.push({ accountId, generationId, charged });
  }

  const accountIds = options.accountId ? [options.accountId] : [...balances.keys()];
  for (const accountId of new Set([...accountIds, ...storedBalances.keys()])) {
    const expected = balances.get(accountId) ?? emptyBalance(accountId);
    const actual = storedBalances.get(accountId);
    for (const field of BALANCE_FIELDS) {
      const stored = actual ? actual[field] : 0;
      if (stored !== expected[field]) differences.push({ accountId, model: BALANCES, documentId: accountId, field, expected: expected[field], actual: stored ?? null });
    }
  }

  for (const id of new Set([...usage.keys(), ...storedUsage.keys()])) {
    const expected = usage.get(id);
    const actual = storedUsage.get(id);
    for (const field of USAGE_FIELDS) {
      const want = expected?.[field] ?? 0;
      const have = actual?.[field] ?? 0;
      if (want !== have) differences.push({ accountId: (expected ?? actual)!.accountId, model: USAGE_DAILY, documentId: id, field, expected: want, actual: have });
    }
  }

  return {
    ok: differences.length === 0,
    accountsChecked: new Set([...accountIds, ...storedBalances.keys()]).size,
    eventsReplayed,
    differences,
    unrecordedCharges,
    durationMs: Math.round(performance.now() - started),
  };
};

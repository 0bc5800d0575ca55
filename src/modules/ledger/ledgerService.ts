import { ConflictError, NotFoundError, WrongExpectedVersionError } from '../../errors.js';
import type { AppendResult, EventMetadata, EventStore, NewEvent, RecordedEvent } from '../../eventStore/eventStore.js';
import type { Logger } from '../../logger.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { Balance, KeyWindowUsage, Ledger, UsageRecord } from './ledger.js';
import { available, DEFAULT_CREDITS_CAP, ledgerDecider, type Finalized, type LedgerCommand, type LedgerState } from './ledger.decider.js';
import { ledgerStream, type LedgerEvent, type ReservationSettled } from './ledger.events.js';
import type { PaymentProcessor } from './payments.js';
import { DEFAULT_PLANS, freeTierLimits, type Plans } from './plans.js';
import { usageIn } from './windows.js';

export interface Actor {
  readonly actor: string;
  readonly correlationId: string;
}

export interface LedgerService extends Ledger {
  purchase(input: { accountId: string; amount: number; paymentMethod: string; idempotencyKey: string } & Actor): Promise<{ paymentRef: string; amount: number; fee: number; balance: Balance }>;
  grant(input: { accountId: string; amount: number; reason: string } & Actor): Promise<Balance>;
  refund(input: { accountId: string; amount: number; reason: string } & Actor): Promise<Balance>;
  /** The fee a purchase of `amount` costs on top. */
  fee(amount: number): number;
  /**
   * What became of the reservation under a generation id: `open`, how it ended, or `none` (never made, or ended so
   * long ago that the account no longer keeps its outcome). A resumed workflow step asks before calling again.
   */
  reservationOf(accountId: string, generationId: string): Promise<'none' | 'open' | Finalized['outcome']>;
  /** Expire reservations older than the TTL; returns how many. */
  sweep(): Promise<number>;
  /**
   * Expire what a dead process left (every open reservation when this process is the store's only user, else those
   * older than the TTL), then sweep periodically.
   */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Global position of the newest ledger append made by this process (for read-your-writes waits). */
  readonly lastPosition: number;
  /** Accounts whose state this process holds in memory (bounded: idle writers are evicted). */
  readonly writerCount: number;
}

type Outcome = { events: readonly LedgerEvent[]; state: LedgerState };

interface Op {
  /** Builds the command from the current state (e.g. free-tier limits depend on lifetime purchases), or null to only read. */
  readonly build: (state: LedgerState) => LedgerCommand | null;
  readonly metadata: EventMetadata;
  /** Called once, when the command is first decided without error: before its events are appended. */
  onDecided?: (() => void) | undefined;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

type Result = { events: LedgerEvent[] } | { error: unknown };

/** Operations decided together, appended together. */
interface Batch {
  readonly ops: Op[];
  readonly results: Result[];
  readonly events: NewEvent[];
}

interface Writer {
  readonly accountId: string;
  readonly stream: string;
  /** The committed state plus every decided batch's events; null until loaded, and after a failed append. */
  state: LedgerState | null;
  /** The stream's revision once the batch being appended (if any) is written. */
  revision: number;
  /** Waiting for the state to be (re)loaded. */
  undecided: Op[];
  /** Decided, in order; the first is being appended while `appending`. */
  batches: Batch[];
  appending: boolean;
  loading: boolean;
  /** Appends refused in a row for another writer's (another process's) append. */
  conflicts: number;
  /** When an operation was last submitted (ms, the service's clock): idle writers are evicted. */
  lastUsedMs: number;
}

const MAX_CONFLICT_RETRIES = 8;
/** The default request timeout (10 minutes) plus a minute for its settlement. */
export const DEFAULT_RESERVATION_TTL_MS = 11 * 60_000;
/**
 * Writers kept in memory at most (beyond those busy or holding open reservations). A writer holds an account's whole
 * folded state (up to 100k settled outcomes), so without a bound memory grows with every account ever used.
 */
export const DEFAULT_MAX_WRITERS = 10_000;
/** A writer unused this long is dropped at the next sweep; the next operation reloads the account's stream. */
export const DEFAULT_WRITER_IDLE_MS = 10 * 60_000;

export const snapshotBalance = (accountId: string, s: LedgerState): Balance => ({
  accountId,
  purchased: s.purchased,
  granted: s.granted,
  refunded: s.refunded,
  settled: s.settled,
  reserved: s.reserved,
  available: available(s),
  lifetimePurchased: s.purchased,
  fees: s.fees,
  uncollected: s.uncollected,
  openReservations: s.reservations.size,
});

/**
 * One writer per account in this process. An operation is decided as soon as it arrives, against the account's
 * state including every operation decided before it, so a reservation is admitted without waiting for any commit.
 * The events are appended in order, one append in flight per account: everything decided while an append is in
 * flight is appended together next, with the expected revision. A concurrent writer elsewhere makes an append fail;
 * the writer then reloads the stream and decides every operation not yet written again, in order, so no decision is
 * ever written on stale state (an operation admitted on the stale view may then be refused: `onDecided` came first).
 */
export const createLedgerService = (deps: {
  eventStore: EventStore;
  directory: AuthDirectory;
  payments: PaymentProcessor;
  logger: Logger;
  plans?: Plans;
  now?: () => Date;
  /** A reservation older than this belongs to a generation presumed dead (the request timeout plus a margin). */
  reservationTtlMs?: number;
  sweepIntervalMs?: number;
  /**
   * This process is the only one using the event store (embedded mode holds a process lock on DATA_DIR): every
   * reservation open at start was left by a process that is gone, and is expired at once instead of after the TTL.
   */
  soleProcess?: boolean;
  /** The most credits (lifetime purchased + granted) one account may receive, in nano-dollars. */
  creditsCap?: number;
  /** Accounts that may hold reservations (from the balances read model), for the start-up sweep. */
  accountsWithReservations?: () => Promise<string[]>;
  /** Idle writers kept at most (see DEFAULT_MAX_WRITERS). */
  maxWriters?: number;
  /** Writers unused this long are evicted by the sweep. */
  writerIdleMs?: number;
}): LedgerService => {
  const { eventStore, directory, logger } = deps;
  const plans = deps.plans ?? DEFAULT_PLANS;
  const now = deps.now ?? (() => new Date());
  const ttl = deps.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  const creditsCap = deps.creditsCap ?? DEFAULT_CREDITS_CAP;
  const maxWriters = deps.maxWriters ?? DEFAULT_MAX_WRITERS;
  const writerIdleMs = deps.writerIdleMs ?? DEFAULT_WRITER_IDLE_MS;
  /** In order of last use, least recent first (a Map iterates in insertion order; each use re-inserts). */
  const writers = new Map<string, Writer>();
  let lastPosition = 0;
  let timer: NodeJS.Timeout | null = null;

  /**
   * A writer may be dropped when nothing is queued, loading or being appended, and it holds no open reservation: the
   * sweep finds reservations to expire among the writers in memory, and a reservation is settled soon anyway.
   * Dropping loses nothing: the stream is the state, and the next operation reloads it.
   */
  const evictable = (writer: Writer) =>
    !writer.loading && !writer.appending && writer.undecided.length === 0 && writer.batches.length === 0 && (writer.state === null || writer.state.reservations.size === 0);

  /**
   * Drop least recently used idle writers while there are more than `maxWriters` (less `room` for writers about to be
   * added), and any unused since `usedBeforeMs`.
   */
  const evict = (usedBeforeMs: number, room = 0) => {
    let excess = writers.size + room - maxWriters;
    for (const writer of writers.values()) {
      const stale = writer.lastUsedMs < usedBeforeMs;
      if (excess <= 0 && !stale) break;
      if (!evictable(writer)) continue;
      writers.delete(writer.accountId);
      excess--;
    }
  };

  const writerFor = (accountId: string, atMs: number): Writer => {
    let writer = writers.get(accountId);
    if (writer) {
      // Most recently used goes last.
      writers.delete(accountId);
    } else {
      writer = { accountId, stream: ledgerStream(accountId), state: null, revision: -1, undecided: [], batches: [], appending: false, loading: false, conflicts: 0, lastUsedMs: atMs };
      // Before it joins the map: the new writer itself must never be the one dropped.
      if (writers.size >= maxWriters) evict(-Infinity, 1);
    }
    writer.lastUsedMs = atMs;
    writers.set(accountId, writer);
    return writer;
  };

  const load = async (writer: Writer) => {
    writer.loading = true;
    try {
      const history = (await eventStore.readStream(writer.stream)) as RecordedEvent<LedgerEvent>[];
      const state = ledgerDecider.initialState();
      for (const event of history) ledgerDecider.evolve(state, event);
      writer.state = state;
      writer.revision = history.length ? history[history.length - 1]!.revision : -1;
    } catch (error) {
      for (const op of writer.undecided.splice(0)) op.reject(error);
      logger.error({ err: error, accountId: writer.accountId }, 'ledger writer could not load the account');
    } finally {
      writer.loading = false;
    }
    pump(writer);
  };

  /** Decide the waiting operations into the batch that is not being appended yet. */
  const decide = (writer: Writer, state: LedgerState) => {
    // The last batch takes more operations unless it is the one being appended.
    const open = writer.batches.length > (writer.appending ? 1 : 0) ? writer.batches[writer.batches.length - 1]! : undefined;
    const batch: Batch = open ?? { ops: [], results: [], events: [] };
    if (!open) writer.batches.push(batch);
    const admitted: Op[] = [];
    for (const op of writer.undecided.splice(0)) {
      let result: Result;
      try {
        const command = op.build(state);
        const events = command ? (ledgerDecider.decide(command, state) as LedgerEvent[]) : [];
        for (const event of events) {
          ledgerDecider.evolve(state, event);
          // No caller id: the store's time-ordered ids keep its id index append-only (random ids cost ~2.5x);
          // the decider, not the store, makes repeats harmless here.
          batch.events.push({ type: event.type, data: event.data, metadata: op.metadata });
        }
        result = { events };
      } catch (error) {
        result = { error };
      }
      batch.ops.push(op);
      batch.results.push(result);
      if (op.onDecided && !('error' in result)) admitted.push(op);
    }
    // Once the batch is whole: a callback that submits again then joins it, consistently.
    for (const op of admitted) {
      const onDecided = op.onDecided!;
      op.onDecided = undefined;
      onDecided();
    }
  };

  /** Answer a batch's callers: its operations' own outcomes, once its events (if any) are written. */
  const answer = (batch: Batch, state: LedgerState) =>
    batch.ops.forEach((op, i) => {
      const result = batch.results[i]!;
      if ('error' in result) op.reject(result.error);
      else op.resolve({ events: result.events, state });
    });

  const appendEvents = (writer: Writer, events: NewEvent[]): Promise<AppendResult> => {
    try {
      // At commit: the next batch is decided on this one and appended after it without waiting for the disk; each
      // batch's callers wait for its own durability (see pump).
      return eventStore.append(writer.stream, events, { expectedRevision: writer.revision === -1 ? 'no_stream' : writer.revision, durability: 'commit' });
    } catch (error) {
      // A closed store refuses at once: fail like any append, so the writer does not wait forever.
      return Promise.reject(error);
    }
  };

  /** Decide what waits, then append the first batch unless one is in flight. Batches without events settle in turn. */
  const pump = (writer: Writer): void => {
    if (!writer.state) {
      if (!writer.loading && writer.undecided.length > 0) void load(writer);
      return;
    }
    const state = writer.state;
    if (writer.undecided.length > 0) decide(writer, state);
    while (!writer.appending && writer.batches.length > 0) {
      const batch = writer.batches[0]!;
      if (batch.events.length === 0) {
        writer.batches.shift();
        answer(batch, state);
        continue;
      }
      writer.appending = true;
      appendEvents(writer, batch.events).then(
        (appended) => {
          writer.appending = false;
          writer.conflicts = 0;
          writer.revision = appended.nextExpectedRevision;
          writer.batches.shift();
          // Committed: the next batch goes now. The callers hear only once the batch is durable, so no reservation
          // admits a call and no charge is reported that a power loss could take back. Batches become durable in
          // commit order (an fsync covers every commit before it), so callers still hear in order. A failed fsync
          // fails them; the store then refuses every later append, so the writer reloads before deciding again.
          appended.durable.then(
            () => {
              lastPosition = Math.max(lastPosition, appended.position);
              answer(batch, state);
            },
            (error: unknown) => {
              for (const op of batch.ops) op.reject(error);
            },
          );
          pump(writer);
        },
        (error: unknown) => {
          writer.appending = false;
          // The state holds events that were not written: drop it, and decide everything not yet written again on
          // the reloaded stream, in order. After too many conflicts in a row, or any other error, the batch fails.
          writer.state = null;
          const retry = error instanceof WrongExpectedVersionError && ++writer.conflicts <= MAX_CONFLICT_RETRIES;
          const [failed, ...later] = writer.batches.splice(0);
          if (!retry) {
            writer.conflicts = 0;
            for (const op of failed!.ops) op.reject(error);
          }
          writer.undecided = [...(retry ? failed!.ops : []), ...later.flatMap((b) => b.ops), ...writer.undecided];
          pump(writer);
        },
      );
    }
  };

  const submit = (accountId: string, build: Op['build'], actor: Actor = { actor: 'system:ledger', correlationId: '' }, onDecided?: () => void): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      const at = now();
      const writer = writerFor(accountId, at.getTime());
      writer.undecided.push({ build, metadata: { actor: actor.actor, correlationId: actor.correlationId || undefined, at: at.toISOString() }, onDecided, resolve, reject });
      pump(writer);
    });

  const requireAccount = (accountId: string) => {
    const account = directory.account(accountId);
    if (!account) throw new NotFoundError('Account', accountId);
    return account;
  };

  /** Expire every open reservation made before `cutoffMs`; returns how many. */
  const expireOlderThan = async (cutoffMs: number): Promise<number> => {
    let expired = 0;
    await Promise.all(
      [...writers.values()].map(async (writer) => {
        // An idle writer without reservations has nothing to expire (and asking it would count as using it).
        if (evictable(writer) && writer.state?.reservations.size === 0) return;
        const { state } = await submit(writer.accountId, () => null);
        const stale = [...state.reservations].filter(([, r]) => r.atMs < cutoffMs).map(([generationId]) => generationId);
        await Promise.all(
          stale.map((generationId) =>
            submit(writer.accountId, () => ({ type: 'Expire', data: { accountId: writer.accountId, generationId, at: now().toISOString() } })).then(
              ({ events }) => (expired += events.length),
              (error: unknown) => logger.warn({ err: error, generationId }, 'could not expire a reservation'),
            ),
          ),
        );
      }),
    );
    return expired;
  };

  const service: LedgerService = {
    get lastPosition() {
      return lastPosition;
    },

    get writerCount() {
      return writers.size;
    },

    fee: (amount) => deps.payments.fee(amount),

    async reserve({ accountId, keyId, generationId, amount, freeModel, onAdmitted }) {
      const account = requireAccount(accountId);
      const plan = plans[account.plan] ?? plans.free!;
      const key = keyId ? directory.key(keyId) : undefined;
      await submit(accountId, (state) => ({
        type: 'Reserve',
        data: {
          accountId,
          generationId,
          keyId,
          amount,
          free: freeModel,
          keyLimit: key ? { limit: key.limit, reset: key.limitReset } : null,
          freeTier: freeTierLimits(plan, state.purchased),
          at: now().toISOString(),
        },
      }), undefined, onAdmitted);
    },

    async settle({ accountId, generationId, actual, usage }: { accountId: string; generationId: string; actual: number; usage: UsageRecord | null }) {
      const { events, state } = await submit(accountId, () => ({ type: 'Settle', data: { accountId, generationId, actual, usage, at: now().toISOString() } })).catch(
        (error: unknown) => {
          // A second settlement with another amount means two parts of the system disagree on a charge: alert.
          if (error instanceof ConflictError) logger.error({ err: error, accountId, generationId, actual }, 'conflicting settlement refused');
          throw error;
        },
      );
      const settled = (events[0] as ReservationSettled | undefined)?.data;
      if (settled) return { charged: settled.charged, overrun: Math.max(0, actual - settled.reserved), uncollected: settled.uncollected };
      // A repeat with the same amount: report the original outcome.
      const done = state.finalized.get(generationId)!;
      return { charged: done.charged, overrun: 0, uncollected: done.uncollected };
    },

    async release({ accountId, generationId, reason }) {
      await submit(accountId, () => ({ type: 'Release', data: { accountId, generationId, reason, at: now().toISOString() } }));
    },

    async balance(accountId) {
      requireAccount(accountId);
      const { state } = await submit(accountId, () => null);
      return snapshotBalance(accountId, state);
    },

    async reservationOf(accountId, generationId) {
      const { state } = await submit(accountId, () => null);
      if (state.reservations.has(generationId)) return 'open';
      return state.finalized.get(generationId)?.outcome ?? 'none';
    },

    async keyUsage(accountId, keyId): Promise<KeyWindowUsage> {
      const { state } = await submit(accountId, () => null);
      const windows = state.keys.get(keyId);
      const t = now().getTime();
      if (!windows) return { daily: 0, weekly: 0, monthly: 0, lifetime: 0 };
      return { daily: usageIn(windows, 'daily', t), weekly: usageIn(windows, 'weekly', t), monthly: usageIn(windows, 'monthly', t), lifetime: windows.lifetime };
    },

    async purchase({ accountId, amount, paymentMethod, idempotencyKey, actor, correlationId }) {
      requireAccount(accountId);
      // Validate before charging anyone, on the account as it is now (the credits cap): the decider refuses the same
      // inputs again when the purchase is recorded, but a payment must not happen first.
      const { state: current } = await submit(accountId, () => null);
      ledgerDecider.decide({ type: 'PurchaseCredits', data: { accountId, amount, fee: 0, paymentRef: '', at: '' }, creditsCap }, current);
      const fee = deps.payments.fee(amount);
      const { paymentRef } = await deps.payments.charge({ accountId, amount, fee, paymentMethod, idempotencyKey });
      const { state } = await submit(accountId, () => ({ type: 'PurchaseCredits', data: { accountId, amount, fee, paymentRef, at: now().toISOString() }, creditsCap }), { actor, correlationId });
      return { paymentRef, amount, fee, balance: snapshotBalance(accountId, state) };
    },

    async grant({ accountId, amount, reason, actor, correlationId }) {
      requireAccount(accountId);
      const { state } = await submit(accountId, () => ({ type: 'GrantCredits', data: { accountId, amount, reason, grantedBy: actor, at: now().toISOString() }, creditsCap }), { actor, correlationId });
      return snapshotBalance(accountId, state);
    },

    async refund({ accountId, amount, reason, actor, correlationId }) {
      requireAccount(accountId);
      const { state } = await submit(accountId, () => ({ type: 'RefundCredits', data: { accountId, amount, reason, refundedBy: actor, at: now().toISOString() } }), { actor, correlationId });
      return snapshotBalance(accountId, state);
    },

    async sweep() {
      const t = now().getTime();
      const expired = await expireOlderThan(t - ttl);
      if (expired > 0) logger.info({ expired }, 'expired stale reservations');
      evict(t - writerIdleMs);
      return expired;
    },

    async start() {
      // Load the accounts that may hold reservations left by a crash, so the sweep sees them.
      for (const accountId of (await deps.accountsWithReservations?.()) ?? []) writerFor(accountId, now().getTime());
      // As the store's only user, nothing open now can still be settled: expire it all (just after now, so a
      // reservation stamped this very millisecond is included).
      const expired = await expireOlderThan(deps.soleProcess ? now().getTime() + 1 : now().getTime() - ttl);
      if (expired > 0) logger.info({ expired, soleProcess: deps.soleProcess ?? false }, 'expired reservations left by a process that is gone');
      timer = setInterval(() => void service.sweep(), deps.sweepIntervalMs ?? Math.min(60_000, ttl / 4));
      timer.unref();
    },

    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      // Let queued operations finish.
      await Promise.all([...writers.values()].map((writer) => (writer.appending || writer.loading || writer.batches.length > 0 ? submit(writer.accountId, () => null).catch(() => undefined) : undefined)));
    },
  };
  return service;
};



import { createHash, randomUUID } from 'node:crypto';
import { ConflictError, DomainError, IdempotencyKeyReusedError, InsufficientCreditsError, KeyLimitReachedError, NotFoundError, PaymentFailedError, RateLimitedError, UnavailableError, WrongExpectedVersionError } from '../../errors.js';
import { appendBytes, MAX_APPEND_BYTES as STORE_MAX_APPEND_BYTES, type AppendResult, type EventMetadata, type EventStore, type NewEvent, type RecordedEvent, type Urgency } from '../../eventStore/eventStore.js';
import type { FollowStatus } from '../../eventStore/followStatus.js';
import { createWriteRetry, type WriteRetry } from '../../eventStore/writeRetry.js';
import { followEvents, type Follower } from '../../eventStore/follower.js';
import type { Logger } from '../../logger.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { Balance, KeyWindowUsage, Ledger, UsageRecord } from './ledger.js';
import { available, DEFAULT_CREDITS_CAP, ledgerDecider, requirePurchaseAmount, type Finalized, type LedgerCommand, type LedgerState } from './ledger.decider.js';
import { LEDGER_CATEGORY, ledgerStream, type LedgerEvent, type ReservationSettled } from './ledger.events.js';
import type { PaymentProcessor } from './payments.js';
import { DEFAULT_PLANS, freeTierLimits, type Plans } from './plans.js';
import { usageIn, type KeyWindows } from './windows.js';
import { isoTime } from '../../isoTime.js';
import { formatUsd } from './money.js';

export interface Actor {
  readonly actor: string;
  readonly correlationId: string;
}

export interface LedgerService extends Ledger {
  purchase(input: { accountId: string; amount: number; paymentMethod: string; idempotencyKey: string } & Actor): Promise<{ paymentRef: string; amount: number; fee: number; balance: Balance }>;
  /** With `idempotencyKey`: one grant (refund) under it; sent again, the balance and nothing more; another amount, CONFLICT (422). */
  grant(input: { accountId: string; amount: number; reason: string; idempotencyKey?: string | undefined } & Actor): Promise<Balance>;
  refund(input: { accountId: string; amount: number; reason: string; idempotencyKey?: string | undefined } & Actor): Promise<Balance>;
  /** The fee a purchase of `amount` costs on top (VALIDATION for an amount a purchase refuses). */
  fee(amount: number): number;
  /** The list price of the key's BYOK calls (OpenRouter's `byok_usage*`), from the same events as its usage. */
  byokKeyUsage(accountId: string, keyId: string): Promise<KeyWindowUsage>;
  /**
   * What became of the reservation under a generation id: `open`, how it ended, or `none` (never made, or ended so
   * long ago that the account no longer keeps its outcome). A resumed workflow step asks before calling again.
   */
  /** What became of a reservation, and what it charged (0 unless settled). */
  reservationOf(accountId: string, generationId: string): Promise<{ readonly outcome: 'none' | 'open' | Finalized['outcome']; readonly charged: number }>;
  /** Expire reservations older than the TTL; returns how many. */
  sweep(): Promise<number>;
  /**
   * Expire what a dead process left (every open reservation when this process is the store's only user, else those
   * older than the TTL), then sweep periodically.
   */
  start(): Promise<void>;
  /**
   * Settlements and releases whose append failed are tried again until written (eventStore/writeRetry.ts); from now on
   * they fail with their error instead (shutdown: before waiting for the gateway's calls to finish). `stop` does it too.
   * With a shared WriteRetry, this stops every write it retries.
   */
  stopRetrying(): void;
  stop(): Promise<void>;
  /** Global position of the newest ledger append made by this process (for read-your-writes waits). */
  readonly lastPosition: number;
  /** Accounts whose state this process holds in memory (bounded: idle writers are evicted). */
  readonly writerCount: number;
  /** The follower of other processes' ledger appends (null when this process is the store's only user). */
  status(): FollowStatus | null;
  /** For /metrics: operations not yet written (waiting or in decided batches), those batches, and appends written. */
  queue(): { readonly ops: number; readonly batches: number; readonly appends: number };
}

type Outcome = { events: readonly LedgerEvent[]; state: LedgerState };

interface Op {
  /** Builds the command from the current state (e.g. free-tier limits depend on lifetime purchases), or null to only read. */
  readonly build: (state: LedgerState) => LedgerCommand | null;
  readonly metadata: EventMetadata;
  /** Whether a caller waits for its events to be durable on a request's critical path (see AppendOptions.urgency). */
  readonly urgency: Urgency;
  /**
   * When (ms since the epoch) the fsync of its events must start at the latest (a reservation's; see
   * AppendOptions.syncWithinMs); unset: at once when `now`, the store's default when `soon`.
   */
  readonly syncBy: number | undefined;
  /** Called once, when the command is first decided without error: before its events are appended. */
  onDecided?: (() => void) | undefined;
  /** With event ids: this operation's identity when nothing in its event names it (a grant, a refund). */
  nonce?: string;
  /** With event ids: the id its event was last appended under (after a failed append, the reload looks for it). */
  eventId?: string;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

type Result = { events: LedgerEvent[] } | { error: unknown };

/** Operations decided together, appended together. */
interface Batch {
  readonly ops: Op[];
  readonly results: Result[];
  readonly events: NewEvent[];
  /** The events' serialized size (data and metadata, UTF-8). */
  bytes: number;
  /** `now` when an operation with events waits for them (a reservation); `soon` when all are settlements and the like. */
  urgency: Urgency;
  /** The earliest of its operations' syncBy; undefined when all are `soon` without one. */
  syncBy: number | undefined;
  /** A `soon` batch has waited its while for an urgent operation to join it (see SOON_HOLD_MS): it goes now. */
  due?: boolean;
  /** Times it was sent again after a reload did not find it in the stream (see settleUnsure, MAX_RESENDS_AFTER_RELOAD). */
  resentAfterReload?: number;
}

interface Writer {
  readonly accountId: string;
  readonly stream: string;
  /** The committed state plus every decided batch's events; null until loaded, and after a failed append. */
  state: LedgerState | null;
  /** The stream's revision as last written or loaded: the batches in flight go after it. */
  revision: number;
  /** Waiting for the state to be (re)loaded. */
  undecided: Op[];
  /** Decided, in order; the first `inFlight` are being appended, in order. */
  batches: Batch[];
  /** Batches sent to the store and not answered yet: at most one unless `pipeline`. */
  inFlight: number;
  /** Counts failed appends: the answer of a batch sent before the last failure is not this writer's any more. */
  epoch: number;
  /** The answers of the batches in flight are taken in the order they were sent (see send). */
  turn: Promise<void>;
  loading: boolean;
  /** Runs out the wait of a `soon` batch that no urgent operation joined. */
  soonTimer?: NodeJS.Timeout | undefined;
  /** Appends refused in a row for another writer's (another process's) append. */
  conflicts: number;
  /** Appends retried in a row after an ambiguous failure (see MAX_AMBIGUOUS_RETRIES). */
  ambiguous: number;
  /**
   * A batch whose append failed in a way that may have committed it (its answer lost), to be answered once the reload
   * shows whether its events are in the stream or can never be (see settleUnsure). `after`: the revision it was
   * appended after.
   */
  unsure?: { readonly batch: Batch; readonly after: number; readonly error: unknown } | undefined;
  /**
   * Appends to the stream delivered by the follower that the state may not hold yet (another process's, or this
   * one's before its append's answer came back), applied once the writer is idle.
   */
  foreign: RecordedEvent<LedgerEvent>[];
  /** When an operation was last submitted (ms, the service's clock): idle writers are evicted. */
  lastUsedMs: number;
}

const MAX_CONFLICT_RETRIES = 8;
/**
 * An append that failed as unavailable (a timeout, a deadline, a leader change) may still have committed. With event
 * ids, the writer sends the very same events again (same ids, same expected revision): the store answers a repeat
 * of a committed append with its original result, so nothing is written twice. When every resend fails too, the
 * reloaded stream says whether the batch was written (see settleUnsure).
 */
const MAX_AMBIGUOUS_RETRIES = 4;
const AMBIGUOUS_RETRY_BASE_MS = 50;
/**
 * A batch the reload did not find while the stream still ends at the revision it was appended after is sent again
 * (with its resends) at most this many times (see settleUnsure); then its outcome is unknown and its callers get the 503.
 */
const MAX_RESENDS_AFTER_RELOAD = 2;
/**
 * One append carries at most this many bytes (as `appendBytes` counts them): half of what the event stores accept
 * in one append (EventStoreDB's default MaxAppendSize), leaving room for its framing. A single event above it still
 * goes alone.
 */
export const MAX_LEDGER_APPEND_BYTES = STORE_MAX_APPEND_BYTES / 2;
/** And at most this many events: one append is one transaction (embedded) or one gRPC call (EventStoreDB). */
export const MAX_APPEND_EVENTS = 1_000;
/**
 * A batch of `soon` operations only (settlements, releases: written after the answer, nobody waits for them) is held
 * this long for an urgent one (the account's next reservation) to join it, so both go in one append: one commit, one
 * fsync, one round trip to the store instead of two, and the reservation does not wait for the settlement's append
 * to come back before its own can go. Then it goes alone. 25 ms, not 5: at 100 req/s (requests 10 ms apart, answers
 * ~20 ms after them) a 5 ms hold met no reservation and every request cost two commits, each a round trip to the
 * writer thread and an fsync; with 25 ms one (issue 15, stop 25: writer thread 850-900 against 1,150-1,290 µs per
 * request). The price: a crash loses up to 25 ms of settlements instead of 5 (their reservations expire: uncharged).
 * A workflow's model call settles with `now` instead: its step is recorded only once the charge is durable.
 */
export const SOON_HOLD_MS = 25;

/**
 * A settlement or release whose append failed for a reason that passes (a full disk, a store unreachable or busy) is
 * tried again until it is written or the process stops (eventStore/writeRetry.ts: WRITE_RETRY, within
 * MAX_WRITES_RETRYING): its reservation holds the money meanwhile, and dropped, the call would be expired uncharged.
 * Failures a later attempt may not meet: the store's (no domain error), its being unavailable or full, a race.
 */
const passes = (error: unknown) => !(error instanceof DomainError) || error.code === 'UNAVAILABLE' || error instanceof WrongExpectedVersionError;

/**
 * An append that failed this way may still have committed: the store was unavailable (a timeout, a deadline, a lost
 * connection, a leader change) or failed unexpectedly. A domain refusal (a conflict, too large, a full disk) wrote nothing.
 */
const mayHaveCommitted = (error: unknown) => !(error instanceof DomainError) || error instanceof UnavailableError;

/** A fixed namespace for the ledger's name-based event ids (RFC 9562 version 5). */
const EVENT_ID_NAMESPACE = Buffer.from('5b0c7d2e9a4f4e61b3c8d1a2f6e0c947', 'hex');
/** A name's SHA-256 digest, `length` hex characters (a purchase's key and payment method in its events). */
const digest = (name: string, length: number): string => createHash('sha256').update(name).digest('hex').slice(0, length);

const nameBasedUuid = (name: string): string => {
  const hash = createHash('sha1').update(EVENT_ID_NAMESPACE).update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/**
 * What makes an event the same operation when it is appended again: the generation for a reservation's events, the
 * payment for a purchase, the idempotency key of a grant or a refund, else the submitted call (`nonce`). With what was
 * decided under it (the amount): the same key with another amount, decided on another process that had not seen the
 * first, then meets the first as a conflict and is decided again (a CONFLICT for a reused key), where the same id
 * would be answered as a repeat of the first and believed. A purchase's start and failure are the submitted call's: a
 * declined payment gives its key back, and the same request then starts again, which must not be taken for the first.
 */
const operationKey = (event: LedgerEvent, nonce: () => string): string => {
  switch (event.type) {
    case 'CreditsPurchased':
      return event.data.paymentRef;
    case 'PurchaseStarted':
    case 'PurchaseFailed':
      return nonce();
    case 'CreditsGranted':
      return event.data.grantKey === undefined ? nonce() : `${event.data.grantKey}:${event.data.amount}`;
    case 'CreditsRefunded':
      return event.data.refundKey === undefined ? nonce() : `${event.data.refundKey}:${event.data.amount}`;
    case 'CreditsReserved':
      return `${event.data.generationId}:${event.data.amount}`;
    case 'ReservationSettled':
      return `${event.data.generationId}:${event.data.actual}`;
    case 'ReservationReleased':
    case 'ReservationExpired':
      return event.data.generationId;
    default: {
      const _never: never = event;
      return nonce();
    }
  }
};

/** Refusals a stale view of the account can cause (credits, key limit, free-tier rate). */
/** How long a refused reservation waits for the follower to deliver another process's newer append. */
const FRESHEN_WAIT_MS = 2_000;
const isRefusal = (error: unknown) => error instanceof InsufficientCreditsError || error instanceof KeyLimitReachedError || error instanceof RateLimitedError;
/** The default request timeout (10 minutes) plus a minute for its settlement. */
export const DEFAULT_RESERVATION_TTL_MS = 11 * 60_000;
/**
 * Writers kept in memory at most (beyond those busy or holding open reservations). A writer holds an account's whole
 * folded state (up to 100k settled outcomes), so without a bound memory grows with every account ever used.
 */
export const DEFAULT_MAX_WRITERS = 10_000;
/** A writer unused this long is dropped at the next sweep; the next operation reloads the account's stream. */
export const DEFAULT_WRITER_IDLE_MS = 10 * 60_000;

const windowUsage = (windows: KeyWindows | undefined, t: number): KeyWindowUsage =>
  windows
    ? { daily: usageIn(windows, 'daily', t), weekly: usageIn(windows, 'weekly', t), monthly: usageIn(windows, 'monthly', t), lifetime: windows.lifetime }
    : { daily: 0, weekly: 0, monthly: 0, lifetime: 0 };

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
 * The events are appended in order, everything decided while an append is in flight appended together next, with the
 * expected revision: one append in flight per account, or (`pipeline`, the embedded store's sole process) the next
 * sent before the one in flight is committed, at the revision it will give. A concurrent writer elsewhere makes an append fail;
 * the writer then reloads the stream and decides every operation not yet written again, in order, so no decision is
 * ever written on stale state (an operation admitted on the stale view may then be refused: `onDecided` came first).
 * With several processes, a follower of the ledger streams applies the others' appends to the accounts held here,
 * and a refused reservation first checks the stream's head: a refusal appends nothing, so no conflict would ever
 * bring another process's grant. Appends are split to stay within EventStoreDB's size limit.
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
  /**
   * Follow the ledger streams for other processes' appends and apply them to the accounts held in memory (default:
   * unless `soleProcess`). Starts with `start()`.
   */
  followOthers?: boolean;
  /**
   * Give every event an id derived from its operation, so an append retried after an ambiguous failure is written
   * once (default: on EventStoreDB, whose appends can time out and still commit; the embedded store's cannot, and
   * its own time-ordered ids keep its id index append-only).
   */
  eventIds?: boolean;
  /**
   * Caps on one append (see MAX_LEDGER_APPEND_BYTES, MAX_APPEND_EVENTS). Default: those, with no cap on bytes on the
   * embedded store (it has no append size limit).
   */
  appendLimits?: { bytes: number; events: number };
  /**
   * Send an account's next batch while the one before it is still in flight, at the revision that one will give
   * (default: the embedded store as the sole process). Safe only where nobody else appends to a ledger stream and the
   * store writes appends in the order they were made (the embedded store's one writer): a batch is then written only
   * if every batch sent before it was (its expected revision is that of the stream with them), so a failure fails the
   * batches after it too and everything is decided again on the reloaded stream, as after any failed append. Then a
   * reservation decided while the account's previous one is held by the store (its fsync may wait, see
   * AppendOptions.syncWithinMs) joins that commit and its fsync instead of waiting for the commit to come back.
   * Never with `eventIds` (EventStoreDB: another process may append, and an append may commit after failing).
   */
  pipeline?: boolean;
  /** How long a batch of `soon` operations waits for an urgent one to join it (see SOON_HOLD_MS). */
  soonHoldMs?: number;
  /**
   * How a settlement or release whose append failed is tried again (default: its own, WRITE_RETRY): the composition
   * root shares one with the generation records, so one bound and one stop cover both.
   */
  writeRetry?: WriteRetry;
}): LedgerService => {
  const { eventStore, directory, logger } = deps;
  const plans = deps.plans ?? DEFAULT_PLANS;
  const now = deps.now ?? (() => new Date());
  const ttl = deps.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  const creditsCap = deps.creditsCap ?? DEFAULT_CREDITS_CAP;
  const maxWriters = deps.maxWriters ?? DEFAULT_MAX_WRITERS;
  const writerIdleMs = deps.writerIdleMs ?? DEFAULT_WRITER_IDLE_MS;
  const followOthers = deps.followOthers ?? !deps.soleProcess;
  const eventIds = deps.eventIds ?? eventStore.kind === 'eventstoredb';
  const pipeline = !eventIds && (deps.pipeline ?? (eventStore.kind === 'embedded' && deps.soleProcess === true && !followOthers));
  // The embedded store takes appends of any size: its appends are not measured (serialising each event twice, here
  // and in the store, was ~2% of the request thread).
  const maxAppendBytes = deps.appendLimits?.bytes ?? (eventStore.kind === 'embedded' ? Infinity : MAX_LEDGER_APPEND_BYTES);
  const measured = Number.isFinite(maxAppendBytes);
  const maxAppendEvents = deps.appendLimits?.events ?? MAX_APPEND_EVENTS;
  const soonHoldMs = deps.soonHoldMs ?? SOON_HOLD_MS;
  let follower: Follower | null = null;
  /** In order of last use, least recent first (a Map iterates in insertion order; each use re-inserts). */
  const writers = new Map<string, Writer>();
  let lastPosition = 0;
  let appends = 0;
  let timer: NodeJS.Timeout | null = null;

  /**
   * A writer may be dropped when nothing is queued, loading or being appended, and it holds no open reservation: the
   * sweep finds reservations to expire among the writers in memory, and a reservation is settled soon anyway.
   * Dropping loses nothing: the stream is the state, and the next operation reloads it.
   */
  const evictable = (writer: Writer) =>
    !writer.loading && writer.inFlight === 0 && !writer.unsure && writer.undecided.length === 0 && writer.batches.length === 0 && (writer.state === null || writer.state.reservations.size === 0);

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
      writer = {
        accountId,
        stream: ledgerStream(accountId),
        state: null,
        revision: -1,
        undecided: [],
        batches: [],
        inFlight: 0,
        epoch: 0,
        turn: Promise.resolve(),
        loading: false,
        conflicts: 0,
        ambiguous: 0,
        foreign: [],
        lastUsedMs: atMs,
      };
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
      if (writer.unsure) settleUnsure(writer, history, state);
      if (eventIds) answerWritten(writer, history, state);
    } catch (error) {
      const unsure = writer.unsure;
      writer.unsure = undefined;
      // Whether it was written is not known: its callers hear the append's failure (a retry may then apply it again).
      if (unsure) for (const op of unsure.batch.ops) op.reject(unsure.error);
      for (const op of writer.undecided.splice(0)) op.reject(error);
      logger.error({ err: error, accountId: writer.accountId, ...(unsure && { unknownOutcome: unsure.batch.ops.length }) }, 'ledger writer could not load the account');
    } finally {
      writer.loading = false;
    }
    pump(writer);
  };

  /**
   * After a failed append: an operation whose event is in the stream under its id was written after all (the failure
   * was ambiguous and a retry then met a conflict). Answer it from the stream instead of deciding it again, which
   * would grant a grant twice or refuse a reservation as a duplicate of itself.
   */
  const answerWritten = (writer: Writer, history: readonly RecordedEvent<LedgerEvent>[], state: LedgerState) => {
    const waiting = new Map<string, Op>();
    for (const op of writer.undecided) if (op.eventId !== undefined) waiting.set(op.eventId, op);
    if (waiting.size === 0) return;
    const written = new Map<Op, RecordedEvent<LedgerEvent>>();
    for (const event of history) {
      const op = waiting.get(event.id);
      if (op) written.set(op, event);
    }
    if (written.size === 0) return;
    writer.undecided = writer.undecided.filter((op) => !written.has(op));
    for (const [op, event] of written) op.resolve({ events: [event], state });
  };

  /**
   * After an append that may have committed (writer.unsure): one append is atomic and was sent at `after`, so it was
   * written if and only if the stream holds every event of the batch, in order, right after `after` (its first event's
   * id alone proves nothing: a keyed grant or refund retried on another process writes that same id). Then
   * its callers get the batch's own outcomes (a grant its balance, a reservation admitted, a refusal decided in it
   * refused), as if the answer had come back.
   * Not there yet does not mean never: a client's deadline does not cancel a write the store took, which can still
   * commit after this read. While the stream still ends at `after`, the batch is sent again as it was (same events,
   * same ids, at `after`: the state it was decided on): if the first write commits meanwhile, the store answers the
   * repeat as that write (nothing twice), else this one is written; either way its callers get the batch's outcomes.
   * Once the stream went on past `after` without it, it never can be written (its expected revision is taken): its
   * operations are decided again on the reloaded stream, as after a conflict (one whose own event is there, written
   * by a retry elsewhere, is answered from it; see answerWritten). A stream read short of `after` (a lagging replica)
   * or resends that keep failing leave the outcome unknown: the failure stands (logged with unknownOutcome).
   */
  const settleUnsure = (writer: Writer, history: readonly RecordedEvent<LedgerEvent>[], state: LedgerState) => {
    const { batch, after, error } = writer.unsure!;
    writer.unsure = undefined;
    const at = history.findIndex((event) => event.revision === after + 1);
    if (at !== -1 && batch.events.every((event, i) => history[at + i]?.id === event.id)) {
      logger.warn({ err: error, accountId: writer.accountId, revision: after + 1 }, 'ledger append that failed ambiguously was written: answered from the stream');
      appends += 1;
      lastPosition = Math.max(lastPosition, history[at + batch.events.length - 1]!.position);
      answer(batch, state);
      return;
    }
    if (writer.revision > after) {
      logger.warn({ err: error, accountId: writer.accountId, revision: after, now: writer.revision }, 'ledger append that failed ambiguously was not written and no longer can be (the stream went on): deciding its operations again');
      writer.undecided = [...batch.ops, ...writer.undecided];
      return;
    }
    const resent = batch.resentAfterReload ?? 0;
    if (writer.revision === after && resent < MAX_RESENDS_AFTER_RELOAD) {
      batch.resentAfterReload = resent + 1;
      logger.warn({ err: error, accountId: writer.accountId, revision: after, attempt: resent + 1 }, 'ledger append that failed ambiguously is not in the stream, which has not moved: sending the same events again at the same revision');
      for (const result of batch.results) if ('events' in result) for (const event of result.events) ledgerDecider.evolve(state, event);
      // Sent at once, before anything decided meanwhile (which goes into the next batch: this one is in flight).
      batch.due = true;
      writer.batches.unshift(batch);
      send(writer, batch, state);
      return;
    }
    logger.error(
      { err: error, accountId: writer.accountId, revision: after, read: writer.revision, unknownOutcome: batch.ops.length },
      writer.revision === after ? 'ledger append kept failing ambiguously and is not in the stream yet: its outcome is unknown' : 'ledger append failed ambiguously and the reload read the stream short of where it was sent: its outcome is unknown',
    );
    for (const op of batch.ops) op.reject(error);
  };

  const serializedBytes = (event: LedgerEvent, metadata: EventMetadata) => appendBytes([{ type: event.type, data: event.data, metadata }]);

  const newBatch = (writer: Writer): Batch => {
    const batch: Batch = { ops: [], results: [], events: [], bytes: 0, urgency: 'soon', syncBy: undefined };
    writer.batches.push(batch);
    return batch;
  };

  /** Decide the waiting operations into the batches that are not being appended yet. */
  const decide = (writer: Writer, state: LedgerState) => {
    // The last batch takes more operations unless it is in flight.
    const open = writer.batches.length > writer.inFlight ? writer.batches[writer.batches.length - 1]! : undefined;
    let batch = open ?? newBatch(writer);
    const admitted: Op[] = [];
    for (const op of writer.undecided.splice(0)) {
      let result: Result;
      const toAppend: NewEvent[] = [];
      let bytes = 0;
      try {
        const command = op.build(state);
        const events = command ? (ledgerDecider.decide(command, state) as LedgerEvent[]) : [];
        for (const event of events) {
          ledgerDecider.evolve(state, event);
          // Without event ids (embedded): the store's time-ordered ids keep its id index append-only (random ids
          // cost ~2.5x), and an embedded append never fails ambiguously; the decider makes repeats harmless.
          const id = eventIds ? nameBasedUuid(`${writer.stream}\n${event.type}\n${operationKey(event, () => (op.nonce ??= randomUUID()))}`) : undefined;
          if (id !== undefined) op.eventId = id;
          toAppend.push({ ...(id !== undefined && { id }), type: event.type, data: event.data, metadata: op.metadata });
          if (measured) bytes += serializedBytes(event, op.metadata);
        }
        result = { events };
      } catch (error) {
        result = { error };
      }
      // A full batch (by size or count) is closed and the next one takes this operation; an operation's events stay
      // in one append.
      if (toAppend.length > 0 && batch.ops.length > 0 && (batch.events.length + toAppend.length > maxAppendEvents || batch.bytes + bytes > maxAppendBytes)) {
        batch = newBatch(writer);
      }
      batch.ops.push(op);
      batch.results.push(result);
      batch.events.push(...toAppend);
      batch.bytes += bytes;
      // An urgent operation sends its batch at once, a read too: it is answered once what was decided before it is written.
      if (op.urgency === 'now') batch.urgency = 'now';
      const syncBy = op.syncBy ?? (op.urgency === 'now' ? 0 : undefined);
      if (syncBy !== undefined) batch.syncBy = Math.min(batch.syncBy ?? syncBy, syncBy);
      if (op.onDecided && !('error' in result)) admitted.push(op);
    }
    // Once the batches are whole: a callback that submits again then joins the last one, consistently.
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

  const appendEvents = (writer: Writer, batch: Batch, after: number): Promise<AppendResult> => {
    // A `soon` batch that waited its while goes as urgent: the store is not to hold it again; its fsync may still wait.
    const urgency = batch.due ? 'now' : batch.urgency;
    // What is left of the earliest deadline (a reservation may have waited for the append before it).
    const syncWithinMs = batch.syncBy === undefined ? soonHoldMs : Math.max(0, batch.syncBy - Date.now());
    try {
      // At commit: the next batch is decided on this one and appended after it without waiting for the disk (with
      // `pipeline`, before it is committed); each batch's callers wait for its own durability (see attempt).
      return eventStore.append(writer.stream, batch.events, { expectedRevision: after === -1 ? 'no_stream' : after, durability: 'commit', urgency, syncWithinMs });
    } catch (error) {
      // A closed store refuses at once: fail like any append, so the writer does not wait forever.
      return Promise.reject(error);
    }
  };

  /** Nothing decided is waiting to be written: the state is the stream's, up to `revision`. */
  const idle = (writer: Writer) => !writer.loading && writer.inFlight === 0 && writer.batches.length === 0;

  /** Apply the follower's appends the state does not hold yet; after a gap (one missed), drop the state to reload it. */
  const absorbForeign = (writer: Writer, state: LedgerState) => {
    for (const event of writer.foreign) {
      if (event.revision <= writer.revision) continue;
      if (event.revision !== writer.revision + 1) {
        writer.state = null;
        break;
      }
      ledgerDecider.evolve(state, event);
      writer.revision = event.revision;
    }
    writer.foreign = [];
  };

  /** From the follower: an append to a ledger stream, by another process or (already applied) by this one. */
  const applyAppended = (event: RecordedEvent) => {
    const writer = writers.get(event.stream.slice(LEDGER_CATEGORY.length + 1));
    // Not held, or dropped and not being reloaded: the next operation reads the whole stream anyway.
    if (!writer || writer.stream !== event.stream || (writer.state === null && !writer.loading) || event.revision <= writer.revision) return;
    writer.foreign.push(event as RecordedEvent<LedgerEvent>);
    // Busy: this process's own append may be in flight (the follower can deliver it before the append's answer), so
    // wait until the writer is idle; an append meanwhile on a state without it fails on its expected revision.
    if (writer.state && idle(writer)) absorbForeign(writer, writer.state);
  };

  /**
   * The append failed: the state holds events that may not be written. Drop it, and decide everything not yet written
   * again on the reloaded stream, in order. After too many conflicts in a row, or any other error, the batch fails;
   * with event ids, a failure that may have committed it is answered by the reload instead (see settleUnsure).
   */
  const failAppend = (writer: Writer, error: unknown) => {
    writer.state = null;
    writer.ambiguous = 0;
    // Batches sent after the failed one fail too (sent at the revision it would have given): their answers are ignored.
    writer.inFlight = 0;
    writer.epoch += 1;
    const retry = error instanceof WrongExpectedVersionError && ++writer.conflicts <= MAX_CONFLICT_RETRIES;
    const [failed, ...later] = writer.batches.splice(0);
    if (!retry) {
      writer.conflicts = 0;
      if (eventIds && mayHaveCommitted(error)) writer.unsure = { batch: failed!, after: writer.revision, error };
      else for (const op of failed!.ops) op.reject(error);
    }
    writer.undecided = [...(retry ? failed!.ops : []), ...later.flatMap((b) => b.ops), ...writer.undecided];
    pump(writer);
  };

  /**
   * Append the next batch after those in flight, at the revision they will give. Its answer is taken after theirs
   * (`turn`): a batch's failure is then always met before the answers of the batches sent after it.
   */
  const send = (writer: Writer, batch: Batch, state: LedgerState) => {
    let after = writer.revision;
    for (let i = 0; i < writer.inFlight; i++) after += writer.batches[i]!.events.length;
    writer.inFlight += 1;
    attempt(writer, batch, state, after, writer.epoch);
  };

  /** One try of a batch's append (again, after an ambiguous failure: the same events under the same ids). */
  const attempt = (writer: Writer, batch: Batch, state: LedgerState, after: number, epoch: number) => {
    const outcome = appendEvents(writer, batch, after).then(
      (appended) => ({ appended }),
      (error: unknown) => ({ error }),
    );
    writer.turn = writer.turn
      .then(() => outcome)
      .then((result) => {
        // Sent before the last failure: refused too (see failAppend), and its operations are decided again.
        if (epoch !== writer.epoch) return;
        if ('error' in result) {
          const error = result.error;
          if (eventIds && error instanceof UnavailableError && writer.ambiguous < MAX_AMBIGUOUS_RETRIES) {
            // Still in flight: operations arriving meanwhile are decided into the next batch.
            const delayMs = AMBIGUOUS_RETRY_BASE_MS * 2 ** writer.ambiguous++;
            logger.warn({ err: error, accountId: writer.accountId, attempt: writer.ambiguous, retryInMs: delayMs }, 'ledger append failed ambiguously; sending the same events again');
            setTimeout(() => attempt(writer, batch, state, after, epoch), delayMs).unref();
            return;
          }
          return failAppend(writer, error);
        }
        const { appended } = result;
        if (appended.nextExpectedRevision !== after + batch.events.length) {
          // The store matched the ids to events written elsewhere in the stream (a reused generation id long after
          // its outcome was forgotten): nothing of this batch was written.
          return failAppend(writer, new ConflictError(`The ledger append to ${writer.stream} repeats events written before`, { stream: writer.stream }));
        }
        writer.inFlight -= 1;
        writer.conflicts = 0;
        writer.ambiguous = 0;
        appends += 1;
        writer.revision = appended.nextExpectedRevision;
        if (writer.foreign.length > 0) writer.foreign = writer.foreign.filter((event) => event.revision > writer.revision);
        writer.batches.shift();
        // Committed: the next batch goes now (if it did not already). The callers hear only once the batch is durable,
        // so no reservation admits a call and no charge is reported that a power loss could take back. Batches become
        // durable in commit order (an fsync covers every commit before it), so callers still hear in order. A failed
        // fsync fails them; the store then refuses every later append, so the writer reloads before deciding again.
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
      })
      .catch((error: unknown) => {
        // A defect in what runs after an answer (pump, the callers' callbacks), never the store's: the batch's outcome
        // is already taken, and reloading now would decide again batches in flight that will be written. The chain
        // goes on, so later answers are still taken.
        logger.error({ err: error, accountId: writer.accountId }, 'ledger writer: handling an append answer failed');
      });
  };

  /** Decide what waits, then append the batches not in flight (one at a time unless `pipeline`). Batches without events settle in turn. */
  const pump = (writer: Writer): void => {
    if (writer.state && writer.foreign.length > 0 && idle(writer)) absorbForeign(writer, writer.state);
    if (!writer.state) {
      if (!writer.loading && (writer.undecided.length > 0 || writer.unsure)) void load(writer);
      return;
    }
    const state = writer.state;
    if (writer.undecided.length > 0) decide(writer, state);
    while (writer.batches.length > writer.inFlight && (writer.inFlight === 0 || pipeline)) {
      const batch = writer.batches[writer.inFlight]!;
      if (batch.events.length === 0) {
        // Answered once everything decided before it is written.
        if (writer.inFlight > 0) return;
        writer.batches.shift();
        answer(batch, state);
        continue;
      }
      // A `soon` batch waits here for an urgent operation unless an urgent batch is already decided (with `pipeline`,
      // possibly in flight): then it goes now, and the store holds it to go with that one (AppendOptions.urgency).
      if (batch.urgency === 'soon' && !batch.due && soonHoldMs > 0 && !writer.batches.some((b) => b.urgency === 'now')) {
        // Open until then: an urgent operation decided meanwhile joins it (see decide) and sends it at once.
        writer.soonTimer ??= setTimeout(() => {
          writer.soonTimer = undefined;
          const next = writer.batches[writer.inFlight];
          if (next) next.due = true;
          pump(writer);
        }, soonHoldMs);
        return;
      }
      clearTimeout(writer.soonTimer);
      writer.soonTimer = undefined;
      send(writer, batch, state);
    }
  };

  const submit = (
    accountId: string,
    build: Op['build'],
    actor: Actor = { actor: 'system:ledger', correlationId: '' },
    onDecided?: () => void,
    urgency: Urgency = 'now',
    syncWithinMs?: number,
  ): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      const at = now();
      const writer = writerFor(accountId, at.getTime());
      const syncBy = syncWithinMs === undefined ? undefined : Date.now() + syncWithinMs;
      writer.undecided.push({ build, metadata: { actor: actor.actor, correlationId: actor.correlationId || undefined, at: isoTime(at.getTime()) }, urgency, syncBy, onDecided, resolve, reject });
      pump(writer);
    });

  const writeRetry = deps.writeRetry ?? createWriteRetry({ logger });
  /** `attempt` until it is written: a failure that passes is logged and tried again; any other, or once stopped, is the caller's. */
  const untilWritten = <T>(what: string, ids: Record<string, unknown>, attempt: () => Promise<T>): Promise<T> =>
    writeRetry.untilWritten({ what, ids, passes, meanwhile: 'its reservation holds the amount meanwhile' }, attempt);

  const requireAccount = (accountId: string) => {
    const account = directory.account(accountId);
    if (!account) throw new NotFoundError('Account', accountId);
    return account;
  };

  /**
   * Expire every open reservation made before `cutoffMs`; returns how many. Never rejects: an account it cannot read
   * or expire now is logged and left to the next sweep (the sweep runs on a timer, where a rejection would be
   * unhandled and end the process).
   */
  const expireOlderThan = async (cutoffMs: number): Promise<number> => {
    let expired = 0;
    await Promise.all(
      [...writers.values()].map(async (writer) => {
        // An idle writer without reservations has nothing to expire (and asking it would count as using it).
        if (evictable(writer) && writer.state?.reservations.size === 0) return;
        // The read is decided into the account's open batch (a settlement held for the next reservation, say), so it
        // fails with that batch's append: on a full disk, with the batch's StorageFullError.
        const read = await submit(writer.accountId, () => null).catch((error: unknown) => {
          logger.warn({ err: error, accountId: writer.accountId }, 'could not read an account to expire its stale reservations; the next sweep tries again');
          return null;
        });
        if (!read) return;
        const { state } = read;
        const stale = [...state.reservations].filter(([, r]) => r.atMs < cutoffMs).map(([generationId]) => generationId);
        await Promise.all(
          stale.map((generationId) =>
            submit(writer.accountId, () => ({ type: 'Expire', data: { accountId: writer.accountId, generationId, at: isoTime(now().getTime()) } })).then(
              ({ events }) => (expired += events.length),
              (error: unknown) => logger.warn({ err: error, generationId }, 'could not expire a reservation'),
            ),
          ),
        );
      }),
    );
    return expired;
  };

  /**
   * After a refusal on this process's view of the account: is the stream ahead of it (another process granted,
   * released or settled just now, and the follower has not delivered it yet)? Then wait for the follower (if it still
   * lags, drop the view to reload it), so the caller is decided again on the fresh account. One read per refusal,
   * only with several processes.
   */
  const freshenAfterRefusal = async (accountId: string, follower: Follower): Promise<boolean> => {
    const [head] = await eventStore.readStream(ledgerStream(accountId), { direction: 'backwards', maxCount: 1 });
    const writer = writers.get(accountId);
    if (!head || !writer || head.revision <= writer.revision) return false;
    await follower.waitFor(head.position, FRESHEN_WAIT_MS);
    // Still behind (the follower lags or is down): reload the stream rather than refuse on a view known to be stale.
    if (writer.state && idle(writer) && head.revision > writer.revision) writer.state = null;
    return true;
  };

  const service: LedgerService = {
    status: () => follower?.status() ?? null,

    queue() {
      let ops = 0;
      let batches = 0;
      for (const writer of writers.values()) {
        ops += writer.undecided.length;
        batches += writer.batches.length;
        for (const batch of writer.batches) ops += batch.ops.length;
        if (writer.unsure) {
          ops += writer.unsure.batch.ops.length;
          batches += 1;
        }
      }
      return { ops, batches, appends };
    },

    get lastPosition() {
      return lastPosition;
    },

    get writerCount() {
      return writers.size;
    },

    fee(amount) {
      // Quoted only for what a purchase accepts: the same check, the same VALIDATION.
      requirePurchaseAmount(amount);
      return deps.payments.fee(amount);
    },

    async reserve({ accountId, keyId, generationId, amount, keyAmount, freeModel, onAdmitted, syncWithinMs }) {
      const account = requireAccount(accountId);
      const plan = plans[account.plan] ?? plans.free!;
      const key = keyId ? directory.key(keyId) : undefined;
      const build: Op['build'] = (state) => ({
        type: 'Reserve',
        data: {
          accountId,
          generationId,
          keyId,
          amount,
          ...(keyAmount !== undefined && { keyAmount }),
          free: freeModel,
          keyLimit: key ? { limit: key.limit, reset: key.limitReset } : null,
          freeTier: freeTierLimits(plan, state.purchased),
          at: isoTime(now().getTime()),
        },
      });
      try {
        await submit(accountId, build, undefined, onAdmitted, 'now', syncWithinMs);
      } catch (error) {
        const following = follower;
        if (!following || !isRefusal(error)) throw error;
        const fresher = await freshenAfterRefusal(accountId, following).catch(() => false);
        if (!fresher) throw error;
        await submit(accountId, build, undefined, onAdmitted, 'now', syncWithinMs);
      }
    },

    async settle({ accountId, generationId, actual, usage, byok, urgency = 'soon' }: Parameters<Ledger['settle']>[0]) {
      // After the answer went out: nobody waits on its fsync, which may then be shared with the next reservation's.
      const settle = () => submit(accountId, () => ({ type: 'Settle', data: { accountId, generationId, actual, usage, ...(byok && { byok }), at: isoTime(now().getTime()) } }), undefined, undefined, urgency);
      const { events, state } = await untilWritten('settlement', { accountId, generationId, actual }, settle).catch(
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

    async release({ accountId, generationId, reason, urgency = 'soon' }) {
      await untilWritten('release', { accountId, generationId }, () =>
        submit(accountId, () => ({ type: 'Release', data: { accountId, generationId, reason, at: isoTime(now().getTime()) } }), undefined, undefined, urgency),
      );
    },

    async balance(accountId) {
      requireAccount(accountId);
      const { state } = await submit(accountId, () => null);
      return snapshotBalance(accountId, state);
    },

    async reservationOf(accountId, generationId) {
      const { state } = await submit(accountId, () => null);
      if (state.reservations.has(generationId)) return { outcome: 'open', charged: 0 };
      const finalized = state.finalized.get(generationId);
      return finalized ? { outcome: finalized.outcome, charged: finalized.outcome === 'settled' ? finalized.charged : 0 } : { outcome: 'none', charged: 0 };
    },

    async keyUsage(accountId, keyId): Promise<KeyWindowUsage> {
      const { state } = await submit(accountId, () => null);
      return windowUsage(state.keys.get(keyId), now().getTime());
    },

    async byokKeyUsage(accountId, keyId): Promise<KeyWindowUsage> {
      const { state } = await submit(accountId, () => null);
      return windowUsage(state.byokKeys.get(keyId), now().getTime());
    },

    async purchase({ accountId, amount, paymentMethod, idempotencyKey, actor, correlationId }) {
      requireAccount(accountId);
      const by = { actor, correlationId };
      const purchaseKey = digest(`${accountId}\n${idempotencyKey}`, 40);
      const method = digest(`${accountId}\n${paymentMethod}`, 24);
      // Hold the purchase's room under the credits cap before anyone is charged (two-phase, as a reservation holds
      // credits for a call): a purchase the ledger would refuse is refused here, and once held, no other purchase or
      // grant can take its room while the card is charged. The same key for another amount or method is refused here.
      const { state: holding } = await submit(
        accountId,
        () => ({ type: 'StartPurchase', data: { accountId, purchaseKey, amount, fee: deps.payments.fee(amount), method, at: isoTime(now().getTime()) }, creditsCap }),
        by,
      );
      const started = holding.purchases.get(purchaseKey);
      // Recorded already (a retry): its answer, from the ledger. Not started: refused concurrently, by a declined card.
      if (started?.paymentRef) return { paymentRef: started.paymentRef, amount: started.amount, fee: started.fee, balance: snapshotBalance(accountId, holding) };
      if (!started) throw new ConflictError('A purchase under this idempotency key was refused just now (its payment failed): send it again', { amount });
      const { fee } = started;
      let paymentRef: string;
      try {
        // A retry of a purchase being paid (concurrent, or after a crash) asks again under the same key: the port's
        // processor answers the same payment, never a second one.
        ({ paymentRef } = await deps.payments.charge({ accountId, amount, fee, paymentMethod, idempotencyKey }));
      } catch (error) {
        // Refused: nothing was charged, the room and the key are given back. Anything else may have charged: the hold
        // stays, so the same request again completes it (the processor answers that payment) and nothing else takes its room.
        if (error instanceof PaymentFailedError) {
          await submit(accountId, () => ({ type: 'FailPurchase', data: { accountId, purchaseKey, reason: error.message, at: isoTime(now().getTime()) } }), by);
        }
        throw error;
      }
      const { events, state } = await submit(
        accountId,
        () => ({ type: 'PurchaseCredits', data: { accountId, amount, fee, paymentRef, purchaseKey, at: isoTime(now().getTime()) }, creditsCap }),
        by,
      );
      const credited = state.paymentRefs.get(paymentRef);
      if (events[0]?.type === 'PurchaseFailed' && credited && (credited.amount !== amount || credited.fee !== fee)) {
        throw new IdempotencyKeyReusedError(`This idempotency key was used for another purchase (${formatUsd(credited.amount)}): send a new key for a new purchase`, { paymentRef });
      }
      return { paymentRef, amount, fee, balance: snapshotBalance(accountId, state) };
    },

    async grant({ accountId, amount, reason, idempotencyKey, actor, correlationId }) {
      requireAccount(accountId);
      const grantKey = idempotencyKey === undefined ? undefined : digest(`${accountId}\n${idempotencyKey}`, 40);
      const { state } = await submit(
        accountId,
        () => ({ type: 'GrantCredits', data: { accountId, amount, reason, grantedBy: actor, ...(grantKey !== undefined && { grantKey }), at: isoTime(now().getTime()) }, creditsCap }),
        { actor, correlationId },
      );
      return snapshotBalance(accountId, state);
    },

    async refund({ accountId, amount, reason, idempotencyKey, actor, correlationId }) {
      requireAccount(accountId);
      const refundKey = idempotencyKey === undefined ? undefined : digest(`${accountId}\n${idempotencyKey}`, 40);
      const { state } = await submit(
        accountId,
        () => ({ type: 'RefundCredits', data: { accountId, amount, reason, refundedBy: actor, ...(refundKey !== undefined && { refundKey }), at: isoTime(now().getTime()) } }),
        { actor, correlationId },
      );
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
      if (followOthers && !follower) {
        // From the head on: an account's state is read from its stream when first used, the follower brings what
        // other processes append after that. A view loaded before now may have missed some: reload it.
        const head = await eventStore.headPosition();
        for (const writer of writers.values()) if (idle(writer)) writer.state = null;
        follower = followEvents(eventStore, { categories: [LEDGER_CATEGORY] }, applyAppended, { name: 'ledger', logger, after: head });
        await follower.start();
      }
      // Load the accounts that may hold reservations left by a crash, so the sweep sees them.
      for (const accountId of (await deps.accountsWithReservations?.()) ?? []) writerFor(accountId, now().getTime());
      // As the store's only user, nothing open now can still be settled: expire it all (just after now, so a
      // reservation stamped this very millisecond is included).
      const expired = await expireOlderThan(deps.soleProcess ? now().getTime() + 1 : now().getTime() - ttl);
      if (expired > 0) logger.info({ expired, soleProcess: deps.soleProcess ?? false }, 'expired reservations left by a process that is gone');
      // Never unhandled: the sweep is tried again at its next turn.
      timer = setInterval(() => void service.sweep().catch((error: unknown) => logger.error({ err: error }, 'the reservation sweep failed; it runs again at its next turn')), deps.sweepIntervalMs ?? Math.min(60_000, ttl / 4));
      timer.unref();
    },

    stopRetrying() {
      writeRetry.stop();
    },

    async stop() {
      service.stopRetrying();
      if (timer) clearInterval(timer);
      timer = null;
      await follower?.stop();
      follower = null;
      // Let queued operations finish.
      await Promise.all([...writers.values()].map((writer) => (writer.inFlight > 0 || writer.loading || writer.batches.length > 0 ? submit(writer.accountId, () => null).catch(() => undefined) : undefined)));
    },
  };
  return service;
};



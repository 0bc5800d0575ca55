import type { Logger } from '../logger.js';
import { describeStorageFailure, storageFailureOf } from '../errors.js';
import { errorMessage, retryDelay, type RetryPolicy } from './followStatus.js';

/**
 * How a write the caller has already answered for is tried again when its append fails for a reason that passes (a
 * full disk, a store unreachable or busy): capped and jittered as a follower resubscribes, until it is written or the
 * process stops. Settlements and releases (their reservation holds the money meanwhile) and generation records (the
 * call is charged; its record waits) share it: one policy, one bound, one stop.
 */
export const WRITE_RETRY: RetryPolicy = { baseMs: 200, maxMs: 30_000 };

/**
 * Writes waiting to be tried again at most, all kinds together. Each holds what it will append (a settlement: a few
 * hundred bytes; a record: its events, a few KB, more with a kept completion), so memory stays bounded (tens of MB)
 * while a store refuses for long under traffic. Past it, a write that fails is not tried again: it fails with its error
 * at once, as at a stop (a settlement's reservation is then expired, uncharged; a record is lost, the call shown
 * `unrecorded` from its charge). On a full disk it is not reached: the calls' reservations are refused too, so no new
 * call is answered and nothing more waits than the calls in flight when the disk filled.
 */
export const MAX_WRITES_RETRYING = 10_000;

export interface Write {
  /** What is written, for the logs: "settlement", "generation record". */
  readonly what: string;
  /** What names it, in each log line. */
  readonly ids: Record<string, unknown>;
  /** Whether a later attempt may not meet this failure. */
  readonly passes: (error: unknown) => boolean;
  /** What holds meanwhile, said in the first failure's log line. */
  readonly meanwhile?: string;
}

export interface WriteRetry {
  /** `attempt` until it is written (see `retryAfter`). */
  untilWritten<T>(write: Write, attempt: (failures: number) => Promise<T>): Promise<T>;
  /**
   * After `attempt`'s first failure `error`: try it again until it is written (`attempt` is told how many attempts
   * failed). A failure that does not pass, any once stopped, and the first past MAX_WRITES_RETRYING are the caller's.
   */
  retryAfter<T>(error: unknown, write: Write, attempt: (failures: number) => Promise<T>): Promise<T>;
  /** From now on a failed write fails with its error, and those waiting fail with theirs (shutdown). */
  stop(): void;
  /** Writes waiting to be tried again now. */
  readonly waiting: number;
}

export const createWriteRetry = (deps: { logger: Logger; policy?: RetryPolicy; maxWaiting?: number }): WriteRetry => {
  const { logger } = deps;
  const policy = deps.policy ?? WRITE_RETRY;
  const maxWaiting = deps.maxWaiting ?? MAX_WRITES_RETRYING;
  let retrying = true;
  let waiting = 0;
  /** The waits between attempts (stop ends them). */
  const waits = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        waits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waits.add(wake);
    });

  const retryAfter = async <T>(first: unknown, write: Write, attempt: (failures: number) => Promise<T>): Promise<T> => {
    if (!retrying || !write.passes(first)) throw first;
    if (waiting >= maxWaiting) {
      logger.error({ err: first, ...write.ids, waiting }, `could not write a ${write.what}, and ${waiting} writes already wait to be tried again: this one is given up`);
      throw first;
    }
    waiting++;
    try {
      let error = first;
      for (let failures = 1; ; failures++) {
        const delayMs = retryDelay(failures, policy);
        const line = { ...write.ids, attempt: failures, retryInMs: delayMs };
        // A failure of the store's storage (a full disk...) is logged by the store once per change of state
        // (trackWrites): here a line naming the write, without a stack, not an error per call.
        const storage = storageFailureOf(error);
        if (failures === 1 && storage === null) logger.error({ err: error, ...line }, `could not write a ${write.what}; trying again until it is written${write.meanwhile ? ` (${write.meanwhile})` : ''}`);
        else if (failures === 1) logger.warn({ reason: storage, ...line }, `could not write a ${write.what} (${describeStorageFailure(storage!)}); trying again until it is written${write.meanwhile ? ` (${write.meanwhile})` : ''}`);
        else logger.warn({ error: errorMessage(error), ...line }, `could not write a ${write.what} again; trying again`);
        await sleep(delayMs);
        if (!retrying) throw error;
        try {
          const written = await attempt(failures);
          logger.info({ ...write.ids, attempts: failures + 1 }, `a ${write.what} that had failed is written`);
          return written;
        } catch (again) {
          if (!retrying || !write.passes(again)) throw again;
          error = again;
        }
      }
    } finally {
      waiting--;
    }
  };

  return {
    untilWritten: (write, attempt) => attempt(0).catch((error: unknown) => retryAfter(error, write, attempt)),
    retryAfter,
    stop() {
      retrying = false;
      for (const wake of [...waits]) wake();
    },
    get waiting() {
      return waiting;
    },
  };
};

import { describeStorageFailure, storageFailureOf, type StorageFailure } from '../errors.js';
import type { Logger } from '../logger.js';

/** A store whose last write failed for its storage (see storageFailureOf): /health shows it until a write succeeds. */
export interface WriteFailure {
  readonly reason: StorageFailure;
  /** The first failure's message. */
  readonly message: string;
  /** When the first failure of this run of them happened (ISO). */
  readonly since: string;
  /** Writes refused since then. */
  readonly refused: number;
}

export interface WriteHealth {
  /** Null while the last write succeeded. */
  failure(): WriteFailure | null;
  succeeded(): void;
  /** A write failed: counted when it is the storage's failure (a full disk...), ignored otherwise (a conflict). */
  failed(error: unknown): void;
}

/**
 * The outcome of a store's last write, kept as its writes end: no write of its own per /health call, nothing per
 * successful write but a null check. With a logger, a run of failures is logged once per change of state, not once per
 * refused write (a full disk under traffic logged two stacks per refused call): the first failure (an error, with its
 * stack), a count every `summaryEveryMs` while they go on (counted as writes fail, no timer), and the count when a
 * write succeeds again.
 */
export const createWriteHealth = (
  what: string,
  options: { logger?: Pick<Logger, 'error' | 'warn'>; summaryEveryMs?: number; now?: () => number } = {},
): WriteHealth => {
  const { logger, summaryEveryMs = 60_000, now = Date.now } = options;
  let current: { reason: StorageFailure; message: string; since: number; refused: number; loggedAt: number; loggedRefused: number } | null = null;
  return {
    failure: () => current && { reason: current.reason, message: current.message, since: new Date(current.since).toISOString(), refused: current.refused },
    succeeded() {
      if (current === null) return;
      const { reason, refused, since } = current;
      current = null;
      logger?.warn({ reason, refused, forMs: now() - since }, `${what}: writes succeed again, after ${refused} refused (${describeStorageFailure(reason)})`);
    },
    failed(error) {
      const reason = storageFailureOf(error);
      if (reason === null) return;
      const at = now();
      if (current === null || current.reason !== reason) {
        current = { reason, message: error instanceof Error ? error.message : String(error), since: at, refused: 1, loggedAt: at, loggedRefused: 1 };
        logger?.error({ err: error, reason }, `${what}: a write failed (${describeStorageFailure(reason)}); writes that need it are refused until one succeeds again, logged as a count meanwhile`);
        return;
      }
      current.refused += 1;
      if (at - current.loggedAt >= summaryEveryMs) {
        logger?.warn({ reason, refused: current.refused - current.loggedRefused, total: current.refused, sinceMs: at - current.since }, `${what}: writes still failing (${describeStorageFailure(reason)})`);
        current.loggedAt = at;
        current.loggedRefused = current.refused;
      }
    },
  };
};

/**
 * The ContentStore port: what a generation was sent and what it answered, kept for accounts that turned on input &
 * output logging (OpenRouter's `GET /api/v1/generation/content`). It lives outside the event log on purpose: events
 * are never deleted, and a prompt must be: an account deletes its stored content, and content older than the
 * retention (CONTENT_RETENTION_DAYS) is purged. Nothing here is money or an audit record, so an adapter writes
 * without waiting for the disk (a power loss can lose the last moments of content, never a charge).
 *
 * It also keeps the answers replayed to a retried `Idempotency-Key` (a record kind of its own, sealed by the caller,
 * purged after 24 hours: src/modules/generations/requestIdempotency.ts).
 *
 * Cuts: per account, when it last turned logging off or deleted its content (content), and last deleted it (replays).
 * A write carries its call's start and is refused when a cut of its account is as late: the store, shared by every
 * process, decides, so a call that was in flight then (on any process) stores nothing afterwards. A cut is purged with the
 * content older than the retention (a day at least: no call runs that long).
 *
 * Adapters: embedded (a SQLite file of its own in DATA_DIR) and MongoDB (a collection beside the read models).
 */

/** A chat's messages as the request sent them (a legacy `prompt` is the one user message it became), before any context compression. */
export interface ContentInput {
  readonly messages: readonly unknown[];
}

export interface ContentOutput {
  /** The answer's text as the client received it; null when nothing was generated (a failure, a cancel before the first token). */
  readonly completion: string | null;
  /** The reasoning text the provider returned, when it returned any. */
  readonly reasoning: string | null;
}

export interface StoredContent {
  readonly generationId: string;
  readonly accountId: string;
  /** ISO time the generation started. */
  readonly createdAt: string;
  readonly input: ContentInput;
  readonly output: ContentOutput;
}

/** An answer kept for an Idempotency-Key's retries, sealed (its plain text is never stored). */
export interface StoredReplay {
  readonly generationId: string;
  readonly accountId: string;
  /** ISO time the answer was stored. */
  readonly createdAt: string;
  /** The sealed answer, base64url. */
  readonly sealed: string;
}

export interface ContentStore {
  readonly kind: 'embedded' | 'mongodb';
  /**
   * Store one generation's content; storing an id again changes nothing. Refused (nothing stored, no error) when the
   * account's content was cut (`cut`, `deleteAccount`) at or after the call started (`createdAt`): checked at the
   * write, against what every process sharing the store cut, so a call in flight when its account turned logging off
   * or deleted its content stores nothing.
   */
  put(content: StoredContent): Promise<void>;
  /** The account turned input & output logging off: content of its calls started at or before `at` is no longer stored. */
  cut(accountId: string, at: Date): Promise<void>;
  /** The stored content of each id, in the order asked; null where there is none (one query for the lot). */
  get(generationIds: readonly string[]): Promise<(StoredContent | null)[]>;
  /**
   * Delete every stored content of the account, its replays too; how many contents were deleted. Content and replays
   * of its calls started at or before `at` are no longer stored either (the calls in flight meanwhile).
   */
  deleteAccount(accountId: string, at: Date): Promise<number>;
  /** Delete what was created before `before`, and the cuts made before it; how many contents were deleted. */
  purgeBefore(before: Date): Promise<number>;
  /**
   * Store a generation's replay; storing an id again changes nothing. Refused (nothing stored) when the account
   * deleted its content at or after `callStartedAt`, the time its call claimed the Idempotency-Key.
   */
  putReplay(replay: StoredReplay, callStartedAt: string): Promise<void>;
  /** The replay stored for the generation, or null. */
  getReplay(generationId: string): Promise<StoredReplay | null>;
  /** Delete the replays stored before `before`; how many were deleted. */
  purgeReplaysBefore(before: Date): Promise<number>;
  close(): Promise<void>;
}

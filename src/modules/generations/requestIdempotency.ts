/**
 * An `Idempotency-Key` on a model call (the REST model routes, GraphQL sendPrompt / startGeneration): one generation per
 * Idempotency-Key and API key, so a client that retries a call it lost the answer to is never charged twice (Stripe's
 * semantics, reliability.md §2.2). Scoped by the API key, not only the account: another key of the account (an app's,
 * a limited one) that knows the key and the body must neither be replayed this key's answer nor learn, by a 409 or a
 * 422, that the key was used or what for, nor claim it first to hold up this key's call: it gets its own call.
 *
 * The claim: the `idem-{hash}` stream holds it. The first call appends `IdempotencyKeyClaimed` naming its generation
 * and the request's fingerprint (the event store's expected revision decides between concurrent calls, across
 * processes). A call that finds the key held with another fingerprint is another request under a used key (422); with
 * the same fingerprint it is a retry: it gets the holder's stored answer (REST), or a 409 naming the holder while it
 * runs, when nothing was stored, or after the replay window. A call refused before anything was charged gives the key
 * back (`IdempotencyKeyReleased`), so the same key may be sent again. Claims never expire: a key reused a year later
 * is refused, never charged. Claims written before fingerprints have none: a held one is a 409, whatever the request.
 *
 * The answer: kept in the content store (deletable, purged after the window; never in the event log), sealed with
 * AES-256-GCM under a key derived (HKDF-SHA256) from the server's master key and the account and Idempotency-Key: a
 * copy of the data, or an operator without the client's key, cannot read it.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { ContentStore } from '../../contentStore/contentStore.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { handleCommand, type Decider } from '../../eventStore/handleCommand.js';
import type { Logger } from '../../logger.js';
import { generationStream } from './generation.events.js';

export type IdempotencyEvent =
  | {
      readonly type: 'IdempotencyKeyClaimed';
      /**
       * `fingerprint`: the request's (requestFingerprint) under an HMAC keyed by the account and the Idempotency-Key,
       * so that the log, which is never deleted, cannot confirm a guessed prompt; absent on claims written before it.
       */
      readonly data: { readonly accountId: string; readonly generationId: string; readonly at: string; readonly fingerprint?: string };
    }
  | { readonly type: 'IdempotencyKeyReleased'; readonly data: { readonly generationId: string; readonly at: string } };

type IdempotencyCommand =
  | { readonly type: 'Claim'; readonly data: { readonly accountId: string; readonly generationId: string; readonly at: string; readonly fingerprint: string } }
  | { readonly type: 'Release'; readonly data: { readonly generationId: string; readonly at: string } };

/** Who holds a key: its generation, the fingerprint it was claimed with (null: an older claim, without one), and when. */
type Holder = { readonly generationId: string; readonly fingerprint: string | null; readonly at: string };

/** Who holds a key another call tried to claim, and whether that call is the same request (null: the claim cannot tell). */
export interface KeyHolder {
  readonly generationId: string;
  readonly sameRequest: boolean | null;
}

/** The holder, or null when none does (never claimed, or given back). */
type IdempotencyState = { readonly holder: Holder | null };

const idempotencyDecider: Decider<IdempotencyState, IdempotencyCommand, IdempotencyEvent> = {
  initialState: () => ({ holder: null }),
  evolve: (_state, event) => ({
    holder: event.type === 'IdempotencyKeyClaimed' ? { generationId: event.data.generationId, fingerprint: event.data.fingerprint ?? null, at: event.data.at } : null,
  }),
  decide: (command, state) => {
    if (command.type === 'Claim') return state.holder === null ? [{ type: 'IdempotencyKeyClaimed', data: command.data }] : [];
    return state.holder?.generationId === command.data.generationId ? [{ type: 'IdempotencyKeyReleased', data: command.data }] : [];
  },
};

/**
 * Whose Idempotency-Keys a claim is among: the calling API key's (null: the bootstrap admin key, which is none of the
 * store's, is the account's).
 */
export interface ClaimScope {
  readonly accountId: string;
  readonly keyId: string | null;
}

/**
 * One stream per API key and Idempotency-Key (the key's text, visible ASCII, holds no newline); the Idempotency-Key
 * itself (the caller's text) is not stored.
 */
const claimStream = ({ accountId, keyId }: ClaimScope, key: string): string =>
  `idem-${createHash('sha256').update(keyId === null ? `${accountId}\n${key}` : `${accountId}\n${keyId}\n${key}`).digest('hex').slice(0, 40)}`;

/** JSON with every object's keys sorted: the same request whatever its key order and whitespace. */
const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object).filter((k) => object[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
};

/** A request's fingerprint: sha256 over its face (the route, or the GraphQL mutation) and its parsed body, canonical. */
export const requestFingerprint = (face: string, body: unknown): string => createHash('sha256').update(`${face}\n${canonicalJson(body)}`).digest('hex');

export interface IdempotencyClaims {
  /** Claims the key among the scope's for the generation and request: null when it did, else who holds it. */
  claim(scope: ClaimScope, key: string, generationId: string, requestFingerprint: string): Promise<KeyHolder | null>;
  /** Gives the key back, when the generation still holds it (a call refused before anything was charged). */
  release(scope: ClaimScope, key: string, generationId: string): Promise<void>;
  /** Whether a holder's call has ended: its generation is recorded (answered, or failed after a charge). */
  ended(generationId: string): Promise<boolean>;
}

/** A key's holder as `abandoned` is asked about it: the account, its generation, when it claimed the key. */
export interface ClaimHolder {
  readonly accountId: string;
  readonly generationId: string;
  readonly claimedAt: string;
}

/**
 * Appended at `commit` durability: the reservation that follows a claim is made durable before any answer, and what a
 * crash keeps is a prefix of the log, so the claim is durable by then too.
 *
 * `abandoned`: whether a holder's call died with its process uncharged (see abandonedClaims). Its process never gave
 * the key back, so the next call that finds it held gives it back for it, then claims it: a key that charged nothing
 * may be sent again, whether its call failed or its process died. Asked only when a key is found held.
 */
export const createIdempotencyClaims = (eventStore: EventStore, now: () => Date, abandoned: (holder: ClaimHolder) => Promise<boolean> = async () => false): IdempotencyClaims => {
  const release = async (scope: ClaimScope, key: string, generationId: string) => {
    await handleCommand(eventStore, claimStream(scope, key), idempotencyDecider, { type: 'Release', data: { generationId, at: now().toISOString() } }, { durability: 'commit', maxRetries: 5 });
  };
  return {
    async claim(scope, key, generationId, request) {
      const { accountId } = scope;
      const fingerprint = createHmac('sha256', `${accountId}\n${key}`).update(request).digest('hex');
      const attempt = () =>
        handleCommand(eventStore, claimStream(scope, key), idempotencyDecider, { type: 'Claim', data: { accountId, generationId, at: now().toISOString(), fingerprint } }, { durability: 'commit', maxRetries: 5 });
      let { holder } = (await attempt()).state;
      if (holder !== null && holder.generationId !== generationId && (await abandoned({ accountId, generationId: holder.generationId, claimedAt: holder.at }))) {
        // Released only if that holder still holds it: of concurrent retries, one claims it, the others find it held.
        await release(scope, key, holder.generationId);
        ({ holder } = (await attempt()).state);
      }
      if (holder === null || holder.generationId === generationId) return null;
      return { generationId: holder.generationId, sameRequest: holder.fingerprint === null ? null : holder.fingerprint === fingerprint };
    },
    release,
    ended: async (generationId) => (await eventStore.readStream(generationStream(generationId), { maxCount: 1 })).length > 0,
  };
};

/**
 * Whether a claim's call can no longer be running and charged nothing, so its key is free again. It cannot be running
 * when it was claimed before this process started and this process is the store's only user (embedded mode: the
 * process that claimed it is gone), or longer ago than a reservation lives (the request timeout plus a margin: the
 * sweeper has expired its reservation). It charged nothing when its reservation is not open or settled (expired,
 * released, never made) and no record of it exists (a record means the call ended: its key stays, as its 409 says).
 */
export const abandonedClaims =
  (deps: {
    soleProcessSince: number | null;
    ttlMs: number;
    now: () => Date;
    reservationOf: (accountId: string, generationId: string) => Promise<string>;
    recorded: (generationId: string) => Promise<boolean>;
  }) =>
  async ({ accountId, generationId, claimedAt }: ClaimHolder): Promise<boolean> => {
    const claimedMs = Date.parse(claimedAt);
    const gone = (deps.soleProcessSince !== null && claimedMs < deps.soleProcessSince) || claimedMs < deps.now().getTime() - deps.ttlMs;
    if (!gone) return false;
    const outcome = await deps.reservationOf(accountId, generationId);
    if (outcome === 'open' || outcome === 'settled') return false;
    return !(await deps.recorded(generationId));
  };

// -----------------------------------------------------------------------------------------------------------------
// Stored answers

/** How long an answer is replayed: Stripe's 24 hours. Later, the same key and request is a 409 naming the generation. */
export const REPLAY_WINDOW_MS = 24 * 60 * 60 * 1_000;
/** The largest answer kept for replay (its body as sent); a larger one is not kept: a retry gets the 409. */
export const MAX_REPLAY_BYTES = 4 * 1024 * 1024;

/** An answer as the client was sent it: its status, the headers that matter, the body's bytes. */
export interface RecordedAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface IdempotentReplays {
  /** The answer stored for the generation under this account and key, if one was, in the window, and it opens. */
  find(accountId: string, key: string, generationId: string): Promise<RecordedAnswer | null>;
  /**
   * Stores the answer, sealed (a second store for the generation changes nothing); not when the account deleted its
   * content since its call claimed the key at `callStartedAt` (ms).
   */
  save(accountId: string, key: string, generationId: string, answer: RecordedAnswer, callStartedAt: number): Promise<void>;
}

const REPLAY_SALT = 'switchyard-idempotent-replay-v1';

/**
 * The sealed answers. Plain text: a 4-byte length, the status and headers as JSON, the body. The generation id is the
 * additional authenticated data, so a record copied onto another generation does not open.
 */
export const createIdempotentReplays = (deps: { store: Pick<ContentStore, 'putReplay' | 'getReplay'>; masterKey: string; now: () => Date; logger: Logger }): IdempotentReplays => {
  const keyOf = (accountId: string, key: string) => Buffer.from(hkdfSync('sha256', deps.masterKey, REPLAY_SALT, `${accountId}\n${key}`, 32));
  return {
    async find(accountId, key, generationId) {
      const stored = await deps.store.getReplay(generationId);
      if (!stored || stored.accountId !== accountId || deps.now().getTime() - Date.parse(stored.createdAt) >= REPLAY_WINDOW_MS) return null;
      try {
        const sealed = Buffer.from(stored.sealed, 'base64url');
        const decipher = createDecipheriv('aes-256-gcm', keyOf(accountId, key), sealed.subarray(0, 12));
        decipher.setAAD(Buffer.from(generationId));
        decipher.setAuthTag(sealed.subarray(12, 28));
        const plain = Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
        const length = plain.readUInt32BE(0);
        const head = JSON.parse(plain.subarray(4, 4 + length).toString('utf8')) as Omit<RecordedAnswer, 'body'>;
        return { status: head.status, headers: head.headers, body: plain.subarray(4 + length) };
      } catch (error) {
        deps.logger.warn({ err: error, generationId }, 'a stored Idempotency-Key answer does not open (another master key?): not replayed');
        return null;
      }
    },
    async save(accountId, key, generationId, answer, callStartedAt) {
      const head = Buffer.from(JSON.stringify({ status: answer.status, headers: answer.headers }));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(head.length);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', keyOf(accountId, key), iv);
      cipher.setAAD(Buffer.from(generationId));
      const data = Buffer.concat([cipher.update(length), cipher.update(head), cipher.update(answer.body), cipher.final()]);
      const sealed = Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64url');
      await deps.store.putReplay({ generationId, accountId, createdAt: deps.now().toISOString(), sealed }, new Date(callStartedAt).toISOString());
    },
  };
};

/**
 * Records the answer of a call that holds its key, as its client is sent it (REST: src/http/idempotentAnswer.ts);
 * GraphQL has none.
 */
export interface AnswerRecorder {
  /** The call holds its key: hand its answer, once whole, to `save` (the response ends once it is saved). */
  keep(save: (answer: RecordedAnswer) => Promise<void>): void;
  /** The key was given back: keep nothing. */
  drop(): void;
}

/** A call's Idempotency-Key, checked, with the request's fingerprint (requestFingerprint) and its answer's recorder. */
export interface RequestIdempotency {
  readonly key: string;
  readonly fingerprint: string;
  readonly answer?: AnswerRecorder;
}

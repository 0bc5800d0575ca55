/**
 * An `Idempotency-Key` on a model call (the REST model routes): one generation per key and account, so a client that
 * retries a call it lost the answer to is never charged twice. The `idem-{hash}` stream holds the claim: the first
 * call appends `IdempotencyKeyClaimed` naming its generation (the event store's expected revision decides between
 * concurrent calls, across processes); a call that finds the key held is refused with a 409 naming that generation,
 * whose record (`GET /api/v1/generation?id=`) tells what became of it. A call refused before anything was charged
 * (no credits, no provider, every provider failed before a token) gives the key back (`IdempotencyKeyReleased`), so
 * the same key may be sent again. Claims never expire: a key reused a year later is still refused, never charged.
 */
import { createHash } from 'node:crypto';
import type { EventStore } from '../../eventStore/eventStore.js';
import { handleCommand, type Decider } from '../../eventStore/handleCommand.js';

export type IdempotencyEvent =
  | { readonly type: 'IdempotencyKeyClaimed'; readonly data: { readonly accountId: string; readonly generationId: string; readonly at: string } }
  | { readonly type: 'IdempotencyKeyReleased'; readonly data: { readonly generationId: string; readonly at: string } };

type IdempotencyCommand =
  | { readonly type: 'Claim'; readonly data: { readonly accountId: string; readonly generationId: string; readonly at: string } }
  | { readonly type: 'Release'; readonly data: { readonly generationId: string; readonly at: string } };

/** The generation holding the key, or null when none does (never claimed, or given back). */
type IdempotencyState = { readonly holder: string | null };

const idempotencyDecider: Decider<IdempotencyState, IdempotencyCommand, IdempotencyEvent> = {
  initialState: () => ({ holder: null }),
  evolve: (_state, event) => ({ holder: event.type === 'IdempotencyKeyClaimed' ? event.data.generationId : null }),
  decide: (command, state) => {
    if (command.type === 'Claim') return state.holder === null ? [{ type: 'IdempotencyKeyClaimed', data: command.data }] : [];
    return state.holder === command.data.generationId ? [{ type: 'IdempotencyKeyReleased', data: command.data }] : [];
  },
};

/** One stream per account and key; the key itself (the caller's text) is not stored. */
const claimStream = (accountId: string, key: string): string => `idem-${createHash('sha256').update(`${accountId}\n${key}`).digest('hex').slice(0, 40)}`;

export interface IdempotencyClaims {
  /** Claims the key for the generation: null when it did, else the generation that holds it. */
  claim(accountId: string, key: string, generationId: string): Promise<string | null>;
  /** Gives the key back, when the generation still holds it (a call refused before anything was charged). */
  release(accountId: string, key: string, generationId: string): Promise<void>;
}

/**
 * Appended at `commit` durability: the reservation that follows a claim is made durable before any answer, and what a
 * crash keeps is a prefix of the log, so the claim is durable by then too.
 */
export const createIdempotencyClaims = (eventStore: EventStore, now: () => Date): IdempotencyClaims => ({
  async claim(accountId, key, generationId) {
    const result = await handleCommand(eventStore, claimStream(accountId, key), idempotencyDecider, { type: 'Claim', data: { accountId, generationId, at: now().toISOString() } }, { durability: 'commit', maxRetries: 5 });
    return result.state.holder === generationId ? null : result.state.holder;
  },
  async release(accountId, key, generationId) {
    await handleCommand(eventStore, claimStream(accountId, key), idempotencyDecider, { type: 'Release', data: { generationId, at: now().toISOString() } }, { durability: 'commit', maxRetries: 5 });
  },
});

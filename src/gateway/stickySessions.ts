/**
 * Sticky routing, as OpenRouter documents it: after a call that used the provider's prompt cache (its usage reports
 * cached or cache-written prompt tokens), the conversation keeps going to that provider, so its cache stays warm and
 * its cheaper cache reads apply. Per account, model and conversation (see `ParsedChat.session`); it lasts `ttlMs`
 * (10 minutes) of inactivity; it applies only to endpoints whose cache reads cost less than their prompt tokens. A
 * request that orders the endpoints itself (RoutePlan.ordered: `provider.order`, as OpenRouter says, and as well
 * `provider.sort`, `:floor`, `:nitro` and performance thresholds, which ask for an order just as plainly) is routed
 * by that order: the caller does not apply pins to it, nor pin after it.
 *
 * In memory, per process: losing it (a restart) only costs one cache miss. Bounded: the least recently used
 * conversation goes first.
 */
import type { ParsedChat } from './chatRequest.js';
import type { RouteTarget } from './routePlan.js';
import type { Usage } from './types.js';

export const STICKY_TTL_MS = 10 * 60_000;

export interface StickySessions {
  /** The targets with this conversation's endpoint first among its model's, when it has one that is still usable. */
  apply(targets: readonly RouteTarget[], accountId: string, parsed: ParsedChat, isOpen: (endpointId: string) => boolean): readonly RouteTarget[];
  /**
   * A generation completed on `target` with this usage (as billed): pin the conversation to it if it used the cache,
   * and its cache reads are cheaper. Not called for an answer its provider ended with an error mid-generation.
   */
  record(target: RouteTarget, accountId: string, parsed: ParsedChat, usage: Usage): void;
  readonly size: number;
}

const cachesCheaper = (target: RouteTarget) => target.endpoint.prices.cacheRead < target.endpoint.prices.prompt;
/** The call read from or wrote to the provider's prompt cache: a call that cached nothing has nothing to keep warm. */
const usedCache = (usage: Usage) => (usage.prompt_tokens_details?.cached_tokens ?? 0) > 0 || (usage.prompt_tokens_details?.cache_write_tokens ?? 0) > 0;

export const createStickySessions = (options: { now: () => number; ttlMs?: number; max?: number }): StickySessions => {
  const ttl = options.ttlMs ?? STICKY_TTL_MS;
  const max = options.max ?? 100_000;
  const pins = new Map<string, { endpointId: string; at: number }>();
  const keyOf = (accountId: string, model: string, parsed: ParsedChat) => `${accountId}\u0000${model}\u0000${parsed.session()}`;

  return {
    apply(targets, accountId, parsed, isOpen) {
      const first = targets[0];
      if (!first) return targets;
      const model = first.model;
      // No endpoint of the model caches cheaper: nothing can be pinned (and the conversation is not even hashed).
      if (!targets.some((t) => t.model === model && cachesCheaper(t))) return targets;
      const key = keyOf(accountId, model, parsed);
      const pin = pins.get(key);
      if (!pin) return targets;
      if (options.now() - pin.at > ttl) {
        pins.delete(key);
        return targets;
      }
      const index = targets.findIndex((t) => t.model === model && t.endpoint.id === pin.endpointId);
      if (index <= 0 || isOpen(pin.endpointId)) return targets;
      return [targets[index]!, ...targets.slice(0, index), ...targets.slice(index + 1)];
    },
    record(target, accountId, parsed, usage) {
      if (!cachesCheaper(target) || !usedCache(usage)) return;
      const key = keyOf(accountId, target.model, parsed);
      pins.delete(key); // re-inserted last: the Map's order is the recency order
      pins.set(key, { endpointId: target.endpoint.id, at: options.now() });
      if (pins.size > max) pins.delete(pins.keys().next().value!);
    },
    get size() {
      return pins.size;
    },
  };
};

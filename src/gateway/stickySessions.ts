/**
 * Sticky routing, as OpenRouter does it: a conversation keeps going to the provider that last served it, so the
 * provider's prompt cache stays warm and its cheaper cache reads apply. Per account, model and conversation (see
 * `ParsedChat.session`); it lasts `ttlMs` (10 minutes) of inactivity; it applies only to endpoints whose cache reads
 * cost less than their prompt tokens; a request that names a provider order or performance thresholds is routed by
 * them instead.
 *
 * In memory, per process: losing it (a restart) only costs one cache miss. Bounded: the least recently used
 * conversation goes first.
 */
import type { ParsedChat } from './chatRequest.js';
import type { RouteTarget } from './routePlan.js';

export const STICKY_TTL_MS = 10 * 60_000;

export interface StickySessions {
  /** The targets with this conversation's endpoint first among its model's, when it has one that is still usable. */
  apply(targets: readonly RouteTarget[], accountId: string, parsed: ParsedChat, isOpen: (endpointId: string) => boolean): readonly RouteTarget[];
  /** A generation completed on `target`: pin the conversation to it (if its cache reads are cheaper). */
  record(target: RouteTarget, accountId: string, parsed: ParsedChat): void;
  readonly size: number;
}

const cachesCheaper = (target: RouteTarget) => target.endpoint.prices.cacheRead < target.endpoint.prices.prompt;

export const createStickySessions = (options: { now: () => number; ttlMs?: number; max?: number }): StickySessions => {
  const ttl = options.ttlMs ?? STICKY_TTL_MS;
  const max = options.max ?? 100_000;
  const pins = new Map<string, { endpointId: string; at: number }>();
  /** Preferences that order the endpoints themselves (`provider.order`, `preferred_max_latency`, ...) win over a pin. */
  const routedByRequest = (parsed: ParsedChat) => parsed.provider !== null && (parsed.provider.order !== undefined || parsed.provider.maxLatencyMs !== undefined || parsed.provider.minThroughput !== undefined);
  const keyOf = (accountId: string, model: string, parsed: ParsedChat) => `${accountId}\u0000${model}\u0000${parsed.session()}`;

  return {
    apply(targets, accountId, parsed, isOpen) {
      const first = targets[0];
      if (!first || routedByRequest(parsed)) return targets;
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
    record(target, accountId, parsed) {
      if (routedByRequest(parsed) || !cachesCheaper(target)) return;
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

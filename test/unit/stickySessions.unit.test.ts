import { describe, expect, it } from 'vitest';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import type { RouteTarget } from '../../src/gateway/routePlan.js';
import { createStickySessions, STICKY_TTL_MS } from '../../src/gateway/stickySessions.js';
import type { Usage } from '../../src/gateway/types.js';

const target = (provider: string, prompt: number, cacheRead: number, model = 'm/x'): RouteTarget =>
  ({
    endpoint: { id: `${model}@${provider}`, prices: { prompt, completion: prompt, request: 0, reasoning: prompt, cacheRead, cacheWrite: prompt } },
    model,
    free: false,
    maxOutput: 100,
    apiKey: null,
  }) as unknown as RouteTarget;

const chat = (session: string, extra: Record<string, unknown> = {}) => parseChatBody({ model: 'm/x', messages: [{ role: 'user', content: 'hi' }], session_id: session, ...extra });
/** A call that read 50 prompt tokens from the provider's cache. */
const CACHED: Usage = { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, prompt_tokens_details: { cached_tokens: 50 } };

describe('sticky sessions', () => {
  const cheap = target('a', 100, 10);
  const dear = target('b', 200, 20);
  const healthy = () => false;

  it('puts the pinned endpoint first until the conversation has been idle for the TTL', () => {
    let now = 0;
    const sticky = createStickySessions({ now: () => now });
    sticky.record(dear, 'acc', chat('s'), CACHED);
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), healthy)).toEqual([dear, cheap]);
    expect(sticky.apply([cheap, dear], 'other-account', chat('s'), healthy)).toEqual([cheap, dear]);
    now += STICKY_TTL_MS - 1;
    sticky.record(dear, 'acc', chat('s'), CACHED); // used again: the TTL restarts
    now += STICKY_TTL_MS;
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), healthy)).toEqual([dear, cheap]);
    now += STICKY_TTL_MS + 1;
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), healthy)).toEqual([cheap, dear]);
    expect(sticky.size).toBe(0);
  });

  it('skips a pinned endpoint whose breaker is open, and one no longer among the targets', () => {
    const sticky = createStickySessions({ now: () => 0 });
    sticky.record(dear, 'acc', chat('s'), CACHED);
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), (id) => id === dear.endpoint.id)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap], 'acc', chat('s'), healthy)).toEqual([cheap]);
  });

  it('pins only after a call that read or wrote the cache, on an endpoint whose cache reads are cheaper', () => {
    const sticky = createStickySessions({ now: () => 0 });
    sticky.record(dear, 'acc', chat('none'), { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 });
    sticky.record(dear, 'acc', chat('zero'), { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, prompt_tokens_details: { cached_tokens: 0 } });
    expect(sticky.size).toBe(0);
    sticky.record(dear, 'acc', chat('written'), { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 90 } });
    expect(sticky.apply([cheap, dear], 'acc', chat('written'), healthy)).toEqual([dear, cheap]);
    sticky.record(target('c', 100, 100), 'acc', chat('flat'), CACHED);
    expect(sticky.size).toBe(1);
  });

  it('forgets the least recently used conversation beyond its bound', () => {
    const sticky = createStickySessions({ now: () => 0, max: 2 });
    for (const s of ['s1', 's2', 's3']) sticky.record(dear, 'acc', chat(s), CACHED);
    expect(sticky.size).toBe(2);
    expect(sticky.apply([cheap, dear], 'acc', chat('s1'), healthy)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap, dear], 'acc', chat('s3'), healthy)).toEqual([dear, cheap]);
  });
});

import { describe, expect, it } from 'vitest';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import type { RouteTarget } from '../../src/gateway/routePlan.js';
import { createStickySessions, STICKY_TTL_MS } from '../../src/gateway/stickySessions.js';

const target = (provider: string, prompt: number, cacheRead: number, model = 'm/x'): RouteTarget =>
  ({
    endpoint: { id: `${model}@${provider}`, prices: { prompt, completion: prompt, request: 0, reasoning: prompt, cacheRead, cacheWrite: prompt } },
    model,
    free: false,
    maxOutput: 100,
    apiKey: null,
  }) as unknown as RouteTarget;

const chat = (session: string, extra: Record<string, unknown> = {}) => parseChatBody({ model: 'm/x', messages: [{ role: 'user', content: 'hi' }], session_id: session, ...extra });

describe('sticky sessions', () => {
  const cheap = target('a', 100, 10);
  const dear = target('b', 200, 20);
  const healthy = () => false;

  it('puts the pinned endpoint first until the conversation has been idle for the TTL', () => {
    let now = 0;
    const sticky = createStickySessions({ now: () => now });
    sticky.record(dear, 'acc', chat('s'));
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), healthy)).toEqual([dear, cheap]);
    expect(sticky.apply([cheap, dear], 'other-account', chat('s'), healthy)).toEqual([cheap, dear]);
    now += STICKY_TTL_MS - 1;
    sticky.record(dear, 'acc', chat('s')); // used again: the TTL restarts
    now += STICKY_TTL_MS;
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), healthy)).toEqual([dear, cheap]);
    now += STICKY_TTL_MS + 1;
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), healthy)).toEqual([cheap, dear]);
    expect(sticky.size).toBe(0);
  });

  it('skips a pinned endpoint whose breaker is open, one no longer among the targets, a provider order and performance thresholds', () => {
    const sticky = createStickySessions({ now: () => 0 });
    sticky.record(dear, 'acc', chat('s'));
    expect(sticky.apply([cheap, dear], 'acc', chat('s'), (id) => id === dear.endpoint.id)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap], 'acc', chat('s'), healthy)).toEqual([cheap]);
    expect(sticky.apply([cheap, dear], 'acc', chat('s', { provider: { order: ['a'] } }), healthy)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap, dear], 'acc', chat('s', { provider: { preferred_max_latency: 1 } }), healthy)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap, dear], 'acc', chat('s', { provider: { preferred_min_throughput: { p90: 20 } } }), healthy)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap, dear], 'acc', chat('s', { provider: { sort: 'price' } }), healthy)).toEqual([dear, cheap]);
  });

  it('pins only endpoints whose cache reads are cheaper, and forgets the least recently used beyond its bound', () => {
    const sticky = createStickySessions({ now: () => 0, max: 2 });
    sticky.record(target('c', 100, 100), 'acc', chat('s'));
    expect(sticky.size).toBe(0);
    for (const s of ['s1', 's2', 's3']) sticky.record(dear, 'acc', chat(s));
    expect(sticky.size).toBe(2);
    expect(sticky.apply([cheap, dear], 'acc', chat('s1'), healthy)).toEqual([cheap, dear]);
    expect(sticky.apply([cheap, dear], 'acc', chat('s3'), healthy)).toEqual([dear, cheap]);
  });
});

import { describe, expect, it } from 'vitest';
import type { EndpointDoc, ModelDoc } from '../../projections/catalog.js';
import { findListing, queryModels } from '../../src/modules/catalog/modelListing.js';

const endpoint = (provider: string, model: string, price: number, extra: Partial<EndpointDoc> = {}): EndpointDoc => ({
  id: `${model}@${provider}`,
  provider,
  upstreamModel: model,
  prices: { prompt: price, completion: price, request: 0, reasoning: price, cacheRead: price, cacheWrite: price },
  contextLength: 8000,
  maxOutput: 1000,
  quantization: null,
  supportedParameters: ['temperature'],
  variants: [],
  status: 'active',
  disabledByAdmin: false,
  publishedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  ...extra,
});
const model = (id: string, endpoints: EndpointDoc[], extra: Partial<ModelDoc> = {}): ModelDoc => ({
  _id: id,
  published: true,
  name: id,
  description: '',
  contextLength: 8000,
  inputModalities: ['text'],
  outputModalities: ['text'],
  tokenizer: 'Other',
  createdAt: '2026-01-01T00:00:00.000Z',
  retired: false,
  ownerAccountId: 'acc_root',
  openToProviders: false,
  endpoints,
  ...extra,
});

const docs = [
  model('a/dear', [endpoint('p', 'a/dear', 900, { supportedParameters: ['tools'] }), endpoint('f', 'a/dear', 0, { variants: ['free'] })]),
  model('a/cheap', [endpoint('p', 'a/cheap', 100)], { createdAt: '2026-02-01T00:00:00.000Z' }),
  model('a/off', [endpoint('p', 'a/off', 1, { status: 'disabled' })]),
  model('a/gone', [endpoint('p', 'a/gone', 1)], { retired: true }),
];
const none = () => undefined;
const serving = () => 'now' as const;
const ids = (q: Parameters<typeof queryModels>[1]) => queryModels(docs, q, none, serving).map((m) => m.id);

describe('the one model listing', () => {
  it('lists a free-tagged endpoint that carries a price (repriced before changePrice refused it) with the paid model, as routing serves it', () => {
    const repriced = [model('a/mixed', [endpoint('p', 'a/mixed', 900), endpoint('f', 'a/mixed', 1, { variants: ['free'] })])];
    const listed = queryModels(repriced, { freeVariants: 'separate', sort: 'id' }, none, serving);
    expect(listed.map((m) => [m.id, m.endpoints.map((e) => e.provider)])).toEqual([['a/mixed', ['f', 'p']]]);
  });

  it('lists routable models only: free endpoints apart for OpenRouter, merged for GraphQL', () => {
    expect(ids({ freeVariants: 'separate', sort: 'id' })).toEqual(['a/cheap', 'a/dear', 'a/dear:free']);
    expect(ids({ freeVariants: 'merged', sort: 'id' })).toEqual(['a/cheap', 'a/dear']);
  });

  it('filters on the listing’s own endpoints, with the same rule in both shapes', () => {
    expect(ids({ freeVariants: 'separate', sort: 'id', supportedParameters: ['tools'] })).toEqual(['a/dear']);
    expect(ids({ freeVariants: 'merged', sort: 'id', supportedParameters: ['tools'] })).toEqual(['a/dear']);
    expect(ids({ freeVariants: 'separate', sort: 'id', maxPromptPrice: 100 })).toEqual(['a/cheap', 'a/dear:free']);
    expect(ids({ freeVariants: 'separate', sort: 'id', provider: 'f' })).toEqual(['a/dear:free']);
    expect(ids({ freeVariants: 'merged', sort: 'id', outputModalities: ['image'] })).toEqual([]);
  });

  it('price limits hold on one endpoint: cheap prompts on one and cheap completions on another do not match both', () => {
    const split = model('b/split', [
      endpoint('p', 'b/split', 0, { prices: { prompt: 10, completion: 900, request: 0, reasoning: 900, cacheRead: 10, cacheWrite: 10 } }),
      endpoint('q', 'b/split', 0, { prices: { prompt: 900, completion: 10, request: 0, reasoning: 10, cacheRead: 900, cacheWrite: 900 } }),
    ]);
    const query = (q: Partial<Parameters<typeof queryModels>[1]>) => queryModels([split], { freeVariants: 'merged', sort: 'id', ...q }, none, serving).map((m) => m.id);
    expect(query({ maxPromptPrice: 10 })).toEqual(['b/split']);
    expect(query({ maxCompletionPrice: 10 })).toEqual(['b/split']);
    expect(query({ maxPromptPrice: 10, maxCompletionPrice: 10 })).toEqual([]);
    expect(query({ maxPromptPrice: 900, maxCompletionPrice: 10 })).toEqual(['b/split']);
  });

  it('sorts by the cheapest endpoint of each listing, newest first, ties by id', () => {
    expect(ids({ freeVariants: 'separate', sort: 'pricing-low-to-high' })).toEqual(['a/dear:free', 'a/cheap', 'a/dear']);
    expect(ids({ freeVariants: 'merged', sort: 'pricing-high-to-low' })).toEqual(['a/cheap', 'a/dear']);
    expect(ids({ freeVariants: 'merged', sort: 'newest' })).toEqual(['a/cheap', 'a/dear']);
  });

  it('ranks by the last week’s requests or tokens: a :free listing by its own, a merged listing by both', () => {
    const week: Record<string, { requests: number; tokens: number }> = { 'a/dear': { requests: 1, tokens: 900 }, 'a/dear:free': { requests: 5, tokens: 50 }, 'a/cheap': { requests: 3, tokens: 300 } };
    const ranked = (q: Parameters<typeof queryModels>[1]) => queryModels(docs, q, none, serving, (id) => week[id]).map((m) => m.id);
    expect(ranked({ freeVariants: 'separate', sort: 'most-popular' })).toEqual(['a/dear:free', 'a/cheap', 'a/dear']);
    expect(ranked({ freeVariants: 'separate', sort: 'top-weekly' })).toEqual(['a/dear', 'a/cheap', 'a/dear:free']);
    expect(ranked({ freeVariants: 'merged', sort: 'most-popular' })).toEqual(['a/dear', 'a/cheap']);
    expect(ranked({ freeVariants: 'merged', sort: 'top-weekly' })).toEqual(['a/dear', 'a/cheap']);
    // Without usage every listing ties: id order.
    expect(ids({ freeVariants: 'merged', sort: 'top-weekly' })).toEqual(['a/cheap', 'a/dear']);
  });

  it('finds a model’s listing or its :free one, and nothing for a retired model', () => {
    expect(findListing(docs[0]!, true, serving)).toMatchObject({ id: 'a/dear:free', free: true });
    expect(findListing(docs[0]!, true, serving)?.endpoints.map((e) => e.provider)).toEqual(['f']);
    expect(findListing(docs[0]!, false, serving)?.id).toBe('a/dear');
    expect(findListing(docs[3]!, false, serving)).toBeNull();
  });

  it('hides models none of whose endpoints can ever serve as configured, and lists them flagged when asked; serving endpoints come first', () => {
    const keyless = (id: string) => (id === 'a/dear@p' || id === 'a/cheap@p' ? 'never' : 'now');
    const listed = (includeUnavailable: boolean) => queryModels(docs, { freeVariants: 'separate', sort: 'id', includeUnavailable }, none, keyless).map((m) => [m.id, m.available, m.endpoints.map((e) => e.provider)]);
    expect(listed(false)).toEqual([['a/dear:free', true, ['f']]]);
    expect(listed(true)).toEqual([
      ['a/cheap', false, ['p']],
      ['a/dear', false, ['p']],
      ['a/dear:free', true, ['f']],
    ]);
    // Merged: only the endpoint that can serve is shown (the free one never can).
    const merged = queryModels([docs[0]!], { freeVariants: 'merged', sort: 'id' }, none, (id) => (id === 'a/dear@p' ? 'now' : 'never'));
    expect(merged.map((m) => [m.available, m.endpoints.map((e) => e.provider)])).toEqual([[true, ['p']]]);
    expect(findListing(docs[1]!, false, keyless)).toMatchObject({ available: false, endpoints: [{ provider: 'p' }] });
  });

  it('keeps listing a model whose endpoints are only down for now (circuit breaker open), flagged unavailable, after those serving', () => {
    const state = { 'a/cheap@p': 'later', 'a/dear@p': 'later', 'a/dear@f': 'now' } as const;
    const serves = (id: string) => state[id as keyof typeof state] ?? 'never';
    const listed = queryModels(docs, { freeVariants: 'merged', sort: 'id' }, none, serves).map((m) => [m.id, m.available, m.endpoints.map((e) => e.provider)]);
    expect(listed).toEqual([
      ['a/cheap', false, ['p']],
      ['a/dear', true, ['f', 'p']],
    ]);
  });
});

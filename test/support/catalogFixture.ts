/** An in-memory Catalog for unit tests of routing and the gateway (no event store). */
import type { AutoRule } from '../../src/modules/catalog/autoRouter.events.js';
import type { Catalog, EndpointEntry, ModelEntry, ProviderEntry } from '../../src/modules/catalog/catalog.js';
import type { ModelSpec } from '../../src/modules/catalog/model.events.js';
import type { DataPolicy, EndpointPrices, ProviderProtocol, VariantTag } from '../../src/modules/catalog/provider.events.js';

export interface ProviderFixture {
  slug: string;
  name?: string;
  protocol?: ProviderProtocol;
  problem?: string | null;
  /** Default `http://127.0.0.1:1/v1` (nothing listens). */
  baseUrl?: string;
  /** Default null (unstated). */
  dataPolicy?: DataPolicy | null;
  cancellable?: boolean;
}

export interface EndpointFixture {
  model: string;
  provider: string;
  prices?: Partial<EndpointPrices>;
  contextLength?: number;
  maxOutput?: number;
  quantization?: string | null;
  supportedParameters?: string[];
  variants?: VariantTag[];
}

export const prices = (p: Partial<EndpointPrices> = {}): EndpointPrices => {
  const prompt = p.prompt ?? 100;
  const completion = p.completion ?? 200;
  return { prompt, completion, request: p.request ?? 0, reasoning: p.reasoning ?? completion, cacheRead: p.cacheRead ?? prompt, cacheWrite: p.cacheWrite ?? prompt };
};

export const catalogOf = (spec: { providers: ProviderFixture[]; endpoints: EndpointFixture[]; models?: Partial<ModelSpec>[]; rules?: AutoRule[] }): Catalog => {
  const providers = new Map<string, ProviderEntry>(
    spec.providers.map((p) => [
      p.slug,
      {
        slug: p.slug,
        name: p.name ?? p.slug,
        protocol: p.protocol ?? 'openai',
        baseUrl: p.baseUrl ?? 'http://127.0.0.1:1/v1',
        credential: null,
        headers: {},
        ownerAccountId: 'acc_root',
        trusted: true,
        dataPolicy: p.dataPolicy ?? null,
        cancellable: p.cancellable ?? true,
        byok: false,
        registeredAt: '2026-01-01T00:00:00.000Z',
        auth: () => ({ secret: p.problem ? null : 'key', problem: p.problem ?? null }),
      },
    ]),
  );
  const endpoints: EndpointEntry[] = spec.endpoints.map((e) => {
    const variants = e.variants ?? [];
    const endpointPrices = prices(e.prices);
    return {
      id: `${e.model}@${e.provider}`,
      model: e.model,
      provider: providers.get(e.provider)!,
      upstreamModel: e.model.split('/')[1]!,
      prices: endpointPrices,
      contextLength: e.contextLength ?? 8_000,
      maxOutput: e.maxOutput ?? 1_000,
      quantization: e.quantization ?? null,
      supportedParameters: new Set(e.supportedParameters ?? ['max_tokens', 'temperature', 'tools', 'response_format']),
      variants,
      status: 'active',
      free: variants.includes('free'),
      publishedAt: '2026-01-01T00:00:00.000Z',
    };
  });
  const modelIds = new Set([...endpoints.map((e) => e.model), ...(spec.models ?? []).map((m) => m.modelId!)]);
  const models = new Map<string, ModelEntry>(
    [...modelIds].map((id) => {
      const given = spec.models?.find((m) => m.modelId === id) ?? {};
      return [
        id,
        {
          spec: { modelId: id, name: id, description: '', contextLength: 8_000, inputModalities: ['text'], outputModalities: ['text'], tokenizer: 'Other', ...given },
          ownerAccountId: 'acc_root',
          retired: false,
          publishedAt: '2026-01-01T00:00:00.000Z',
        },
      ];
    }),
  );
  return {
    start: async () => undefined,
    stop: async () => undefined,
    waitFor: async () => true,
    status: () => ({ position: 0, state: 'live', failures: 0, lastError: null }),
    provider: (slug) => providers.get(slug),
    providers: () => [...providers.values()],
    model: (id) => models.get(id),
    models: () => [...models.values()],
    endpoints: (id) => endpoints.filter((e) => e.model === id),
    endpoint: (id) => endpoints.find((e) => e.id === id),
    activeEndpointsOwnedBy: (accountId) => endpoints.filter((e) => e.status === 'active' && e.provider.ownerAccountId === accountId).length,
    autoRules: () => spec.rules ?? null,
    alias: () => undefined,
    aliases: () => [],
  };
};

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConflictError } from '../../errors.js';
import type { EventStore } from '../../eventStore/eventStore.js';
import { handleCommand } from '../../eventStore/handleCommand.js';
import { adapterFor } from '../../gateway/providers/registry.js';
import { usdPerMillionToNanoPerToken, usdToNano } from '../ledger/money.js';
import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import { autoRouterDecider, autoRulesSchema } from './autoRouter.decider.js';
import { AUTO_ROUTER_STREAM } from './autoRouter.events.js';
import type { Catalog } from './catalog.js';
import { modelDecider } from './model.decider.js';
import { MODALITIES, modelStream } from './model.events.js';
import { providerDecider, type ProviderCommand } from './provider.decider.js';
import { DATA_POLICIES, PROTOCOLS, VARIANT_TAGS, endpointId, providerStream, type EndpointPrices } from './provider.events.js';
import { endpointParameters } from '../../gateway/parameterNames.js';

/** The seed shipped with Switchyard (documented in seed/SEED.md). */
export const DEFAULT_SEED_FILE = fileURLToPath(new URL('./seed/catalog.seed.json', import.meta.url));

const usd = z.string().regex(/^\d+(\.\d+)?$/, 'must be a decimal string such as "0.15"');

const seedSchema = z.object({
  providers: z.array(
    z.object({
      slug: z.string(),
      name: z.string(),
      protocol: z.enum(PROTOCOLS),
      baseUrl: z.string(),
      credentialEnv: z.string().nullable().default(null),
      headers: z.record(z.string(), z.string()).default({}),
      /** Stated when the seed registers the provider (never again: an admin may change or withdraw it). */
      dataPolicy: z.enum(DATA_POLICIES).nullable().default(null),
      /** False for a provider that keeps generating (and billing) after a cancelled stream: stated once, like dataPolicy. */
      cancellable: z.boolean().default(true),
      /** Accounts may bring their own key for it (BYOK): the vendors' own APIs, whose URLs the seed fixes. Stated once, like dataPolicy. */
      byok: z.boolean().default(false),
      endpoints: z.array(
        z.object({
          model: z.string(),
          upstreamModel: z.string(),
          price: z
            .object({ prompt: usd, completion: usd, request: usd, reasoning: usd, cacheRead: usd, cacheWrite: usd })
            .partial()
            .default({}),
          contextLength: z.number().int().positive(),
          maxOutput: z.number().int().positive(),
          quantization: z.string().nullable().default(null),
          supportedParameters: z.array(z.string()).optional(),
          variants: z.array(z.enum(VARIANT_TAGS)).default([]),
        }),
      ),
    }),
  ),
  models: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      description: z.string().default(''),
      contextLength: z.number().int().positive(),
      inputModalities: z.array(z.enum(MODALITIES)).default(['text']),
      outputModalities: z.array(z.enum(MODALITIES)).default(['text']),
      tokenizer: z.string().default('Other'),
    }),
  ),
  autoRouter: z.object({ rules: autoRulesSchema }).optional(),
});

export type CatalogSeed = z.infer<typeof seedSchema>;

/** Seed prices are USD per million tokens (and USD per request); events carry nano-dollars per token. */
export const seedPrices = (price: CatalogSeed['providers'][number]['endpoints'][number]['price'], where: string): EndpointPrices => {
  const perToken = (value: string | undefined, field: string) => (value === undefined ? undefined : usdPerMillionToNanoPerToken(value, `${where}.price.${field}`));
  const prompt = perToken(price.prompt, 'prompt') ?? 0;
  const completion = perToken(price.completion, 'completion') ?? 0;
  return {
    prompt,
    completion,
    request: price.request === undefined ? 0 : usdToNano(price.request, `${where}.price.request`),
    reasoning: perToken(price.reasoning, 'reasoning') ?? completion,
    cacheRead: perToken(price.cacheRead, 'cacheRead') ?? prompt,
    cacheWrite: perToken(price.cacheWrite, 'cacheWrite') ?? prompt,
  };
};

export const readSeed = async (file: string): Promise<CatalogSeed> => {
  const text = await readFile(file, 'utf8');
  const parsed = seedSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`Catalog seed ${file} is invalid:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  return parsed.data;
};

/**
 * Append whatever the seed has and the catalog lacks: providers, endpoints, models, and the auto-router rules if
 * none are set. Existing entries are never changed (events are the truth; change them through the API), so this
 * runs on every start and only does work the first time or after the seed file gained entries.
 * Returns the position of the last event written (0 when nothing was).
 */
export const applySeed = async (deps: { eventStore: EventStore; catalog: Catalog; seed: CatalogSeed; now: () => Date }): Promise<number> => {
  const { eventStore, catalog, seed } = deps;
  const at = deps.now().toISOString();
  const metadata = { actor: 'system:seed', correlationId: 'catalog-seed', at };
  // The root admin registers the seed: it owns the seeded models, and as an admin needs no model access to publish.
  const system = { accountId: ROOT_ACCOUNT_ID, admin: true };
  let last = 0;
  const track = (position: number | null) => {
    if (position !== null) last = Math.max(last, position);
  };
  // Another process starting on the same store may seed the same entry first: that is fine.
  const tolerant = async (write: () => Promise<{ position: number | null }>) => {
    try {
      track((await write()).position);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  };

  for (const model of seed.models) {
    if (catalog.model(model.id)) continue;
    const { id, ...rest } = model;
    await tolerant(() => handleCommand(eventStore, modelStream(id), modelDecider, { type: 'PublishModel', data: { modelId: id, ...rest, at, actor: system, provider: null } }, { metadata }));
  }
  for (const provider of seed.providers) {
    if (!catalog.provider(provider.slug)) {
      await tolerant(() =>
        handleCommand(
          eventStore,
          providerStream(provider.slug),
          providerDecider,
          {
            type: 'RegisterProvider',
            data: {
              slug: provider.slug,
              name: provider.name,
              protocol: provider.protocol,
              baseUrl: provider.baseUrl,
              credential: provider.credentialEnv ? { env: provider.credentialEnv } : null,
              headers: provider.headers,
              ownerAccountId: ROOT_ACCOUNT_ID,
              trusted: true,
              at,
            },
          },
          { metadata },
        ),
      );
      const { slug, dataPolicy, cancellable, byok } = provider;
      /** A setting the seed states once, when it registers the provider. */
      const setting = (command: ProviderCommand) => tolerant(() => handleCommand(eventStore, providerStream(slug), providerDecider, command, { metadata }));
      if (dataPolicy !== null) await setting({ type: 'SetDataPolicy', data: { providerSlug: slug, actor: system, dataPolicy, at } });
      if (!cancellable) await setting({ type: 'SetCancellation', data: { providerSlug: slug, actor: system, cancellable, freeModels: [], at } });
      if (byok) await setting({ type: 'SetByok', data: { providerSlug: slug, actor: system, allowed: true, at } });
    }
    for (const endpoint of provider.endpoints) {
      if (catalog.endpoint(endpointId(endpoint.model, provider.slug))) continue;
      const where = `${provider.slug}.${endpoint.model}`;
      const spec = {
        model: endpoint.model,
        upstreamModel: endpoint.upstreamModel,
        prices: seedPrices(endpoint.price, where),
        contextLength: endpoint.contextLength,
        maxOutput: endpoint.maxOutput,
        quantization: endpoint.quantization,
        supportedParameters: endpointParameters(endpoint.supportedParameters ?? adapterFor(provider.protocol).supportedParameters),
        variants: endpoint.variants,
      };
      await tolerant(() => handleCommand(eventStore, providerStream(provider.slug), providerDecider, { type: 'PublishEndpoint', data: { providerSlug: provider.slug, actor: system, spec, model: null, at } }, { metadata }));
    }
  }
  if (seed.autoRouter && catalog.autoRules() === null) {
    const { rules } = seed.autoRouter;
    await tolerant(() => handleCommand(eventStore, AUTO_ROUTER_STREAM, autoRouterDecider, { type: 'SetAutoRouterRules', data: { rules, at } }, { metadata }));
  }
  return last;
};

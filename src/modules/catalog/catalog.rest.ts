/**
 * The catalog's OpenRouter-compatible REST routes: models (JSON and RSS), their count, one model, its endpoints, and
 * the providers. Thin: parse the query string into the catalog API's one model query, shape OpenRouter's JSON.
 */
import type { ServerResponse } from 'node:http';
import type { EndpointDoc } from '../../../projections/catalog.js';
import { ForbiddenError, UnauthenticatedError } from '../../errors.js';
import { GatewayError } from '../../gateway/gatewayErrors.js';
import { requirePrincipal, sendJson, type RestRequest, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { Principal } from '../auth/principal.js';
import type { ReasoningControls } from '../../gateway/providers/adapter.js';
import { usdDecimal } from '../ledger/money.js';
import type { CatalogApi, EndpointDetail } from './catalog.api.js';
import { endpointTag } from './endpointTag.js';
import { contextLengthOf, type ModelListing, type ModelQuery, type ModelSort } from './modelListing.js';

const isoToUnix = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** OpenRouter's pricing strings: USD per token, exact ("0" for zero). */
const pricingJson = (prices: EndpointDoc['prices'] | null) => ({
  prompt: usdDecimal(prices?.prompt ?? 0),
  completion: usdDecimal(prices?.completion ?? 0),
  request: usdDecimal(prices?.request ?? 0),
  image: '0',
  web_search: '0',
  internal_reasoning: usdDecimal(prices?.reasoning ?? 0),
  input_cache_read: usdDecimal(prices?.cacheRead ?? 0),
  input_cache_write: usdDecimal(prices?.cacheWrite ?? 0),
  // Conditional prices (long-context tiers, peak hours): an endpoint has one price.
  overrides: [],
});

/**
 * OpenRouter's `reasoning` of a model: null unless an endpoint takes the parameter. Switchyard sets no reasoning
 * defaults (it is off unless the request asks) and requires it of no model.
 */
const reasoningJson = (controls: ReasoningControls | null) =>
  controls && { supported_efforts: controls.efforts, default_effort: null, default_enabled: false, supports_max_tokens: controls.maxTokens, mandatory: false };

const modelJson = (m: ModelListing, reasoning: ReasoningControls | null) => {
  const top = m.endpoints[0]!;
  const supported = [...new Set(m.endpoints.flatMap((e) => e.supportedParameters))].sort();
  return {
    id: m.id,
    canonical_slug: m.doc._id,
    name: m.free ? `${m.doc.name} (free)` : m.doc.name,
    created: isoToUnix(m.doc.createdAt),
    description: m.doc.description,
    context_length: contextLengthOf(m),
    architecture: {
      modality: `${m.doc.inputModalities.join('+')}->${m.doc.outputModalities.join('+')}`,
      input_modalities: m.doc.inputModalities,
      output_modalities: m.doc.outputModalities,
      tokenizer: m.doc.tokenizer,
      instruct_type: null,
    },
    pricing: pricingJson(top.prices),
    top_provider: { context_length: top.contextLength, max_completion_tokens: top.maxOutput, is_moderated: false },
    per_request_limits: null,
    supported_parameters: supported,
    default_parameters: {},
    expiration_date: null,
    reasoning: reasoningJson(reasoning),
    // Switchyard's addition: some endpoint can serve it now (credentials present, circuit breaker not open).
    available: m.available,
  };
};

const xmlEscape = (text: string) => text.replace(/[<>&'"]/g, (c) => `&${({ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' } as Record<string, string>)[c]};`);

/** `?use_rss=true`: the same list as an RSS 2.0 feed, newest first, for feed readers watching for new models. */
const sendModelsRss = (res: ServerResponse, models: readonly ModelListing[], origin: string) => {
  const items = [...models]
    .sort((a, b) => Date.parse(b.doc.createdAt) - Date.parse(a.doc.createdAt) || a.id.localeCompare(b.id))
    .map((m) => {
      const json = modelJson(m, null); // the feed shows no reasoning
      const link = `${origin}/api/v1/model/${m.id}`;
      const description = `${json.description} Context: ${json.context_length} tokens. Prompt: $${json.pricing.prompt}/token, completion: $${json.pricing.completion}/token.`;
      return [
        '    <item>',
        `      <title>${xmlEscape(json.name)}</title>`,
        `      <link>${xmlEscape(link)}</link>`,
        `      <guid isPermaLink="false">${xmlEscape(m.id)}</guid>`,
        `      <pubDate>${new Date(m.doc.createdAt).toUTCString()}</pubDate>`,
        `      <description>${xmlEscape(description)}</description>`,
        '    </item>',
      ].join('\n');
    });
  const xml = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<rss version="2.0">',
    '  <channel>',
    '    <title>Switchyard models</title>',
    `    <link>${xmlEscape(`${origin}/api/v1/models`)}</link>`,
    '    <description>Models available through this Switchyard gateway</description>',
    ...items,
    '  </channel>',
    '</rss>',
    '',
  ].join('\n');
  res.writeHead(200, { 'content-type': 'application/rss+xml; charset=utf-8', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
};

/** OpenRouter's `sort` values (its `pricing-…` names are the query's). */
const REST_SORTS = ['pricing-low-to-high', 'pricing-high-to-low', 'context-high-to-low', 'throughput-high-to-low', 'latency-low-to-high', 'newest', 'most-popular', 'top-weekly'] as const satisfies readonly ModelSort[];

const intParam = (url: URL, name: string, fallback: number, min: number, max: number): number => {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new GatewayError(400, 'invalid_request', `${name} must be an integer between ${min} and ${max}`, { param: name });
  return n;
};

const listParam = (url: URL, name: string, fallback = '') =>
  (url.searchParams.get(name) ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const boolParam = (url: URL, name: string): boolean => {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new GatewayError(400, 'invalid_request', `${name} must be true or false`, { param: name });
};

/**
 * OpenRouter's query string as the catalog's model query: `output_modalities` (default text; `all`),
 * `supported_parameters`, `sort`; and Switchyard's `include_unavailable` (models no endpoint can serve now).
 */
const modelQueryOf = (url: URL): ModelQuery => {
  const sort = url.searchParams.get('sort');
  if (sort !== null && !(REST_SORTS as readonly string[]).includes(sort)) throw new GatewayError(400, 'invalid_request', `sort must be one of ${REST_SORTS.join(', ')}`, { param: 'sort' });
  const outputs = listParam(url, 'output_modalities', 'text');
  return {
    freeVariants: 'separate',
    includeUnavailable: boolParam(url, 'include_unavailable'),
    ...(!outputs.includes('all') && { outputModalities: outputs }),
    supportedParameters: listParam(url, 'supported_parameters'),
    sort: (sort as ModelSort | null) ?? 'id',
  };
};

export const catalogRoutes = (deps: { catalog: CatalogApi; directory: Pick<AuthDirectory, 'authenticate'> }): Route[] => {
  const { catalog } = deps;
  /**
   * The caller of a public route, when it says who it is: what it is shown follows its account (its own provider keys,
   * its providers' credential problems). An unknown key, or one that calls no model (a management key), reads as
   * anonymous: a public route never refuses a caller.
   */
  const optionalPrincipal = (req: RestRequest['req']): Principal | null => {
    if (!req.headers.authorization) return null;
    try {
      return requirePrincipal(deps.directory, req);
    } catch (error) {
      if (error instanceof UnauthenticatedError || error instanceof ForbiddenError) return null;
      throw error;
    }
  };

  const loadModel = async (author: string, slug: string, viewer: Principal | null): Promise<ModelListing> => {
    const requested = `${author}/${slug}`;
    const listing = await catalog.findListing(requested, viewer);
    if (!listing) throw new GatewayError(404, 'not_found', `Model ${requested} not found`, { model: requested });
    return listing;
  };

  const sendModel = async (req: RestRequest['req'], res: ServerResponse, id: string) => {
    const slash = id.indexOf('/');
    if (slash <= 0 || slash === id.length - 1) throw new GatewayError(404, 'not_found', `Model ${id} not found (a model id is author/slug)`, { model: id });
    const model = await loadModel(id.slice(0, slash), id.slice(slash + 1), optionalPrincipal(req));
    if (model.endpoints.length === 0) throw new GatewayError(404, 'not_found', `Model ${model.id} has no endpoints`, { model: model.id });
    sendJson(res, 200, { ...modelJson(model, catalog.reasoningOf(model)), object: 'model', owned_by: model.doc._id.slice(0, model.doc._id.indexOf('/')) });
  };

  /** One endpoint as OpenRouter's endpoints API shows it, with Switchyard's additions. */
  const endpointJson = (model: ModelListing, { endpoint: e, provider, stats, circuitBreaker, available, unavailableReason }: EndpointDetail) => ({
    name: `${provider?.name ?? e.provider} | ${model.id}`,
    model_id: model.doc._id,
    model_name: model.doc.name,
    context_length: e.contextLength,
    pricing: pricingJson(e.prices),
    provider_name: provider?.name ?? e.provider,
    tag: endpointTag(e.provider, e.quantization),
    quantization: e.quantization ?? 'unknown',
    max_completion_tokens: e.maxOutput,
    max_prompt_tokens: e.contextLength,
    supported_parameters: e.supportedParameters,
    status: available ? 0 : -1,
    uptime_last_5m: stats.uptime5m,
    uptime_last_30m: stats.uptime30m,
    uptime_last_1d: stats.uptime1d,
    latency_last_30m: stats.latency30m,
    throughput_last_30m: stats.throughput30m,
    supports_implicit_caching: false,
    // Switchyard's additions.
    data_policy: provider?.dataPolicy ?? null,
    cancellable: provider?.cancellable ?? true,
    error_rate_last_30m: stats.errorRate30m,
    requests_last_30m: stats.requests30m,
    circuit_breaker: circuitBreaker,
    available,
    unavailable_reason: unavailableReason,
  });

  return [
    {
      method: 'GET',
      path: '/api/v1/models',
      handler: async ({ req, res, url }) => {
        const query = modelQueryOf(url);
        const offset = intParam(url, 'offset', 0, 0, 1_000_000);
        const limit = intParam(url, 'limit', 500, 1, 1000);
        const models = await catalog.listModels(query, optionalPrincipal(req));
        const page = models.slice(offset, offset + limit);
        if (url.searchParams.get('use_rss') === 'true') return sendModelsRss(res, page, `${req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`);
        // The next page of the same list: the query's filters and sort kept.
        const nextQuery = new URLSearchParams(url.searchParams);
        nextQuery.set('offset', String(offset + limit));
        nextQuery.set('limit', String(limit));
        const next = offset + limit < models.length ? `/api/v1/models?${nextQuery}` : null;
        // total_count and links on every answer: a list longer than the default page is never cut without a word.
        sendJson(res, 200, { data: page.map((m) => modelJson(m, catalog.reasoningOf(m))), total_count: models.length, links: { next } });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/models/count',
      handler: async ({ req, res, url }) => sendJson(res, 200, { data: { count: (await catalog.listModels(modelQueryOf(url), optionalPrincipal(req))).length } }),
    },
    // OpenAI's `GET /models/{id}` (openai.models.retrieve encodes the slash: /models/openai%2Fgpt-4o): the model
    // object flat, with OpenAI's `object` and `owned_by`, so the SDK's Model fields read right.
    { method: 'GET', path: '/api/v1/models/:id', handler: async ({ req, res, params }) => sendModel(req, res, params.id!) },
    { method: 'GET', path: '/api/v1/models/:author/:slug', handler: async ({ req, res, params }) => sendModel(req, res, `${params.author!}/${params.slug!}`) },
    {
      method: 'GET',
      path: '/api/v1/model/:author/:slug',
      handler: async ({ req, res, params }) => {
        const model = await loadModel(params.author!, params.slug!, optionalPrincipal(req));
        if (model.endpoints.length === 0) throw new GatewayError(404, 'not_found', `Model ${model.id} has no endpoints`, { model: model.id });
        sendJson(res, 200, { data: modelJson(model, catalog.reasoningOf(model)) });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/models/:author/:slug/endpoints',
      handler: async ({ req, res, params }) => {
        const viewer = optionalPrincipal(req);
        const model = await loadModel(params.author!, params.slug!, viewer);
        const details = await catalog.endpointDetails(model, viewer);
        sendJson(res, 200, {
          data: {
            id: model.id,
            name: model.doc.name,
            created: isoToUnix(model.doc.createdAt),
            description: model.doc.description,
            architecture: { input_modalities: model.doc.inputModalities, output_modalities: model.doc.outputModalities, tokenizer: model.doc.tokenizer, instruct_type: null },
            endpoints: details.map((detail) => endpointJson(model, detail)),
          },
        });
      },
    },
    {
      // OpenRouter's preview of what survives `provider.zdr`: every endpoint whose provider an admin stated keeps nothing.
      method: 'GET',
      path: '/api/v1/endpoints/zdr',
      handler: async ({ req, res }) => {
        const zdr = (await catalog.providers()).filter((p) => p.dataPolicy === 'zero_retention');
        const slugs = new Set(zdr.map((p) => p._id));
        const viewer = optionalPrincipal(req);
        const listings = await Promise.all([...new Set(zdr.flatMap((p) => p.models))].sort().map((id) => catalog.findListing(id, viewer)));
        const endpoints = [];
        for (const listing of listings) {
          if (!listing) continue;
          for (const detail of await catalog.endpointDetails(listing, viewer)) if (slugs.has(detail.endpoint.provider)) endpoints.push(endpointJson(listing, detail));
        }
        sendJson(res, 200, { data: endpoints });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/providers',
      handler: async ({ res }) => {
        const providers = await catalog.providers();
        sendJson(res, 200, {
          data: providers.map((p) => ({
            name: p.name,
            slug: p._id,
            privacy_policy_url: null,
            terms_of_service_url: null,
            status_page_url: null,
            protocol: p.protocol,
            // As an admin stated it (collects, no_collection, zero_retention); null: unstated, routed as collects.
            data_policy: p.dataPolicy,
            // Whether aborting a call stops its billing (false: a client that leaves a stream is charged the whole answer).
            cancellable: p.cancellable,
            models: p.models,
            available: catalog.providerProblem(p._id).available,
          })),
        });
      },
    },
  ];
};

/**
 * The OpenRouter-compatible REST surface: chat completions and legacy completions (JSON and SSE), the models and
 * providers catalog and endpoint stats. Errors are OpenRouter's `{error:{code, message, metadata}}` with a typed
 * `metadata.error_type`.
 */
import type { ServerResponse } from 'node:http';
import { catalogQueries, type EndpointDoc, type ModelDoc, type ProviderDoc } from '../../projections/catalog.js';
import { providerStatsQueries, summarizeStats } from '../../projections/providerStats.js';
import type { Core } from '../core.js';
import { DomainError, RateLimitedError, UnauthenticatedError } from '../errors.js';
import { readJsonBody, requirePrincipal, sendJson, type RestRequest, type Route } from '../http/rest.js';
import { isAdmin, type Principal } from '../modules/auth/principal.js';
import { parseChatBody } from './chatRequest.js';
import { newGenerationId } from '../modules/generations/generation.events.js';
import type { Gateway, GenerationOutcome } from './gateway.js';
import { GatewayError, type ErrorType } from './gatewayErrors.js';
import { nanoToUsdNumber, nanoToUsdString } from './pricing.js';
import { SSE_DONE } from './sse.js';
import type { ChatChunk } from './types.js';

const KEEPALIVE_COMMENT = ': SWITCHYARD PROCESSING\n\n';

const ERROR_TYPE_BY_CODE: Record<string, ErrorType> = {
  BAD_REQUEST: 'invalid_request',
  VALIDATION: 'invalid_request',
  UNAUTHENTICATED: 'authentication',
  FORBIDDEN: 'permission_denied',
  NOT_FOUND: 'not_found',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  INSUFFICIENT_CREDITS: 'payment_required',
  KEY_LIMIT_REACHED: 'payment_required',
  PAYMENT_FAILED: 'payment_required',
  RATE_LIMITED: 'rate_limit_exceeded',
  UNAVAILABLE: 'provider_unavailable',
  NO_ENDPOINT: 'provider_unavailable',
};

/** OpenRouter's error body, with a Retry-After header for rate limits. Unexpected errors are masked and logged. */
export const sendGatewayError = (core: Pick<Core, 'logger'>, res: ServerResponse, error: unknown, requestId: string, headers: Record<string, string> = {}) => {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  let domain: DomainError;
  if (error instanceof DomainError) domain = error;
  else {
    core.logger.error({ err: error, requestId }, 'unexpected error in the gateway');
    domain = new GatewayError(500, 'server', 'Internal error', {});
  }
  const retryAfterMs = error instanceof RateLimitedError ? error.retryAfterMs : error instanceof GatewayError ? error.retryAfterMs : undefined;
  const errorType = error instanceof GatewayError ? error.errorType : (ERROR_TYPE_BY_CODE[domain.code] ?? 'server');
  sendJson(
    res,
    domain.status,
    { error: { code: domain.status, message: domain.message, metadata: { ...domain.metadata, error_type: errorType, request_id: requestId } } },
    { ...headers, ...(retryAfterMs !== undefined && { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) }) },
  );
};

/** OpenRouter's usage object: token counts plus `cost` in USD (a number) and cost details. */
export const usageJson = (outcome: GenerationOutcome) => ({
  prompt_tokens: outcome.usage.prompt_tokens,
  completion_tokens: outcome.usage.completion_tokens,
  total_tokens: outcome.usage.prompt_tokens + outcome.usage.completion_tokens,
  prompt_tokens_details: { cached_tokens: outcome.usage.prompt_tokens_details?.cached_tokens ?? 0, cache_write_tokens: outcome.usage.prompt_tokens_details?.cache_write_tokens ?? 0 },
  completion_tokens_details: { reasoning_tokens: outcome.usage.completion_tokens_details?.reasoning_tokens ?? 0 },
  cost: nanoToUsdNumber(outcome.cost),
  is_byok: false,
  cost_details: {
    upstream_inference_cost: null,
    upstream_inference_prompt_cost: nanoToUsdNumber((outcome.costBreakdown?.prompt ?? 0) + (outcome.costBreakdown?.cacheRead ?? 0) + (outcome.costBreakdown?.cacheWrite ?? 0)),
    upstream_inference_completions_cost: nanoToUsdNumber((outcome.costBreakdown?.completion ?? 0) + (outcome.costBreakdown?.reasoning ?? 0)),
  },
});

const errorChunk = (outcome: GenerationOutcome, created: number, kind: 'chat' | 'completion') => {
  const error = outcome.error!;
  const { provider_name, provider_code, provider_status } = error.metadata as Record<string, unknown>;
  return {
    id: outcome.generationId,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created,
    model: outcome.model,
    provider: outcome.providerName,
    error: { code: error.status, message: error.message, metadata: { error_type: error.errorType, provider_name, provider_status, ...(provider_code !== undefined && { provider_code }) } },
    choices: [kind === 'chat' ? { index: 0, delta: { content: '' }, finish_reason: 'error', native_finish_reason: null } : { index: 0, text: '', finish_reason: 'error' }],
    usage: usageJson(outcome),
  };
};

/** A chat chunk as a legacy `text_completion` chunk. */
const textChunk = (chunk: ChatChunk) => ({
  id: chunk.id,
  object: 'text_completion',
  created: chunk.created,
  model: chunk.model,
  choices: chunk.choices.map((c) => ({ index: c.index, text: c.delta.content ?? '', finish_reason: c.finish_reason, native_finish_reason: c.native_finish_reason ?? null, logprobs: null })),
});

// -----------------------------------------------------------------------------------------------------------------
// Catalog shapes

const isoToUnix = (iso: string) => Math.floor(Date.parse(iso) / 1000);

const pricingJson = (prices: EndpointDoc['prices'] | null) => ({
  prompt: nanoToUsdString(prices?.prompt ?? 0),
  completion: nanoToUsdString(prices?.completion ?? 0),
  request: nanoToUsdString(prices?.request ?? 0),
  image: '0',
  web_search: '0',
  internal_reasoning: nanoToUsdString(prices?.reasoning ?? 0),
  input_cache_read: nanoToUsdString(prices?.cacheRead ?? 0),
  input_cache_write: nanoToUsdString(prices?.cacheWrite ?? 0),
});

const priceOf = (e: EndpointDoc) => e.prices.prompt + e.prices.completion;

interface CatalogModel {
  readonly id: string;
  readonly doc: ModelDoc;
  readonly free: boolean;
  readonly endpoints: EndpointDoc[];
}

/** Routable models (active endpoints) plus a `…:free` entry for each model with free endpoints, as OpenRouter lists them. */
const catalogModels = (docs: readonly ModelDoc[]): CatalogModel[] => {
  const out: CatalogModel[] = [];
  for (const doc of docs) {
    if (doc.retired) continue;
    const active = doc.endpoints.filter((e) => e.status === 'active');
    const paid = active.filter((e) => !e.variants.includes('free')).sort((a, b) => priceOf(a) - priceOf(b));
    const free = active.filter((e) => e.variants.includes('free'));
    if (paid.length) out.push({ id: doc._id, doc, free: false, endpoints: paid });
    if (free.length) out.push({ id: `${doc._id}:free`, doc, free: true, endpoints: free });
  }
  return out;
};

const modelJson = (m: CatalogModel) => {
  const top = m.endpoints[0]!;
  const supported = [...new Set(m.endpoints.flatMap((e) => e.supportedParameters))].sort();
  const contextLength = m.doc.published ? m.doc.contextLength : Math.max(...m.endpoints.map((e) => e.contextLength));
  return {
    id: m.id,
    canonical_slug: m.doc._id,
    name: m.free ? `${m.doc.name} (free)` : m.doc.name,
    created: isoToUnix(m.doc.createdAt),
    description: m.doc.description,
    context_length: contextLength,
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
  };
};

const xmlEscape = (text: string) => text.replace(/[<>&'"]/g, (c) => `&${({ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' } as Record<string, string>)[c]};`);

/** `?use_rss=true`: the same list as an RSS 2.0 feed, newest first, for feed readers watching for new models. */
const sendModelsRss = (res: ServerResponse, models: readonly CatalogModel[], origin: string) => {
  const items = [...models]
    .sort((a, b) => Date.parse(b.doc.createdAt) - Date.parse(a.doc.createdAt) || a.id.localeCompare(b.id))
    .map((m) => {
      const json = modelJson(m);
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

const MODEL_SORTS = ['pricing-low-to-high', 'pricing-high-to-low', 'context-high-to-low', 'throughput-high-to-low', 'latency-low-to-high', 'newest'] as const;

const intParam = (url: URL, name: string, fallback: number, min: number, max: number): number => {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new GatewayError(400, 'invalid_request', `${name} must be an integer between ${min} and ${max}`, { param: name });
  return n;
};

// -----------------------------------------------------------------------------------------------------------------
// Routes

/** A provider's credential and failures are its owner's and the admins' business. */
const seesProviderInternals = (viewer: Principal | null, provider: ProviderDoc | undefined): boolean =>
  viewer !== null && (isAdmin(viewer) || (provider !== undefined && viewer.accountId === provider.ownerAccountId));

export const gatewayRoutes = (core: Core, gateway: Gateway): Route[] => {
  /** The caller of a public route, when it says who it is (an unknown key reads as anonymous). */
  const optionalPrincipal = (req: RestRequest['req']): Principal | null => {
    if (!req.headers.authorization) return null;
    try {
      return requirePrincipal(core.directory, req);
    } catch (error) {
      if (error instanceof UnauthenticatedError) return null;
      throw error;
    }
  };
  const catalog = catalogQueries(core.readStore);
  const stats = providerStatsQueries(core.readStore);
  const { config } = core;

  const completion = (kind: 'chat' | 'completion') => async ({ req, res, requestId }: RestRequest) => {
    const generationId = newGenerationId();
    res.setHeader('x-generation-id', generationId);
    try {
      const principal = requirePrincipal(core.directory, req);
      const body = await readJsonBody(req, config.MAX_BODY_BYTES);
      const sessionHeader = req.headers['x-session-id'];
      const parsed = parseChatBody(body, kind, Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader);
      const prepared = await gateway.prepare({
        generationId,
        principal,
        parsed,
        rawProvider: (body as { provider?: unknown }).provider ?? null,
        apiType: kind === 'chat' ? 'chat' : 'completions',
        correlationId: requestId,
      });
      if (!parsed.stream) {
        const outcome = await gateway.execute(prepared);
        if (outcome.kind !== 'completed' || !outcome.response) return sendGatewayError(core, res, outcome.error, requestId);
        const response = outcome.response;
        const payload =
          kind === 'chat'
            ? { ...response, provider: outcome.providerName, usage: usageJson(outcome) }
            : {
                id: response.id,
                object: 'text_completion',
                created: response.created,
                model: response.model,
                provider: outcome.providerName,
                choices: response.choices.map((c) => ({ index: c.index, text: c.message.content ?? '', finish_reason: c.finish_reason, native_finish_reason: c.native_finish_reason, logprobs: null })),
                usage: usageJson(outcome),
              };
        return sendJson(res, 200, payload);
      }

      // Streaming. Headers wait for the first token, so a failure before it is still a plain HTTP error (and a
      // fallback stays invisible); keep-alive comments commit the 200 if the first token is slow to come.
      const client = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) client.abort();
      });
      const open = () => {
        if (!res.headersSent) {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-generation-id': generationId });
        }
      };
      let wroteAt = Date.now();
      const keepAlive = setInterval(() => {
        if (Date.now() - wroteAt < config.GATEWAY_KEEPALIVE_MS || res.destroyed) return;
        open();
        res.write(KEEPALIVE_COMMENT);
        wroteAt = Date.now();
      }, config.GATEWAY_KEEPALIVE_MS);
      keepAlive.unref();
      let outcome: GenerationOutcome;
      try {
        outcome = await gateway.execute(prepared, {
          signal: client.signal,
          onChunk: (chunk) => {
            if (res.destroyed) return;
            open();
            res.write(`data: ${JSON.stringify(kind === 'chat' ? chunk : textChunk(chunk))}\n\n`);
            wroteAt = Date.now();
          },
        });
      } finally {
        clearInterval(keepAlive);
      }
      if (outcome.kind === 'cancelled' || res.destroyed) return;
      if (outcome.kind === 'failed') {
        if (!res.headersSent) return sendGatewayError(core, res, outcome.error, requestId);
        res.end(`data: ${JSON.stringify(errorChunk(outcome, prepared.created, kind))}\n\n`);
        return;
      }
      open();
      const final = { id: generationId, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: prepared.created, model: outcome.model, provider: outcome.providerName, choices: [], usage: usageJson(outcome) };
      res.end(`data: ${JSON.stringify(final)}\n\n${SSE_DONE}`);
    } catch (error) {
      sendGatewayError(core, res, error, requestId);
    }
  };

  const withErrors = (handler: (request: RestRequest) => Promise<void>) => async (request: RestRequest) => {
    try {
      await handler(request);
    } catch (error) {
      sendGatewayError(core, request.res, error, request.requestId);
    }
  };

  const loadModel = async (author: string, slug: string): Promise<CatalogModel> => {
    const requested = `${author}/${slug}`;
    const base = requested.replace(/:(free|nitro|floor)$/, '');
    const doc = await catalog.model(base);
    const found = doc ? catalogModels([doc]).find((m) => m.id === (requested.endsWith(':free') ? requested : base)) : undefined;
    if (!doc || doc.retired) throw new GatewayError(404, 'not_found', `Model ${requested} not found`, { model: requested });
    return found ?? { id: requested, doc, free: requested.endsWith(':free'), endpoints: [] };
  };

  /** The catalog's models with the `output_modalities` (default text) and `supported_parameters` filters applied. */
  const filteredModels = async (url: URL) => {
    const modalities = (url.searchParams.get('output_modalities') ?? 'text').split(',').map((s) => s.trim()).filter(Boolean);
    const required = (url.searchParams.get('supported_parameters') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    return catalogModels(await catalog.allModels()).filter(
      (m) =>
        (modalities.includes('all') || modalities.some((o) => (m.doc.outputModalities as string[]).includes(o))) &&
        required.every((p) => m.endpoints.some((e) => e.supportedParameters.includes(p))),
    );
  };

  return [
    { method: 'POST', path: '/api/v1/chat/completions', handler: completion('chat') },
    { method: 'POST', path: '/api/v1/completions', handler: completion('completion') },
    {
      method: 'GET',
      path: '/api/v1/models',
      handler: withErrors(async ({ req, res, url }) => {
        const sort = url.searchParams.get('sort');
        if (sort !== null && !(MODEL_SORTS as readonly string[]).includes(sort)) throw new GatewayError(400, 'invalid_request', `sort must be one of ${MODEL_SORTS.join(', ')}`, { param: 'sort' });
        const paged = url.searchParams.has('offset') || url.searchParams.has('limit');
        const offset = intParam(url, 'offset', 0, 0, 1_000_000);
        const limit = intParam(url, 'limit', 500, 1, 1000);
        let models = await filteredModels(url);
        if (sort) {
          const nowMs = Date.now();
          const best = (m: CatalogModel, pick: 'latency' | 'throughput') => {
            const values = m.endpoints
              .map((e) => gateway.stats.get(e.id))
              .map((s) => (pick === 'latency' ? s?.latencyP50Ms : s?.throughputP50))
              .filter((v): v is number => typeof v === 'number');
            return values.length === 0 ? null : pick === 'latency' ? Math.min(...values) : Math.max(...values);
          };
          const key: Record<(typeof MODEL_SORTS)[number], (m: CatalogModel) => number> = {
            'pricing-low-to-high': (m) => priceOf(m.endpoints[0]!),
            'pricing-high-to-low': (m) => -priceOf(m.endpoints[0]!),
            'context-high-to-low': (m) => -m.doc.contextLength,
            'throughput-high-to-low': (m) => -(best(m, 'throughput') ?? -1),
            'latency-low-to-high': (m) => best(m, 'latency') ?? Number.MAX_SAFE_INTEGER,
            newest: (m) => nowMs - Date.parse(m.doc.createdAt),
          };
          const by = key[sort as (typeof MODEL_SORTS)[number]];
          models = models.sort((a, b) => by(a) - by(b) || a.id.localeCompare(b.id));
        }
        const page = models.slice(offset, offset + limit);
        if (url.searchParams.get('use_rss') === 'true') return sendModelsRss(res, page, `${req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`);
        const next = offset + limit < models.length ? `/api/v1/models?offset=${offset + limit}&limit=${limit}` : null;
        sendJson(res, 200, { data: page.map(modelJson), ...(paged && { total_count: models.length, links: { next } }) });
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/models/count',
      handler: withErrors(async ({ res, url }) => sendJson(res, 200, { data: { count: (await filteredModels(url)).length } })),
    },
    {
      method: 'GET',
      path: '/api/v1/model/:author/:slug',
      handler: withErrors(async ({ res, params }) => {
        const model = await loadModel(params.author!, params.slug!);
        if (model.endpoints.length === 0) throw new GatewayError(404, 'not_found', `Model ${model.id} has no endpoints`, { model: model.id });
        sendJson(res, 200, { data: modelJson(model) });
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/models/:author/:slug/endpoints',
      handler: withErrors(async ({ req, res, params }) => {
        const model = await loadModel(params.author!, params.slug!);
        const viewer = optionalPrincipal(req);
        const [providers, statDocs] = await Promise.all([catalog.providersByIds(model.endpoints.map((e) => e.provider)), stats.byIds(model.endpoints.map((e) => e.id))]);
        const providerOf = new Map<string, ProviderDoc>(providers.map((p) => [p._id, p]));
        const statsOf = new Map(statDocs.map((d) => [d._id, d]));
        const nowMs = Date.now();
        sendJson(res, 200, {
          data: {
            id: model.id,
            name: model.doc.name,
            created: isoToUnix(model.doc.createdAt),
            description: model.doc.description,
            architecture: { input_modalities: model.doc.inputModalities, output_modalities: model.doc.outputModalities, tokenizer: model.doc.tokenizer, instruct_type: null },
            endpoints: model.endpoints.map((e) => {
              const provider = providerOf.get(e.provider);
              const summary = summarizeStats(statsOf.get(e.id), nowMs);
              const live = gateway.catalog.endpoint(e.id);
              const problem = live?.provider.auth().problem ?? null;
              return {
                name: `${provider?.name ?? e.provider} | ${model.id}`,
                model_id: model.doc._id,
                model_name: model.doc.name,
                context_length: e.contextLength,
                pricing: pricingJson(e.prices),
                provider_name: provider?.name ?? e.provider,
                tag: e.provider,
                quantization: e.quantization ?? 'unknown',
                max_completion_tokens: e.maxOutput,
                max_prompt_tokens: e.contextLength,
                supported_parameters: e.supportedParameters,
                status: problem === null ? 0 : -1,
                uptime_last_5m: summary.uptime5m,
                uptime_last_30m: summary.uptime30m,
                uptime_last_1d: summary.uptime1d,
                latency_last_30m: summary.latency30m,
                throughput_last_30m: summary.throughput30m,
                supports_implicit_caching: false,
                // Switchyard's additions.
                error_rate_last_30m: summary.errorRate30m,
                requests_last_30m: summary.requests30m,
                circuit_breaker: gateway.breakers.state(e.id),
                available: problem === null,
                // Why names a credential: only its owner and admins see that.
                unavailable_reason: problem === null ? null : seesProviderInternals(viewer, provider) ? problem : 'its credentials are not available',
              };
            }),
          },
        });
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/providers',
      handler: withErrors(async ({ res }) => {
        const providers = await catalog.allProviders();
        sendJson(res, 200, {
          data: providers.map((p) => ({
            name: p.name,
            slug: p._id,
            privacy_policy_url: null,
            terms_of_service_url: null,
            status_page_url: null,
            protocol: p.protocol,
            models: p.models,
            available: gateway.catalog.provider(p._id)?.auth().problem === null,
          })),
        });
      }),
    },
  ];
};

/**
 * OpenRouter's `GET /api/v1/generation?id=…`: a generation's record, for the caller's account (an admin's: any).
 * Another account's generation answers 404, exactly as a missing one. `GET /api/v1/generation/content?id=…`: what it
 * was sent and answered, when its account had input & output logging on (404 otherwise, and for anyone else's).
 */
import { mediaCounts, type GenerationDoc } from '../../../projections/generations.js';
import { DomainError } from '../../errors.js';
import { requirePrincipal, sendJson, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import { toUsdNumber } from '../ledger/money.js';
import type { GenerationsApi } from './generation.api.js';

const generationJson = (doc: GenerationDoc) => {
  const media = mediaCounts(doc);
  // Charged, record lost: what the ledger's charge knows, null for what only the record knew.
  const unrecorded = doc.status === 'unrecorded';
  return {
    id: doc._id,
    upstream_id: doc.upstreamId,
    total_cost: toUsdNumber(doc.cost),
    // Absent from records whose events predate it: unknown, not zero.
    cache_discount: doc.cacheDiscount === undefined ? null : toUsdNumber(doc.cacheDiscount),
    upstream_inference_cost: doc.upstreamCost === undefined ? null : toUsdNumber(doc.upstreamCost),
    created_at: doc.createdAt,
    model: doc.model ?? doc.requestedModels[0] ?? null,
    app_id: null,
    streamed: doc.streamed,
    // Also when the client left a provider that cannot cancel: then its answer was read on and billed (status completed).
    cancelled: unrecorded ? null : doc.status === 'cancelled' || doc.clientGone === true,
    provider_name: doc.providerName,
    latency: doc.latencyMs,
    moderation_latency: null,
    generation_time: doc.generationTimeMs,
    finish_reason: doc.finishReason,
    native_finish_reason: doc.nativeFinishReason,
    tokens_prompt: doc.usage?.prompt ?? 0,
    tokens_completion: doc.usage?.completion ?? 0,
    native_tokens_prompt: doc.usage?.prompt ?? 0,
    native_tokens_completion: doc.usage?.completion ?? 0,
    native_tokens_completion_images: null,
    native_tokens_reasoning: doc.usage?.reasoning ?? 0,
    native_tokens_cached: doc.usage?.cached ?? 0,
    num_media_prompt: media.prompt,
    num_input_audio_prompt: media.inputAudio,
    num_media_completion: media.completion,
    num_search_results: null,
    // OpenRouter's origin is the app's HTTP-Referer.
    origin: unrecorded ? null : (doc.app?.url ?? ''),
    usage: toUsdNumber(doc.cost),
    is_byok: doc.upstreamCost !== undefined,
    external_user: doc.user,
    api_type: doc.apiType === 'graphql' || doc.apiType === 'workflow' ? 'chat' : doc.apiType,
    router: doc.router,
    // The conversation's id as the client sent it (session_id / x-session-id), as OpenRouter's logs group sessions.
    session_id: doc.sessionId ?? null,
    // Switchyard's additions: exact money and the story of the attempts.
    switchyard: {
      status: doc.status,
      cost_nanodollars: doc.cost,
      cache_discount_nanodollars: doc.cacheDiscount ?? null,
      upstream_inference_cost_nanodollars: doc.upstreamCost ?? null,
      reserved_nanodollars: doc.reserved,
      usage_source: doc.usageSource,
      provider_slug: doc.providerSlug,
      requested_models: doc.requestedModels,
      app: doc.app === undefined ? null : { url: doc.app.url, title: doc.app.title, categories: doc.app.categories },
      error: doc.error,
      attempts: doc.attempts,
    },
  };
};

/**
 * The `id` query parameter, or the 400 that says how to ask. A Responses API id (`resp_x`, the only id its client
 * sees) names the generation `gen-x` it answered as.
 */
const idOf = (url: URL, path: string): string => {
  const id = url.searchParams.get('id');
  if (!id) throw new DomainError('BAD_REQUEST', `id is required: GET ${path}?id=gen-…`, 400, { param: 'id' });
  return id.startsWith('resp_') ? `gen-${id.slice('resp_'.length)}` : id;
};

export const generationRoutes = (generations: GenerationsApi, directory: Pick<AuthDirectory, 'authenticate'>): Route[] => [
  {
    method: 'GET',
    path: '/api/v1/generation',
    handler: async ({ req, res, url }) => {
      const principal = requirePrincipal(directory, req);
      sendJson(res, 200, { data: generationJson(await generations.byId(principal, idOf(url, '/api/v1/generation'))) });
    },
  },
  {
    method: 'GET',
    path: '/api/v1/generation/content',
    // OpenRouter's stored prompt and completion: the caller's own generations only, when its account logged content.
    handler: async ({ req, res, url }) => {
      const principal = requirePrincipal(directory, req);
      const content = await generations.content(principal, idOf(url, '/api/v1/generation/content'));
      sendJson(res, 200, { data: { input: content.input, output: content.output } });
    },
  },
];

/**
 * The gateway's OpenRouter-compatible REST surface: chat completions and legacy completions (JSON and SSE), and
 * generation records (the catalog's routes are src/modules/catalog/catalog.rest.ts). Errors are OpenRouter's `{error:{code, message,
 * metadata}}` with a typed `metadata.error_type`.
 */
import type { ServerResponse } from 'node:http';
import { generationQueries, type GenerationDoc } from '../../projections/generations.js';
import type { Core } from '../core.js';
import { UnauthenticatedError } from '../errors.js';
import { readJsonBody, requirePrincipal, sendError, sendJson, type RestRequest, type Route } from '../http/rest.js';
import { isAdmin, type Principal } from '../modules/auth/principal.js';
import { parseChatBody } from './chatRequest.js';
import { newGenerationId, type Gateway, type GenerationOutcome } from './gateway.js';
import { GatewayError } from './gatewayErrors.js';
import { toUsdNumber as nanoToUsdNumber, usdDecimal as nanoToUsdString } from '../modules/ledger/money.js';
import { SSE_DONE } from './sse.js';
import type { ChatChunk } from './types.js';

const KEEPALIVE_COMMENT = ': SWITCHYARD PROCESSING\n\n';

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

const generationJson = (doc: GenerationDoc) => ({
  id: doc._id,
  upstream_id: doc.upstreamId,
  total_cost: nanoToUsdNumber(doc.cost),
  cache_discount: null,
  upstream_inference_cost: null,
  created_at: doc.createdAt,
  model: doc.model ?? doc.requestedModels[0] ?? null,
  app_id: null,
  streamed: doc.streamed,
  cancelled: doc.status === 'cancelled',
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
  num_media_prompt: null,
  num_input_audio_prompt: null,
  num_media_completion: null,
  num_search_results: null,
  origin: '',
  usage: nanoToUsdNumber(doc.cost),
  is_byok: false,
  external_user: doc.user,
  api_type: doc.apiType === 'completions' ? 'completions' : 'chat',
  router: doc.router,
  // Switchyard's additions: exact money and the story of the attempts.
  switchyard: {
    status: doc.status,
    cost_nanodollars: doc.cost,
    reserved_nanodollars: doc.reserved,
    usage_source: doc.usageSource,
    provider_slug: doc.providerSlug,
    requested_models: doc.requestedModels,
    error: doc.error,
    attempts: doc.attempts,
  },
});

// -----------------------------------------------------------------------------------------------------------------
// Routes

export const gatewayRoutes = (core: Core, gateway: Gateway): Route[] => {
  const generations = generationQueries(core.readStore);
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
        if (outcome.kind !== 'completed' || !outcome.response) return sendError(res, outcome.error, requestId, core.logger);
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
        if (!res.headersSent) return sendError(res, outcome.error, requestId, core.logger);
        res.end(`data: ${JSON.stringify(errorChunk(outcome, prepared.created, kind))}\n\n`);
        return;
      }
      open();
      const final = { id: generationId, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: prepared.created, model: outcome.model, provider: outcome.providerName, choices: [], usage: usageJson(outcome) };
      res.end(`data: ${JSON.stringify(final)}\n\n${SSE_DONE}`);
    } catch (error) {
      sendError(res, error, requestId, core.logger);
    }
  };

  const withErrors = (handler: (request: RestRequest) => Promise<void>) => async (request: RestRequest) => {
    try {
      await handler(request);
    } catch (error) {
      sendError(request.res, error, request.requestId, core.logger);
    }
  };

  return [
    { method: 'POST', path: '/api/v1/chat/completions', handler: completion('chat') },
    { method: 'POST', path: '/api/v1/completions', handler: completion('completion') },
    {
      method: 'GET',
      path: '/api/v1/generation',
      handler: withErrors(async ({ req, res, url }) => {
        const principal = requirePrincipal(core.directory, req);
        const id = url.searchParams.get('id');
        if (!id) throw new GatewayError(400, 'invalid_request', 'id is required: GET /api/v1/generation?id=gen-…', { param: 'id' });
        const doc = await generations.byId(id);
        if (!doc || (doc.accountId !== principal.accountId && !isAdmin(principal))) throw new GatewayError(404, 'not_found', `Generation ${id} not found`, { id });
        sendJson(res, 200, { data: generationJson(doc) });
      }),
    },
  ];
};

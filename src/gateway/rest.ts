/**
 * The gateway's OpenRouter-compatible REST surface: chat completions and legacy completions (JSON and SSE). The
 * catalog's routes are in src/modules/catalog/catalog.rest.ts, generation records in
 * src/modules/generations/generation.rest.ts. Errors go through the one writer (src/http/rest.ts sendError).
 */
import { routerMetadata, wantsRouterMetadata } from './routerMetadata.js';
import { appAttributionOf, KEEPALIVE_COMMENT, chatHeadersOf, idempotencyOf, streamGeneration, wholeCall, failureOf, clientLeft, type GatewayRouteDeps } from './skins/sseGeneration.js';
import { readJsonBody, requireUser, sendError, sendJson, type RestRequest, type Route } from '../http/rest.js';
import { parseChatBody } from './chatRequest.js';
import { MODEL_REQUIRED } from './chatRequest.schema.js';
import { invalidRequest, type GatewayError } from './gatewayErrors.js';
import { applyPreset } from '../modules/presets/presetResolution.js';
import { base64Vector, parseEmbeddingBody } from './embeddings.js';
import { newGenerationId } from '../modules/generations/generation.events.js';
import type { GenerationOutcome } from './gateway.js';
import { toUsdNumber } from '../modules/ledger/money.js';
import { extend } from '../objects.js';
import { SSE_DONE } from './sse.js';
import { isRecord } from './providers/common.js';
import type { ChatChunk, ChatResponse, ChoiceLogprobs, ChunkChoice, ChunkDelta } from './types.js';


/**
 * What a call cost, in USD, for every protocol's usage object: `cost` (what the account was charged: the fee on a call
 * served with its own provider key), whether that key served it (BYOK), and the list price (`upstream`, only for BYOK
 * calls, else null) with its prompt and completion parts.
 */
export const costsOf = (outcome: GenerationOutcome) => ({
  cost: toUsdNumber(outcome.cost),
  byok: outcome.upstreamCost !== null,
  upstream: outcome.upstreamCost === null ? null : toUsdNumber(outcome.upstreamCost),
  prompt: toUsdNumber((outcome.costBreakdown?.prompt ?? 0) + (outcome.costBreakdown?.cacheRead ?? 0) + (outcome.costBreakdown?.cacheWrite ?? 0)),
  completions: toUsdNumber((outcome.costBreakdown?.completion ?? 0) + (outcome.costBreakdown?.reasoning ?? 0)),
});

/** OpenRouter's `cost_details` as chat and the Messages API name them (the Responses API says input / output). */
export const chatCostDetails = (costs: ReturnType<typeof costsOf>) => ({
  upstream_inference_cost: costs.upstream,
  upstream_inference_prompt_cost: costs.prompt,
  upstream_inference_completions_cost: costs.completions,
});

/**
 * OpenRouter's usage object: token counts (every detail it lists, 0 where the upstream reported none) plus `cost` in
 * USD (a number) and cost details.
 */
export const usageJson = (outcome: GenerationOutcome) => {
  const costs = costsOf(outcome);
  return {
    prompt_tokens: outcome.usage.prompt_tokens,
    completion_tokens: outcome.usage.completion_tokens,
    total_tokens: outcome.usage.prompt_tokens + outcome.usage.completion_tokens,
    prompt_tokens_details: {
      cached_tokens: outcome.usage.prompt_tokens_details?.cached_tokens ?? 0,
      cache_write_tokens: outcome.usage.prompt_tokens_details?.cache_write_tokens ?? 0,
      audio_tokens: outcome.usage.prompt_tokens_details?.audio_tokens ?? 0,
      video_tokens: outcome.usage.prompt_tokens_details?.video_tokens ?? 0,
    },
    completion_tokens_details: {
      reasoning_tokens: outcome.usage.completion_tokens_details?.reasoning_tokens ?? 0,
      audio_tokens: outcome.usage.completion_tokens_details?.audio_tokens ?? 0,
      image_tokens: outcome.usage.completion_tokens_details?.image_tokens ?? 0,
    },
    server_tool_use: { web_search_requests: outcome.usage.server_tool_use?.web_search_requests ?? 0 },
    cost: costs.cost,
    is_byok: costs.byok,
    cost_details: chatCostDetails(costs),
  };
};

/** A provider's error after the answer began, in OpenRouter's shape (a stream's last chunk, a whole answer's choice). */
const answerErrorJson = (error: GatewayError) => {
  const { provider_name, provider_code, provider_status } = error.metadata as Record<string, unknown>;
  return { code: error.status, message: error.message, metadata: { error_type: error.errorType, provider_name, provider_status, ...(provider_code !== undefined && { provider_code }) } };
};

const errorChunk = (outcome: GenerationOutcome, created: number, kind: 'chat' | 'completion') => {
  return {
    id: outcome.generationId,
    object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created,
    model: outcome.model,
    provider: outcome.providerName,
    error: answerErrorJson(outcome.error!),
    choices: [kind === 'chat' ? { index: 0, delta: { content: '' }, finish_reason: 'error', native_finish_reason: null } : { index: 0, text: '', finish_reason: 'error' }],
    usage: usageJson(outcome),
  };
};

/**
 * The answer as clients read it: `reasoning_content` beside `reasoning` (OpenRouter documents the alias; LangChain
 * reads it) and OpenAI's `logprobs` on every choice (null unless asked for and the upstream sent them). The canonical
 * `stop_sequence` (the Messages skin's) is not in OpenAI's shape: left out (undefined is not serialised).
 */
const chatJson = (response: ChatResponse, error: GatewayError | null) => ({
  ...response,
  choices: response.choices.map((c, i) =>
    extend(c, {
      message: c.message.reasoning == null ? c.message : extend(c.message, { reasoning_content: c.message.reasoning }),
      logprobs: c.logprobs ?? null,
      stop_sequence: undefined,
      // The upstream's own error is never written as it came: the first choice's is the outcome's, redacted.
      error: i === 0 && error !== null ? answerErrorJson(error) : undefined,
    }),
  ),
});

/**
 * A chunk with `reasoning_content` beside `reasoning`, and without the canonical `stop_sequence` (not in OpenAI's
 * shape) or a finish its provider ended with an error (heldBack); the same object when none applies (most chunks),
 * null when nothing of it is left to send.
 */
const chatChunkJson = (chunk: ChatChunk): ChatChunk | null => {
  if (!chunk.choices.some((c) => c.delta.reasoning != null || c.stop_sequence !== undefined || c.error !== undefined)) return chunk;
  const choices = heldBack(chunk.choices);
  if (choices.length === 0) return null;
  return {
    ...chunk,
    choices: choices.map(({ stop_sequence: _openAiHasNone, ...c }) => (c.delta.reasoning == null ? c : { ...c, delta: { ...c.delta, reasoning_content: c.delta.reasoning } })),
  };
};

const emptyDelta = (d: ChunkDelta): boolean => !d.content && !d.reasoning && !d.reasoning_details && !d.tool_calls && !d.refusal;

/**
 * The choices without the finish their provider ended the answer with an error on (a choice's `error`): the stream
 * ends instead with OpenRouter's error chunk (errorChunk), which carries that error redacted, so the client sees one
 * finish, with its error. What else such a choice carries goes on, unfinished.
 */
const heldBack = (choices: readonly ChunkChoice[]): ChunkChoice[] => {
  const kept: ChunkChoice[] = [];
  for (const { error, ...c } of choices) {
    if (error === undefined) kept.push(c);
    else if (!emptyDelta(c.delta)) kept.push({ ...c, finish_reason: null, native_finish_reason: null });
  }
  return kept;
};

/** Legacy completions' `logprobs` (the openai SDK's `Completion` choice): parallel lists, one entry per token. */
interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** Per token, its alternatives as token → logprob (null when the upstream sent no list for it). */
  top_logprobs: (Record<string, number> | null)[];
  /** Where each token starts in the completion's text, in UTF-16 code units (JavaScript's string length). */
  text_offset: number[];
}

/**
 * Chat's `logprobs` (`{content: [{token, logprob, bytes, top_logprobs: [{token, logprob}]}]}`, as the upstream sent
 * it) in the legacy Completions shape, its tokens starting `offset` characters into the completion (a stream's chunk
 * starts where the text before it ended). Null when there are none to give.
 */
export const completionLogprobs = (logprobs: ChoiceLogprobs | null | undefined, offset: number): CompletionLogprobs | null => {
  const content = logprobs?.content;
  if (!Array.isArray(content)) return null;
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const entry of content) {
    if (!isRecord(entry) || typeof entry.token !== 'string') continue;
    out.tokens.push(entry.token);
    out.token_logprobs.push(typeof entry.logprob === 'number' ? entry.logprob : 0);
    out.text_offset.push(at);
    at += entry.token.length;
    if (!Array.isArray(entry.top_logprobs)) out.top_logprobs.push(null);
    else {
      const top: Record<string, number> = {};
      for (const alt of entry.top_logprobs) if (isRecord(alt) && typeof alt.token === 'string' && typeof alt.logprob === 'number') top[alt.token] = alt.logprob;
      out.top_logprobs.push(top);
    }
  }
  return out;
};

/**
 * Chat chunks as legacy `text_completion` chunks, for one stream: it counts each choice's text so far, which the
 * chunks' `logprobs.text_offset` start from.
 */
const textChunks = () => {
  const written = new Map<number, number>();
  return (chunk: ChatChunk) => {
    const choices = heldBack(chunk.choices);
    if (choices.length === 0 && chunk.choices.length > 0) return null;
    return {
      id: chunk.id,
      object: 'text_completion',
      created: chunk.created,
      model: chunk.model,
      provider: chunk.provider,
      choices: choices.map((c) => {
        const text = c.delta.content ?? '';
        const before = written.get(c.index) ?? 0;
        if (text !== '') written.set(c.index, before + text.length);
        return { index: c.index, text, finish_reason: c.finish_reason, native_finish_reason: c.native_finish_reason ?? null, logprobs: completionLogprobs(c.logprobs, before) };
      }),
    };
  };
};


// -----------------------------------------------------------------------------------------------------------------
// Routes

const CHAT_ROUTE = '/api/v1/chat/completions';
const COMPLETIONS_ROUTE = '/api/v1/completions';
const EMBEDDINGS_ROUTE = '/api/v1/embeddings';

export const gatewayRoutes = (deps: GatewayRouteDeps): Route[] => {
  const { gateway, config, logger } = deps;
  const executeWhole = wholeCall(deps);

  const completion = (kind: 'chat' | 'completion') => async ({ req, res, requestId }: RestRequest) => {
    const generationId = newGenerationId();
    try {
      const principal = requireUser(deps.directory, req);
      // A preset the body names is merged in first, then the account's default model if neither names a model: the
      // parser checks the result as one request.
      const sent = await readJsonBody(req, config.MAX_BODY_BYTES);
      const body = gateway.withDefaultModel(applyPreset(sent, principal.accountId, gateway.presets), principal.accountId);
      const parsed = parseChatBody(body, kind, chatHeadersOf(req));
      const prepared = await gateway.prepare({
        generationId,
        principal,
        parsed,
        rawProvider: (body as { provider?: unknown }).provider ?? null,
        apiType: kind === 'chat' ? 'chat' : 'completions',
        correlationId: requestId,
        app: appAttributionOf(req),
        idempotency: idempotencyOf(req, res, kind === 'chat' ? CHAT_ROUTE : COMPLETIONS_ROUTE, sent),
      });
      res.setHeader('x-generation-id', generationId);
      const metadata = wantsRouterMetadata(req);
      if (!parsed.stream) {
        const outcome = await executeWhole(prepared, res);
        if (outcome.kind !== 'completed' || !outcome.response) return sendError(res, failureOf(outcome), requestId, logger);
        const response = outcome.response;
        const payload =
          kind === 'chat'
            ? extend(chatJson(response, outcome.error), { provider: outcome.providerName, usage: usageJson(outcome) })
            : {
                id: response.id,
                object: 'text_completion',
                created: response.created,
                model: response.model,
                provider: outcome.providerName,
                choices: response.choices.map((c, i) => ({
                  index: c.index,
                  text: c.message.content ?? '',
                  finish_reason: c.finish_reason,
                  native_finish_reason: c.native_finish_reason,
                  logprobs: completionLogprobs(c.logprobs, 0),
                  ...(i === 0 && outcome.error !== null && { error: answerErrorJson(outcome.error) }),
                })),
                usage: usageJson(outcome),
              };
        return sendJson(res, 200, metadata ? extend(payload, { openrouter_metadata: routerMetadata(prepared, outcome) }) : payload);
      }

      // Streaming: headers wait for the first token (see streamGeneration).
      const textChunk = kind === 'completion' ? textChunks() : null;
      const { outcome, sse } = await streamGeneration({
        res,
        gateway,
        prepared,
        generationId,
        shutdown: deps.shutdown,
        keys: deps.directory,
        keepAliveMs: config.GATEWAY_KEEPALIVE_MS,
        stallMs: config.GATEWAY_STREAM_IDLE_TIMEOUT_MS,
        keepAliveText: KEEPALIVE_COMMENT,
        onChunk: (chunk, sse) => {
          const shown = textChunk === null ? chatChunkJson(chunk) : textChunk(chunk);
          if (shown !== null) sse.write(`data: ${JSON.stringify(shown)}\n\n`);
        },
      });
      if (outcome.kind === 'cancelled' || sse.gone) return;
      // A failure, or an answer its provider ended with an error mid-generation (its error, as a whole answer's
      // choices[0].error; billed as answered): the stream ends with OpenRouter's error chunk, and no [DONE].
      if (outcome.kind === 'failed' || outcome.error !== null) {
        if (!res.headersSent) return sendError(res, outcome.error, requestId, logger);
        sse.end(`data: ${JSON.stringify(errorChunk(outcome, prepared.created, kind))}\n\n`);
        return;
      }
      sse.open();
      const final = {
        id: generationId,
        object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
        created: prepared.created,
        model: outcome.model,
        provider: outcome.providerName,
        choices: [],
        usage: usageJson(outcome),
        ...(metadata && { openrouter_metadata: routerMetadata(prepared, outcome) }),
      };
      sse.end(`data: ${JSON.stringify(final)}\n\n${SSE_DONE}`);
    } catch (error) {
      sendError(res, error, requestId, logger);
    }
  };

  const embeddings = async ({ req, res, requestId }: RestRequest) => {
    const generationId = newGenerationId();
    try {
      const principal = requireUser(deps.directory, req);
      const sent = await readJsonBody(req, config.MAX_BODY_BYTES);
      const parsed = parseEmbeddingBody(sent);
      const outcome = await gateway.embed({
        generationId,
        principal,
        parsed,
        correlationId: requestId,
        app: appAttributionOf(req),
        idempotency: idempotencyOf(req, res, EMBEDDINGS_ROUTE, sent),
        onReserved: () => res.setHeader('x-generation-id', generationId),
        clientGone: () => clientLeft(res),
        ...(deps.shutdown && { shutdown: deps.shutdown }),
      });
      const base64 = parsed.request.encodingFormat === 'base64';
      sendJson(res, 200, {
        object: 'list',
        id: generationId,
        model: outcome.model,
        provider: outcome.providerName,
        data: outcome.vectors.map((vector, index) => ({ object: 'embedding', index, embedding: base64 ? base64Vector(vector) : vector })),
        usage: {
          prompt_tokens: outcome.usage.prompt_tokens,
          total_tokens: outcome.usage.prompt_tokens,
          cost: toUsdNumber(outcome.cost),
          // As chat's: whether the account's own provider key served it, and then its list price.
          is_byok: outcome.upstreamCost !== null,
          cost_details: { upstream_inference_cost: outcome.upstreamCost === null ? null : toUsdNumber(outcome.upstreamCost) },
        },
      });
    } catch (error) {
      sendError(res, error, requestId, logger);
    }
  };

  return [
    { method: 'POST', path: EMBEDDINGS_ROUTE, handler: embeddings },
    { method: 'POST', path: CHAT_ROUTE, handler: completion('chat') },
    { method: 'POST', path: COMPLETIONS_ROUTE, handler: completion('completion') },
  ];
};

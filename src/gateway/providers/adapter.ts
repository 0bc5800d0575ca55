import type { SseMessage } from '../sse.js';
import type { ChatChunk, ChatRequest, ChatResponse, FinishReason, ProviderError, ReasoningEffort, Usage } from '../types.js';

export type Protocol = 'openai' | 'anthropic' | 'gemini';

/** Where a request goes. `baseUrl` includes the API version prefix: `…/v1` (OpenAI, Anthropic), `…/v1beta` (Gemini). */
export interface UpstreamTarget {
  baseUrl: string;
  upstreamModel: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /**
   * The most output tokens the call was admitted and reserved for (the request's max_tokens, else what the endpoint
   * and the context allow): a protocol that must send a max_tokens (Anthropic's) sends no more when the request sets
   * none. Absent: no bound.
   */
  maxOutputTokens?: number;
}

export interface UpstreamRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

/** Values the caller wants on every response/chunk (e.g. its own `gen-…` id); upstream values fill the gaps. */
export interface ResponseMeta {
  id?: string;
  created?: number;
  model?: string;
}

export interface StreamOutcome {
  usage?: Usage;
  finishReason?: FinishReason;
  nativeFinishReason?: string;
  /**
   * Why the upstream ended the answer with an error in the stream (an OpenAI-compatible choice's `error`, with
   * finish_reason "error"): the answer as sent is the answer, billed on its usage, and this is its error, as a whole
   * answer's `choices[0].error`. (An error event that is no part of an answer, Anthropic's `event: error`, a chunk's
   * top-level `error`, is thrown by `push` instead.)
   */
  error?: ProviderError;
  /** The protocol's end marker arrived (`[DONE]`, `message_stop`, a Gemini finishReason): the stream was not cut. */
  done: boolean;
}

export interface StreamParser {
  /** Canonical chunks for one upstream SSE message. Throws a ProviderError for an in-stream error event. */
  push(message: SseMessage): ChatChunk[];
  /**
   * The protocol's end arrived (`[DONE]`, `message_stop`, the Gemini chunk with a finishReason): what follows is not
   * the answer, and `push` ignores it (the router stops reading there).
   */
  ended(): boolean;
  finish(): StreamOutcome;
}

export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export interface ReasoningControls {
  /** The `reasoning.effort` values that change what the upstream does. */
  readonly efforts: readonly ReasoningEffort[];
  /** Whether `reasoning.max_tokens` reaches the upstream (as a thinking budget). */
  readonly maxTokens: boolean;
}

/** One per wire protocol. Pure: no I/O, no clock, no randomness. */
export interface ProviderAdapter {
  readonly protocol: Protocol;
  /** OpenRouter `supported_parameters` names this adapter maps; anything else is dropped. */
  readonly supportedParameters: readonly string[];
  /** Which of `reasoning`'s controls the request it builds carries upstream (the models API shows them). */
  readonly reasoning: ReasoningControls;
  /**
   * Whether buildRequest may refuse a request (throw a `bad_request` ProviderError: what this protocol cannot carry). An
   * adapter that refuses nothing carries every request the gateway accepts, known without building one (router.ts
   * carriageOf): set it true when buildRequest gains a refusal.
   */
  readonly refuses: boolean;
  buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest;
  /** Throws a ProviderError when the body is not a usable completion. */
  parseResponse(status: number, json: unknown, meta?: ResponseMeta): ChatResponse;
  createStreamParser(meta?: ResponseMeta): StreamParser;
  /** `nowMs` resolves an HTTP-date Retry-After; without it only delta-seconds are honoured. */
  mapError(status: number, headers: HeaderSource, bodyText: string, nowMs?: number): ProviderError;
}

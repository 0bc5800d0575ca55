/**
 * Canonical gateway types. The OpenAI chat-completions shape (with OpenRouter's additions: `reasoning`,
 * `native_finish_reason`, cache-write tokens) is the lingua franca; every provider adapter maps to and from it.
 */

export type JsonObject = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------------
// Request

export interface CacheControl {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
}

export interface TextPart {
  type: 'text';
  text: string;
  cache_control?: CacheControl;
}

export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}

/** OpenAI's file part: `file_data` is a data URL (`data:application/pdf;base64,…`) or an https URL. */
export interface FilePart {
  type: 'file';
  file: { filename?: string; file_data?: string; file_id?: string };
}

/** OpenAI's audio part: base64 data and its format. */
export interface AudioPart {
  type: 'input_audio';
  input_audio: { data: string; format: string };
}

export type ContentPart = TextPart | ImagePart | FilePart | AudioPart;
export type MessageContent = string | ContentPart[];

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** OpenRouter's structured reasoning: returned by providers, passed back on later turns to keep signatures. */
export type ReasoningDetail =
  | { type: 'reasoning.text'; text?: string; signature?: string; format?: string; id?: string; index?: number }
  | { type: 'reasoning.encrypted'; data: string; format?: string; id?: string; index?: number }
  | { type: 'reasoning.summary'; summary: string; format?: string; id?: string; index?: number };

export interface SystemMessage {
  role: 'system' | 'developer';
  content: MessageContent;
  name?: string;
}

export interface UserMessage {
  role: 'user';
  content: MessageContent;
  name?: string;
}

export interface AssistantMessage {
  role: 'assistant';
  content?: MessageContent | null;
  name?: string;
  tool_calls?: ToolCall[];
  refusal?: string | null;
  reasoning?: string | null;
  reasoning_details?: ReasoningDetail[];
}

export interface ToolMessage {
  role: 'tool';
  content: MessageContent;
  tool_call_id: string;
  name?: string;
}

export type ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

export interface FunctionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: JsonObject; strict?: boolean | null };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      json_schema: { name: string; description?: string; schema?: JsonObject; strict?: boolean | null };
    };

export const REASONING_EFFORTS = ['max', 'xhigh', 'high', 'medium', 'low', 'minimal', 'none'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

export interface ReasoningConfig {
  effort?: ReasoningEffort;
  max_tokens?: number;
  exclude?: boolean;
  enabled?: boolean;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: FunctionTool[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  /** OpenRouter's top_a sampling (passed on to OpenAI-compatible servers that take it). */
  top_a?: number;
  /** OpenAI's predicted output. */
  prediction?: { type: 'content'; content: string | { type: 'text'; text: string }[] };
  repetition_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  stop?: string | string[];
  seed?: number;
  logit_bias?: Record<string, number>;
  logprobs?: boolean;
  top_logprobs?: number;
  n?: number;
  response_format?: ResponseFormat;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  user?: string;
  reasoning?: ReasoningConfig;
  /** OpenAI's prompt-cache routing hint (also Switchyard's sticky-routing key, chatRequest.ts). */
  prompt_cache_key?: string;
  /** Anthropic's automatic prompt caching (a top-level breakpoint); sent to Anthropic upstreams only. */
  cache_control?: CacheControl;
  /** Anthropic beta flags from the request's `x-anthropic-beta` header (not a body field); Anthropic upstreams only. */
  anthropic_beta?: readonly string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Response, chunks, usage

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'error';

export interface Usage {
  /** Includes cached tokens (OpenAI/OpenRouter convention). */
  prompt_tokens: number;
  /** Includes reasoning tokens. */
  completion_tokens: number;
  total_tokens: number;
  /** Audio and video tokens are parts of prompt_tokens, as the upstream reported them (priced as prompt tokens). */
  prompt_tokens_details?: { cached_tokens: number; cache_write_tokens?: number; audio_tokens?: number; video_tokens?: number };
  /** Audio and image tokens are parts of completion_tokens, as the upstream reported them. */
  completion_tokens_details?: { reasoning_tokens: number; audio_tokens?: number; image_tokens?: number };
  /** The upstream's own server-side tools (Anthropic's web search). */
  server_tool_use?: { web_search_requests: number };
}

export interface ResponseMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ToolCall[];
  refusal?: string | null;
  reasoning?: string | null;
  reasoning_details?: ReasoningDetail[];
}

/** OpenAI's `logprobs` of a choice (`{content: [{token, logprob, bytes, top_logprobs}], refusal}`), passed on as sent. */
export type ChoiceLogprobs = JsonObject;

export interface ChatChoice {
  index: number;
  message: ResponseMessage;
  finish_reason: FinishReason | null;
  native_finish_reason: string | null;
  logprobs?: ChoiceLogprobs | null;
  /**
   * The stop sequence that ended the answer, when the upstream says which one (Anthropic's `stop_sequence`). Not part
   * of OpenAI's shape: the chat/completions writers leave it out; the Messages skin shows it.
   */
  stop_sequence?: string;
  /**
   * Why the upstream ended this answer with finish_reason "error" (OpenRouter's `choices[].error` on a whole answer
   * with a provider error mid-generation), as the adapter read it. Unredacted: the REST edge never writes it as is, but
   * the client-facing error the router made of it (redacted, in OpenRouter's shape).
   */
  error?: ProviderError;
}

export interface ChatResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatChoice[];
  usage?: Usage;
  system_fingerprint?: string | null;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChunkDelta {
  role?: 'assistant';
  content?: string | null;
  reasoning?: string | null;
  /** The alias of `reasoning` the REST edge adds (adapters set only `reasoning`). */
  reasoning_content?: string | null;
  reasoning_details?: ReasoningDetail[];
  tool_calls?: ToolCallDelta[];
  refusal?: string | null;
}

export interface ChunkChoice {
  index: number;
  delta: ChunkDelta;
  finish_reason: FinishReason | null;
  native_finish_reason?: string | null;
  logprobs?: ChoiceLogprobs | null;
  /** On the finishing chunk: the stop sequence that ended the answer, when the upstream says (as ChatChoice's). */
  stop_sequence?: string;
  /**
   * On the finishing chunk of an answer its upstream ended with an error in the stream (finish_reason "error" and an
   * error, on that chunk or earlier on the choice): that error, as the adapter read it (as ChatChoice's). Unredacted: chat/completions holds this choice
   * back and ends the stream with OpenRouter's error chunk, the outcome's error (redacted) in it; the skins end theirs
   * with the outcome's error too.
   */
  error?: ProviderError;
}

/** OpenRouter's mid-stream error payload (top-level `error` on a chunk). */
export interface ChunkError {
  code: number | string;
  message: string;
  metadata?: JsonObject;
}

export interface ChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChunkChoice[];
  /** The provider that wrote it (its display name), on every chunk as OpenRouter sends it. */
  provider?: string;
  usage?: Usage;
  error?: ChunkError;
  /** OpenRouter's debug chunk (`debug.echo_upstream_body`): no choices, the body sent to a provider. */
  debug?: { echo_upstream_body: unknown };
}

// ---------------------------------------------------------------------------------------------------------------
// Provider errors

export type ProviderErrorCode =
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'bad_request'
  | 'auth'
  | 'payment_required'
  | 'context_length'
  | 'content_filter'
  | 'malformed_response'
  | 'not_found'
  /** Switchyard failed before anything was sent (building the provider's request threw): never the provider's fault. */
  | 'internal'
  /** The answer did not fit in what Switchyard holds of answers at once (GATEWAY_ANSWER_BUFFER_BYTES): not the provider's fault. */
  | 'capacity'
  /** The provider sent far more output than the call's max_tokens allows (router.ts maxOutputChars): cut there. */
  | 'output_too_long';

export interface ProviderErrorInit {
  code: ProviderErrorCode;
  status: number;
  retryable: boolean;
  message?: string;
  retryAfterMs?: number;
  provider?: string;
  upstreamCode?: string;
  upstreamMessage?: string;
  /** What was wrong with the answer in Switchyard's own words (never the upstream's): shown to the client, 5xx or not. */
  detail?: string;
  /** The adapter refused the request before anything was sent (its protocol cannot carry it): no provider answered. */
  unsent?: true;
  cause?: unknown;
}

/**
 * An upstream failure, classified. Fallback logic reads `code`, `status`, `retryable` and `retryAfterMs`; it never
 * parses messages. `retryable` means "another attempt (this endpoint later, or the next endpoint) may succeed".
 */
export class ProviderError extends Error {
  readonly code: ProviderErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly provider?: string;
  readonly upstreamCode?: string;
  readonly upstreamMessage?: string;
  readonly detail?: string;
  readonly unsent?: true;

  constructor(init: ProviderErrorInit) {
    super(init.message ?? init.upstreamMessage ?? init.code, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ProviderError';
    this.code = init.code;
    this.status = init.status;
    this.retryable = init.retryable;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.provider !== undefined) this.provider = init.provider;
    if (init.upstreamCode !== undefined) this.upstreamCode = init.upstreamCode;
    if (init.upstreamMessage !== undefined) this.upstreamMessage = init.upstreamMessage;
    if (init.detail !== undefined) this.detail = init.detail;
    if (init.unsent !== undefined) this.unsent = init.unsent;
  }
}

/**
 * OpenAI's Responses API at `POST /api/v1/responses`, stateless as OpenRouter's beta. The request becomes a
 * chat-completions body that the one chat parser (parseChatBody) reads, so routing, fallbacks, the reservation,
 * billing and the generation record are the chat path's; the answer (or its chunks) is translated back into a
 * Response object (or the Responses SSE events, each with its `sequence_number`). Nothing is stored, so what needs a
 * stored response (previous_response_id, store:true, background, conversation, item_reference) is a 400.
 */
import { appAttributionOf, KEEPALIVE_COMMENT, chatHeadersOf, idempotencyOf, streamGeneration, wholeCall, failureOf, type GatewayRouteDeps, type SseWriter } from './sseGeneration.js';
import { routerMetadata, wantsRouterMetadata } from '../routerMetadata.js';
import type { DomainError } from '../../errors.js';
import { readJsonBody, requireUser, sendError, sendJson, type RestRequest, type Route } from '../../http/rest.js';
import { newGenerationId } from '../../modules/generations/generation.events.js';
import { costsOf } from '../rest.js';
import { parseChatBody } from '../chatRequest.js';
import { applyPreset } from '../../modules/presets/presetResolution.js';
import type { GenerationOutcome } from '../gateway.js';
import { GatewayError, invalidRequest } from '../gatewayErrors.js';
import type { AssistantMessage, ChatChunk, ChatMessage, ContentPart, FinishReason, FunctionTool, ReasoningDetail, ResponseFormat, ResponseMessage, ToolCall, ToolChoice } from '../types.js';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const refuse = (param: string, message: string): never => {
  throw invalidRequest(message, { param });
};
const str = (value: unknown, param: string, what = 'a string'): string => (typeof value === 'string' ? value : refuse(param, `${param} must be ${what}`));
const nonEmpty = (value: unknown, param: string): string => (typeof value === 'string' && value !== '' ? value : refuse(param, `${param} must be a non-empty string`));

// -----------------------------------------------------------------------------------------------------------------
// Request → chat body

/** Fields with the same name and meaning in both APIs (OpenRouter's routing fields included), passed on as sent. */
const SAME_FIELDS = ['model', 'models', 'provider', 'plugins', 'debug', 'temperature', 'top_p', 'top_k', 'min_p', 'frequency_penalty', 'presence_penalty', 'repetition_penalty', 'seed', 'stop', 'user', 'session_id', 'prompt_cache_key', 'parallel_tool_calls', 'stream', 'preset', 'route'] as const;

/** Switches of this API the skin reads itself (the chat parser checks those it passes on, such as stream). */
const BOOLEANS = ['store', 'background'] as const;

/** What needs state this API does not keep, and the field that asks for it. */
const STATEFUL: readonly [string, (value: unknown) => boolean, string][] = [
  ['previous_response_id', (v) => v != null, 'previous_response_id needs stored responses, which this stateless API does not keep: send the whole conversation in input'],
  ['store', (v) => v === true, 'store: true is not supported: responses are not stored (send store: false or leave it out)'],
  ['background', (v) => v === true, 'background: true is not supported: responses are answered in the request (stream them instead)'],
  ['conversation', (v) => v != null, 'conversation needs stored conversations, which this stateless API does not keep: send the whole conversation in input'],
  ['prompt', (v) => v != null, 'prompt (a stored prompt template) is not supported: send instructions and input instead'],
];

/** The chat parser's bound on max_tokens, checked here so the message names this API's field. */
const MAX_OUTPUT_TOKENS = 10_000_000;
const INPUT = 'input must be a non-empty string or a non-empty list of items (messages, function_call, function_call_output)';
const USER_PARTS = '{type:"input_text", text}, {type:"input_image", image_url} or {type:"input_file", file_data or file_url}';

/** A user, system or developer message's part (also a function_call_output's). */
const inputPart = (part: unknown, at: string): ContentPart => {
  if (!isObject(part)) return refuse(at, `${at} must be an object`);
  switch (part.type) {
    case 'input_text':
      return { type: 'text', text: str(part.text, `${at}.text`) };
    case 'input_image': {
      if (part.image_url == null) return refuse(`${at}.image_url`, `${at}.image_url is required: file ids need the Files API, which Switchyard does not have (send an https or data URL)`);
      const detail = part.detail === 'low' || part.detail === 'high' || part.detail === 'auto' ? part.detail : undefined;
      return { type: 'image_url', image_url: { url: nonEmpty(part.image_url, `${at}.image_url`), ...(detail && { detail }) } };
    }
    case 'input_file': {
      const data = part.file_data ?? part.file_url;
      if (data == null) return refuse(at, `${at} needs file_data (a data URL) or file_url: file ids need the Files API, which Switchyard does not have`);
      const filename = part.filename == null ? undefined : str(part.filename, `${at}.filename`);
      return { type: 'file', file: { file_data: nonEmpty(data, `${at}.${part.file_data != null ? 'file_data' : 'file_url'}`), ...(filename !== undefined && { filename }) } };
    }
    default:
      return refuse(`${at}.type`, `${at} must be ${USER_PARTS} (got type ${JSON.stringify(part.type)})`);
  }
};

const inputContent = (content: unknown, at: string): string | ContentPart[] => {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return refuse(at, `${at} must be a string or a list of ${USER_PARTS}`);
  return content.map((part, i) => inputPart(part, `${at}[${i}]`));
};

/** An assistant turn of the history: its text (output_text parts, as a previous response's output has them). */
const assistantText = (content: unknown, at: string): string => {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return refuse(at, `${at} must be a string or a list of {type:"output_text", text} parts`);
  return content
    .map((part, i) => {
      const where = `${at}[${i}]`;
      if (!isObject(part)) return refuse(where, `${where} must be an object`);
      if (part.type === 'output_text' || part.type === 'input_text') return str(part.text, `${where}.text`);
      if (part.type === 'refusal') return str(part.refusal, `${where}.refusal`);
      return refuse(`${where}.type`, `${where} must be {type:"output_text", text} or {type:"refusal", refusal} (got type ${JSON.stringify(part.type)})`);
    })
    .join('');
};

const messageOf = (item: Json, at: string): ChatMessage => {
  switch (item.role) {
    case 'user':
    case 'system':
    case 'developer':
      return { role: item.role, content: inputContent(item.content, `${at}.content`) };
    case 'assistant':
      return { role: 'assistant', content: assistantText(item.content, `${at}.content`) };
    default:
      return refuse(`${at}.role`, `${at}.role must be user, assistant, system or developer (got ${JSON.stringify(item.role)})`);
  }
};

/**
 * A previous answer's signed reasoning (Anthropic's thinking signatures and redacted thinking, Gemini's thought
 * signatures, what an OpenRouter upstream sent): the chat core's `reasoning_details`, carried in the reasoning item's
 * `encrypted_content` (OpenAI's field for reasoning a stateless client sends back) and read back into the assistant
 * turn, as chat clients send them, so that the adapter replays them (Anthropic refuses a tool loop with thinking
 * whose assistant turn lost its signed thinking block). Opaque to the client, not encrypted: `sy1.` and base64url JSON.
 */
const SEALED = 'sy1.';
const sealReasoning = (details: readonly ReasoningDetail[]): string | undefined => (details.length === 0 ? undefined : SEALED + Buffer.from(JSON.stringify(details)).toString('base64url'));

const isDetail = (d: unknown): d is ReasoningDetail => {
  if (!isObject(d)) return false;
  const optional = (key: string, type: 'string' | 'number') => d[key] === undefined || typeof d[key] === type;
  if (!optional('format', 'string') || !optional('id', 'string') || !optional('index', 'number')) return false;
  switch (d.type) {
    case 'reasoning.text':
      return optional('text', 'string') && optional('signature', 'string');
    case 'reasoning.encrypted':
      return typeof d.data === 'string';
    case 'reasoning.summary':
      return typeof d.summary === 'string';
    default:
      return false;
  }
};

/** A reasoning input item's details; none for one without encrypted_content or with another API's (OpenAI's own). */
const unsealReasoning = (value: unknown, at: string): ReasoningDetail[] => {
  if (value == null) return [];
  const param = `${at}.encrypted_content`;
  if (typeof value !== 'string') return refuse(param, `${param} must be a string`);
  // Another API's reasoning (OpenAI's encrypted reasoning): no provider here can read it, so it is left out, as
  // reasoning without encrypted_content is.
  if (!value.startsWith(SEALED)) return [];
  let details: unknown;
  try {
    details = JSON.parse(Buffer.from(value.slice(SEALED.length), 'base64url').toString('utf8'));
  } catch {
    details = null;
  }
  if (!Array.isArray(details) || details.length === 0 || !details.every(isDetail)) {
    return refuse(param, `${param} is damaged: send back the encrypted_content of a reasoning item of this API's answer as it came`);
  }
  return details;
};

/** The conversation: `instructions` first (as a system message), then the input items in order. */
const messagesOf = (input: unknown, instructions: string | undefined): ChatMessage[] => {
  const messages: ChatMessage[] = instructions === undefined ? [] : [{ role: 'system', content: instructions }];
  if (typeof input === 'string') {
    if (input === '') refuse('input', INPUT);
    messages.push({ role: 'user', content: input });
    return messages;
  }
  if (!Array.isArray(input) || input.length === 0) return refuse('input', INPUT);
  // Signed reasoning read before the assistant turn it belongs to (a turn's reasoning item comes first in its output).
  let reasoning: ReasoningDetail[] = [];
  const lastAssistant = (): AssistantMessage | null => {
    const last = messages[messages.length - 1];
    return last?.role === 'assistant' ? last : null;
  };
  const withReasoning = (turn: AssistantMessage) => {
    if (reasoning.length === 0) return;
    (turn.reasoning_details ??= []).push(...reasoning);
    reasoning = [];
  };
  input.forEach((item: unknown, i) => {
    const at = `input[${i}]`;
    if (!isObject(item)) return refuse(at, `${at} must be an object`);
    // An "easy" message has a role and no type.
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const message = messageOf(item, at);
        messages.push(message);
        if (message.role === 'assistant') withReasoning(message);
        else reasoning = []; // reasoning with no turn of its own is not a prompt
        break;
      }
      case 'function_call': {
        const call: ToolCall = {
          id: nonEmpty(item.call_id, `${at}.call_id`),
          type: 'function',
          function: { name: nonEmpty(item.name, `${at}.name`), arguments: str(item.arguments, `${at}.arguments`, 'a string (JSON)') },
        };
        // The calls of one turn, and the text before them, are one assistant message in chat.
        const turn = lastAssistant();
        if (turn) (turn.tool_calls ??= []).push(call);
        else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
        withReasoning(lastAssistant()!);
        break;
      }
      case 'function_call_output':
        messages.push({ role: 'tool', tool_call_id: nonEmpty(item.call_id, `${at}.call_id`), content: inputContent(item.output, `${at}.output`) });
        reasoning = [];
        break;
      case 'reasoning': {
        // A previous answer's reasoning. Its text alone is the model's own words, not a prompt, and no provider takes
        // it back unsigned: left out, as chat clients leave it out. What a provider signed (encrypted_content) goes
        // to its assistant turn: the one it ends (a signature after the turn's calls, as Gemini's), else the next.
        reasoning.push(...unsealReasoning(item.encrypted_content, at));
        const turn = lastAssistant();
        if (turn) withReasoning(turn);
        break;
      }
      case 'item_reference':
        return refuse(at, `${at}: item_reference needs stored responses, which this stateless API does not keep: send the item itself`);
      default:
        return refuse(`${at}.type`, `${at}.type must be message, function_call, function_call_output or reasoning (got ${JSON.stringify(type)})`);
    }
  });
  return messages;
};

const toolsOf = (tools: unknown): FunctionTool[] | undefined => {
  if (tools == null) return undefined;
  if (!Array.isArray(tools)) return refuse('tools', 'tools must be a list of {type:"function", name, parameters}');
  return tools.map((tool: unknown, i) => {
    const at = `tools[${i}]`;
    if (!isObject(tool)) return refuse(at, `${at} must be an object`);
    if (tool.type !== 'function') {
      return refuse(`${at}.type`, `${at}.type ${JSON.stringify(tool.type)} is not supported: only function tools ({type:"function", name, parameters}) are; built-in tools (web search, file search, code interpreter, MCP ...) are not`);
    }
    if (tool.parameters != null && !isObject(tool.parameters)) refuse(`${at}.parameters`, `${at}.parameters must be a JSON schema object`);
    if (tool.strict != null && typeof tool.strict !== 'boolean') refuse(`${at}.strict`, `${at}.strict must be a boolean`);
    const description = tool.description == null ? undefined : str(tool.description, `${at}.description`);
    return {
      type: 'function',
      function: {
        name: nonEmpty(tool.name, `${at}.name`),
        ...(description !== undefined && { description }),
        ...(isObject(tool.parameters) && { parameters: tool.parameters }),
        ...(typeof tool.strict === 'boolean' && { strict: tool.strict }),
      },
    };
  });
};

const TOOL_CHOICE = 'tool_choice must be "none", "auto", "required" or {type:"function", name}';
const toolChoiceOf = (choice: unknown): ToolChoice | undefined => {
  if (choice == null) return undefined;
  if (choice === 'none' || choice === 'auto' || choice === 'required') return choice;
  if (isObject(choice) && choice.type === 'function') return { type: 'function', function: { name: nonEmpty(choice.name, 'tool_choice.name') } };
  return refuse('tool_choice', TOOL_CHOICE);
};

const formatOf = (text: unknown): ResponseFormat | undefined => {
  if (text == null) return undefined;
  if (!isObject(text)) return refuse('text', 'text must be an object such as {format: {type: "json_schema", name, schema}}');
  const format = text.format;
  if (format == null) return undefined;
  if (!isObject(format)) return refuse('text.format', 'text.format must be an object');
  switch (format.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      if (!isObject(format.schema)) return refuse('text.format.schema', 'text.format.schema must be a JSON schema object');
      if (format.strict != null && typeof format.strict !== 'boolean') refuse('text.format.strict', 'text.format.strict must be a boolean');
      const description = format.description == null ? undefined : str(format.description, 'text.format.description');
      return {
        type: 'json_schema',
        json_schema: {
          name: nonEmpty(format.name, 'text.format.name'),
          schema: format.schema,
          ...(description !== undefined && { description }),
          ...(typeof format.strict === 'boolean' && { strict: format.strict }),
        },
      };
    }
    default:
      return refuse('text.format.type', 'text.format.type must be text, json_object or json_schema');
  }
};

const METADATA = 'metadata must be an object of at most 16 string values (keys up to 64 characters, values up to 512)';
const metadataOf = (metadata: unknown): Record<string, string> => {
  if (metadata == null) return {};
  if (!isObject(metadata)) return refuse('metadata', METADATA);
  const entries = Object.entries(metadata);
  if (entries.length > 16 || entries.some(([k, v]) => k.length > 64 || typeof v !== 'string' || v.length > 512)) return refuse('metadata', METADATA);
  return metadata as Record<string, string>;
};

/** What the Response object echoes of the request (OpenAI's objects carry their settings). */
interface Echo {
  readonly instructions: string | null;
  readonly tools: unknown[];
  readonly toolChoice: unknown;
  readonly temperature: number | null;
  readonly topP: number | null;
  readonly maxOutputTokens: number | null;
  readonly parallelToolCalls: boolean;
  readonly text: unknown;
  readonly reasoning: unknown;
  readonly metadata: Record<string, string>;
}

/** A Responses body as the chat body the gateway reads, and what the answer echoes. */
export const chatBodyOf = (raw: unknown): { chat: Json; echo: Echo } => {
  if (!isObject(raw)) return refuse('body', 'The request body must be a JSON object');
  // Typed before STATEFUL reads them: `store: "yes"` is neither the refused true nor the accepted false.
  for (const field of BOOLEANS) if (raw[field] != null && typeof raw[field] !== 'boolean') refuse(field, `${field} must be a boolean (got ${Array.isArray(raw[field]) ? 'a list' : `a ${typeof raw[field]}`})`);
  for (const [field, asks, message] of STATEFUL) if (asks(raw[field])) refuse(field, message);
  const instructions = raw.instructions == null ? undefined : str(raw.instructions, 'instructions');
  const maxOutput = raw.max_output_tokens;
  if (maxOutput != null && (typeof maxOutput !== 'number' || !Number.isInteger(maxOutput) || maxOutput < 1 || maxOutput > MAX_OUTPUT_TOKENS)) {
    refuse('max_output_tokens', `max_output_tokens must be an integer between 1 and ${MAX_OUTPUT_TOKENS}`);
  }
  const reasoning = raw.reasoning;
  if (reasoning != null && !isObject(reasoning)) refuse('reasoning', 'reasoning must be an object such as {effort: "low"}');
  const effort = isObject(reasoning) ? reasoning.effort : undefined;
  const tools = toolsOf(raw.tools);
  const toolChoice = toolChoiceOf(raw.tool_choice);
  const format = formatOf(raw.text);

  const chat: Json = { messages: messagesOf(raw.input, instructions) };
  for (const field of SAME_FIELDS) if (raw[field] != null) chat[field] = raw[field];
  if (maxOutput != null) chat.max_tokens = maxOutput;
  if (tools !== undefined) chat.tools = tools;
  if (toolChoice !== undefined) chat.tool_choice = toolChoice;
  if (format !== undefined) chat.response_format = format;
  if (effort != null) chat.reasoning = { effort };
  const echo: Echo = {
    instructions: instructions ?? null,
    tools: (tools ?? []).map((t) => ({ type: 'function', name: t.function.name, description: t.function.description ?? null, parameters: t.function.parameters ?? null, strict: t.function.strict ?? null })),
    toolChoice: raw.tool_choice ?? 'auto',
    temperature: typeof raw.temperature === 'number' ? raw.temperature : null,
    topP: typeof raw.top_p === 'number' ? raw.top_p : null,
    maxOutputTokens: typeof maxOutput === 'number' ? maxOutput : null,
    parallelToolCalls: raw.parallel_tool_calls !== false,
    text: isObject(raw.text) && isObject(raw.text.format) ? { format: raw.text.format } : { format: { type: 'text' } },
    reasoning: isObject(reasoning) ? { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null } : { effort: null, summary: null },
    metadata: metadataOf(raw.metadata),
  };
  return { chat, echo };
};

// -----------------------------------------------------------------------------------------------------------------
// Answer → Response object

/** An output item's status: OpenAI's three (a cut or failed answer's items are incomplete, never "failed"). */
type ItemStatus = 'in_progress' | 'completed' | 'incomplete';
/** The Response's status. */
type Status = ItemStatus | 'failed';

interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: [];
  logprobs: [];
}
interface RefusalPart {
  type: 'refusal';
  refusal: string;
}
interface MessageItem {
  type: 'message';
  id: string;
  role: 'assistant';
  status: ItemStatus;
  content: (OutputTextPart | RefusalPart)[];
}
interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
}
interface ReasoningItem {
  type: 'reasoning';
  id: string;
  summary: [];
  content: { type: 'reasoning_text'; text: string }[];
  /** What the provider signed (sealReasoning), for the client to send back with the item. */
  encrypted_content?: string;
  status: ItemStatus;
}
type OutputItem = MessageItem | FunctionCallItem | ReasoningItem;

/** Item ids share the generation's suffix: `gen-x` answers as `resp_x` with `msg_x`, `rs_x` and `fc_x_0`. */
const idsOf = (generationId: string) => {
  const suffix = generationId.replace(/^gen-/, '');
  return { response: `resp_${suffix}`, message: `msg_${suffix}`, reasoning: `rs_${suffix}`, call: (index: number) => `fc_${suffix}_${index}` };
};

/**
 * finish_reason → the Response's status and its items'. A cut by max tokens or a content filter is "incomplete", with
 * its reason; an answer its provider ended with an error is "failed" (with the error: failedError), its items cut short.
 */
const endOf = (finish: FinishReason | null): { status: Status; items: ItemStatus; incomplete: { reason: 'max_output_tokens' | 'content_filter' } | null } => {
  switch (finish) {
    case 'length':
      return { status: 'incomplete', items: 'incomplete', incomplete: { reason: 'max_output_tokens' } };
    case 'content_filter':
      return { status: 'incomplete', items: 'incomplete', incomplete: { reason: 'content_filter' } };
    case 'error':
      return { status: 'failed', items: 'incomplete', incomplete: null };
    case 'stop':
    case 'tool_calls':
    case null:
      return { status: 'completed', items: 'completed', incomplete: null };
    default: {
      const never: never = finish;
      return never;
    }
  }
};

/** OpenAI's usage with OpenRouter's additions on this API: `cost` in USD, `is_byok` and `cost_details` (its input / output names). */
const usageOf = (outcome: GenerationOutcome) => {
  const costs = costsOf(outcome);
  return {
    input_tokens: outcome.usage.prompt_tokens,
    input_tokens_details: { cached_tokens: outcome.usage.prompt_tokens_details?.cached_tokens ?? 0, cache_write_tokens: outcome.usage.prompt_tokens_details?.cache_write_tokens ?? 0 },
    output_tokens: outcome.usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: outcome.usage.completion_tokens_details?.reasoning_tokens ?? 0 },
    total_tokens: outcome.usage.prompt_tokens + outcome.usage.completion_tokens,
    cost: costs.cost,
    is_byok: costs.byok,
    cost_details: { upstream_inference_cost: costs.upstream, upstream_inference_input_cost: costs.prompt, upstream_inference_output_cost: costs.completions },
  };
};

const responseObject = (
  base: { id: string; createdAt: number; model: string; echo: Echo },
  state: { status: Status; output: OutputItem[]; incomplete?: { reason: string } | null; error?: { code: string; message: string } | null; outcome?: GenerationOutcome },
) => ({
  id: base.id,
  object: 'response',
  created_at: base.createdAt,
  status: state.status,
  ...(state.status === 'completed' && { completed_at: Math.floor(Date.now() / 1000) }),
  error: state.error ?? null,
  incomplete_details: state.incomplete ?? null,
  instructions: base.echo.instructions,
  max_output_tokens: base.echo.maxOutputTokens,
  metadata: base.echo.metadata,
  model: state.outcome?.model ?? base.model,
  ...(state.outcome?.providerName != null && { provider: state.outcome.providerName }),
  output: state.output,
  parallel_tool_calls: base.echo.parallelToolCalls,
  previous_response_id: null,
  reasoning: base.echo.reasoning,
  store: false,
  temperature: base.echo.temperature,
  text: base.echo.text,
  tool_choice: base.echo.toolChoice,
  tools: base.echo.tools,
  top_p: base.echo.topP,
  truncation: 'disabled',
  usage: state.outcome ? usageOf(state.outcome) : null,
});

/** A whole chat answer's output items: reasoning, then the message, then the function calls. */
const outputOf = (message: ResponseMessage, status: ItemStatus, ids: ReturnType<typeof idsOf>): OutputItem[] => {
  const output: OutputItem[] = [];
  const sealed = sealReasoning(message.reasoning_details ?? []);
  if (message.reasoning || sealed !== undefined) {
    const content = message.reasoning ? [{ type: 'reasoning_text' as const, text: message.reasoning }] : [];
    output.push({ type: 'reasoning', id: ids.reasoning, summary: [], content, ...(sealed !== undefined && { encrypted_content: sealed }), status });
  }
  const content: MessageItem['content'] = [];
  if (message.content) content.push({ type: 'output_text', text: message.content, annotations: [], logprobs: [] });
  if (message.refusal) content.push({ type: 'refusal', refusal: message.refusal });
  const calls = message.tool_calls ?? [];
  // A message even when empty, unless the answer is only calls: a client reading output[0] finds the (empty) text.
  if (content.length > 0 || calls.length === 0) {
    if (content.length === 0) content.push({ type: 'output_text', text: '', annotations: [], logprobs: [] });
    output.push({ type: 'message', id: ids.message, role: 'assistant', status, content });
  }
  calls.forEach((call, i) => output.push({ type: 'function_call', id: ids.call(i), call_id: call.id, name: call.function.name, arguments: call.function.arguments, status }));
  return output;
};

// -----------------------------------------------------------------------------------------------------------------
// Errors in OpenAI's shape

/** OpenRouter's Responses codes (invalid_prompt, rate_limit_exceeded, server_error), else Switchyard's error type. */
const responsesCode = (error: DomainError): string => {
  if (error.status === 400) return 'invalid_prompt';
  if (error.status === 429) return 'rate_limit_exceeded';
  if (error.status >= 500) return 'server_error';
  return error.errorType;
};

/** OpenAI's `type` for a status (what its SDKs and clients branch on besides the status). */
const openAiType = (status: number): string => {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'insufficient_credits';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
};

/**
 * The chat body's fields this API's callers sent under another name (chatBodyOf): an error the chat core raises names
 * the chat field, which the caller never wrote. `messages` is named as a whole: its indexes are not the input's
 * (instructions become a message, a function_call joins the assistant message before it).
 */
const RESPONSES_NAMES: Readonly<Record<string, string>> = { messages: 'input', max_tokens: 'max_output_tokens', response_format: 'text.format' };

/** The Responses name of a chat param (`messages[2].content` → `input`), or null when it is the same. */
const responsesParamOf = (param: string): { chat: string; responses: string } | null => {
  const head = /^[a-z_]+/.exec(param)?.[0] ?? '';
  const responses = Object.hasOwn(RESPONSES_NAMES, head) ? RESPONSES_NAMES[head]! : null;
  if (responses === null) return null;
  return { chat: head === 'messages' ? param : head, responses };
};

/**
 * OpenAI's error object (`code`, `message`, `type`, `param`) with Switchyard's typed metadata beside it (the
 * error_type, the request id, the provider for upstream failures), so nothing the chat errors say is lost.
 */
export const responsesErrorBody = (error: DomainError, requestId: string) => {
  const sent = typeof error.metadata.param === 'string' ? error.metadata.param : null;
  const renamed = sent === null ? null : responsesParamOf(sent);
  const param = renamed?.responses ?? sent;
  return {
    error: {
      code: responsesCode(error),
      // A message that starts with the chat field's name starts with the caller's.
      message: renamed !== null && error.message.startsWith(renamed.chat) ? `${renamed.responses}${error.message.slice(renamed.chat.length)}` : error.message,
      type: openAiType(error.status),
      param,
      metadata: { ...error.metadata, ...(renamed !== null && { param }), error_type: error.errorType, request_id: requestId },
    },
  };
};

/**
 * Why an answer its provider ended with an error (finish_reason "error") failed, as the Response's `error`: the error
 * chat/completions shows as `choices[0].error` (redacted, in this API's codes), or, when the provider said none (a
 * stream's finish chunk), that it ended the answer with an error.
 */
const failedError = (outcome: GenerationOutcome, requestId: string): { code: string; message: string } => {
  const provider = outcome.providerName ?? 'The provider';
  const error = outcome.error ?? new GatewayError(502, 'provider_unavailable', `${provider} ended the answer with an error (finish_reason "error") after it began`, { provider_name: outcome.providerName });
  const { code, message } = responsesErrorBody(error, requestId).error;
  return { code, message };
};

// -----------------------------------------------------------------------------------------------------------------
// Streaming: chat chunks → Responses events

type Emit = (event: Json) => void;

/**
 * Turns the chunks of one answer into the Responses event sequence. Reasoning and the message are output items
 * closed when another item starts; function calls (one per tool-call index) stay open to the end, as a provider may
 * send arguments for an earlier call after a later one began. The signed reasoning (`reasoning_details`) that comes
 * while a reasoning item is open is sealed into its encrypted_content when it closes; what comes with none open
 * (Gemini's signatures beside its calls, a redacted block alone) goes out in a reasoning item of its own at the end.
 */
const createEventTranslator = (emit: Emit, ids: ReturnType<typeof idsOf>) => {
  const output: OutputItem[] = [];
  let open: { item: ReasoningItem | MessageItem; index: number; part: number } | null = null;
  const calls = new Map<number, { item: FunctionCallItem; index: number; closed: boolean }>();
  let details: ReasoningDetail[] = [];
  /** Reasoning text since the last detail: a signature that comes alone (Anthropic's signature_delta) signs it. */
  let unclaimed = '';
  let reasoningItems = 0;

  const add = (item: OutputItem): number => {
    output.push(item);
    emit({ type: 'response.output_item.added', output_index: output.length - 1, item: structuredClone(item) });
    return output.length - 1;
  };

  const closePart = () => {
    if (!open || open.part < 0) return;
    const { item, index, part } = open;
    if (item.type === 'reasoning') {
      const content = item.content[part]!;
      emit({ type: 'response.reasoning_text.done', item_id: item.id, output_index: index, content_index: part, text: content.text });
      emit({ type: 'response.content_part.done', item_id: item.id, output_index: index, content_index: part, part: { ...content } });
      return;
    }
    const content = item.content[part]!;
    if (content.type === 'output_text') emit({ type: 'response.output_text.done', item_id: item.id, output_index: index, content_index: part, text: content.text, logprobs: [] });
    else emit({ type: 'response.refusal.done', item_id: item.id, output_index: index, content_index: part, refusal: content.refusal });
    emit({ type: 'response.content_part.done', item_id: item.id, output_index: index, content_index: part, part: structuredClone(content) });
  };

  const closeOpen = (status: ItemStatus) => {
    if (!open) return;
    closePart();
    open.item.status = status;
    if (open.item.type === 'reasoning') {
      const sealed = sealReasoning(details);
      if (sealed !== undefined) open.item.encrypted_content = sealed;
      details = [];
      unclaimed = '';
    }
    emit({ type: 'response.output_item.done', output_index: open.index, item: structuredClone(open.item) });
    open = null;
  };

  const openReasoning = (): { item: ReasoningItem; index: number; part: number } => {
    if (open?.item.type !== 'reasoning') {
      closeOpen('completed');
      // Ids stay unique when reasoning comes again after the message or a call.
      const id = reasoningItems === 0 ? ids.reasoning : `${ids.reasoning}_${reasoningItems}`;
      reasoningItems += 1;
      const item: ReasoningItem = { type: 'reasoning', id, summary: [], content: [], status: 'in_progress' };
      open = { item, index: add(item), part: -1 };
    }
    return open as { item: ReasoningItem; index: number; part: number };
  };

  const reasoning = (delta: string) => {
    const current = openReasoning();
    const { item, index } = current;
    if (current.part < 0) {
      item.content.push({ type: 'reasoning_text', text: '' });
      current.part = 0;
      emit({ type: 'response.content_part.added', item_id: item.id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    }
    item.content[current.part]!.text += delta;
    unclaimed += delta;
    emit({ type: 'response.reasoning_text.delta', item_id: item.id, output_index: index, content_index: current.part, delta });
  };

  const detail = (next: ReasoningDetail) => {
    const last = details[details.length - 1];
    if (next.type === 'reasoning.text' && last?.type === 'reasoning.text' && last.signature === undefined && last.index === next.index) {
      // One detail streamed in pieces (its text, then its signature), as OpenRouter's chat clients merge them.
      last.text = (last.text ?? '') + (next.text ?? '');
      if (next.signature !== undefined) last.signature = next.signature;
    } else {
      details.push(next.type === 'reasoning.text' && next.text === undefined ? { ...next, text: unclaimed } : { ...next });
    }
    unclaimed = '';
  };

  /** Text or refusal: a part of the message, opened on its first delta. */
  const messagePart = (kind: 'output_text' | 'refusal', delta: string) => {
    if (open?.item.type !== 'message') {
      closeOpen('completed');
      const item: MessageItem = { type: 'message', id: ids.message, role: 'assistant', status: 'in_progress', content: [] };
      open = { item, index: add(item), part: -1 };
    }
    const item = open.item as MessageItem;
    if (item.content[open.part]?.type !== kind) {
      if (open.part >= 0) closePart();
      const part: OutputTextPart | RefusalPart = kind === 'output_text' ? { type: 'output_text', text: '', annotations: [], logprobs: [] } : { type: 'refusal', refusal: '' };
      item.content.push(part);
      open.part = item.content.length - 1;
      emit({ type: 'response.content_part.added', item_id: item.id, output_index: open.index, content_index: open.part, part: structuredClone(part) });
    }
    const part = item.content[open.part]!;
    if (part.type === 'output_text') {
      part.text += delta;
      emit({ type: 'response.output_text.delta', item_id: item.id, output_index: open.index, content_index: open.part, delta, logprobs: [] });
    } else {
      part.refusal += delta;
      emit({ type: 'response.refusal.delta', item_id: item.id, output_index: open.index, content_index: open.part, delta });
    }
  };

  const toolCall = (index: number, id: string | undefined, name: string | undefined, args: string | undefined) => {
    let call = calls.get(index);
    if (!call) {
      closeOpen('completed');
      const item: FunctionCallItem = { type: 'function_call', id: ids.call(calls.size), call_id: id ?? ids.call(calls.size), name: name ?? '', arguments: '', status: 'in_progress' };
      call = { item, index: add(item), closed: false };
      calls.set(index, call);
    }
    if (args) {
      call.item.arguments += args;
      emit({ type: 'response.function_call_arguments.delta', item_id: call.item.id, output_index: call.index, delta: args });
    }
  };

  return {
    output,
    chunk(chunk: ChatChunk) {
      // debug.echo_upstream_body: OpenRouter's response.debug event, one per provider tried, before the answer.
      if (chunk.debug !== undefined) return void emit({ type: 'response.debug', debug: chunk.debug });
      const delta = chunk.choices[0]?.delta;
      if (!delta) return;
      if (delta.reasoning) reasoning(delta.reasoning);
      for (const d of delta.reasoning_details ?? []) detail(d);
      if (delta.content) messagePart('output_text', delta.content);
      if (delta.refusal) messagePart('refusal', delta.refusal);
      for (const tc of delta.tool_calls ?? []) toolCall(tc.index, tc.id, tc.function?.name, tc.function?.arguments);
    },
    /** Close every item still open; `status` is the items' (incomplete when the answer was cut or failed). */
    finish(status: ItemStatus) {
      closeOpen(status);
      if (details.length > 0) {
        openReasoning();
        closeOpen(status);
      }
      for (const call of calls.values()) {
        if (call.closed) continue;
        call.closed = true;
        call.item.status = status;
        emit({ type: 'response.function_call_arguments.done', item_id: call.item.id, output_index: call.index, name: call.item.name, arguments: call.item.arguments });
        emit({ type: 'response.output_item.done', output_index: call.index, item: structuredClone(call.item) });
      }
    },
  };
};

// -----------------------------------------------------------------------------------------------------------------
// The route


const RESPONSES_ROUTE = '/api/v1/responses';

export const responsesRoutes = (deps: GatewayRouteDeps): Route[] => {
  const { gateway, config, logger } = deps;
  const executeWhole = wholeCall(deps);

  const responses = async ({ req, res, requestId }: RestRequest) => {
    const generationId = newGenerationId();
    const fail = (error: unknown) => sendError(res, error, requestId, logger, responsesErrorBody);
    try {
      const principal = requireUser(deps.directory, req);
      const body = await readJsonBody(req, config.MAX_BODY_BYTES);
      const { echo, ...translated } = chatBodyOf(body);
      const chat = applyPreset(translated.chat, principal.accountId, gateway.presets) as Json;
      const parsed = parseChatBody(chat, 'chat', chatHeadersOf(req));
      const prepared = await gateway.prepare({ generationId, principal, parsed, rawProvider: chat.provider ?? null, apiType: 'responses', correlationId: requestId, app: appAttributionOf(req), idempotency: idempotencyOf(req, res, RESPONSES_ROUTE, body) });
      res.setHeader('x-generation-id', generationId);
      const ids = idsOf(generationId);
      const base = { id: ids.response, createdAt: prepared.created, model: parsed.models[0]!, echo };

      // Router metadata: on the response object of a whole answer, and of a stream's response.completed.
      const withMetadata = <T extends object>(response: T, outcome: GenerationOutcome) => (wantsRouterMetadata(req) ? { ...response, openrouter_metadata: routerMetadata(prepared, outcome) } : response);
      if (!parsed.stream) {
        const outcome = await executeWhole(prepared, res);
        if (outcome.kind !== 'completed' || !outcome.response) return fail(failureOf(outcome));
        const choice = outcome.response.choices[0];
        const { status, items, incomplete } = endOf(choice?.finish_reason ?? null);
        const output = choice ? outputOf(choice.message, items, ids) : [];
        const error = status === 'failed' ? failedError(outcome, requestId) : null;
        return sendJson(res, 200, withMetadata(responseObject(base, { status, output, incomplete, error, outcome }), outcome));
      }

      // Streaming, as chat streams: the 200 and response.created wait for the first token (or a keep-alive), so a
      // failure before it is a plain HTTP error and a fallback stays invisible.
      let sequence = 0;
      let writer: SseWriter | null = null;
      const emit: Emit = (event) => writer?.write(`event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: sequence++ })}\n\n`);
      const translator = createEventTranslator(emit, ids);
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
        onOpen: (sse) => {
          writer = sse;
          const started = responseObject(base, { status: 'in_progress', output: [] });
          emit({ type: 'response.created', response: started });
          emit({ type: 'response.in_progress', response: started });
        },
        onChunk: (chunk, sse) => {
          sse.open();
          translator.chunk(chunk);
        },
      });
      if (outcome.kind === 'cancelled' || sse.gone) return;
      // A response that fails once begun ends with response.failed alone, its error and the partial output in it, as
      // OpenAI's does (its `error` event is an error outside a response): the same for a failure Switchyard saw (a cut
      // connection, an unreadable event) and an error the provider ended the answer with. The SDKs' responses.stream()
      // rejects on an `error` event, and the partial answer would be lost with it.
      if (outcome.kind === 'failed') {
        if (!res.headersSent) return fail(outcome.error);
        const error = outcome.error ?? new GatewayError(502, 'provider_unavailable', 'The generation failed');
        const body = responsesErrorBody(error, requestId).error;
        translator.finish('incomplete');
        emit({ type: 'response.failed', response: responseObject(base, { status: 'failed', output: translator.output, error: { code: body.code, message: body.message }, outcome }) });
        sse.end();
        return;
      }
      sse.open();
      const { status, items, incomplete } = endOf(outcome.finishReason);
      translator.finish(items);
      const error = status === 'failed' ? failedError(outcome, requestId) : null;
      emit({ type: `response.${status}`, response: withMetadata(responseObject(base, { status, output: translator.output, incomplete, error, outcome }), outcome) });
      sse.end();
    } catch (error) {
      fail(error);
    }
  };

  return [{ method: 'POST', path: RESPONSES_ROUTE, handler: responses, renderError: responsesErrorBody }];
};

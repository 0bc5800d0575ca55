/**
 * Anthropic Messages request (`POST /v1/messages`).
 * - system/developer messages → top-level `system` blocks; tool results → `tool_result` blocks in a user turn;
 *   consecutive same-role turns are merged because the API wants strict user/assistant alternation.
 * - JSON mode: `json_schema` → `output_config.format` (native structured outputs, recent models only);
 *   `json_object` has no native switch, so it becomes a system instruction.
 * - Thinking blocks are replayed from `reasoning_details` on later turns, which tool use with thinking requires.
 */
import type { AssistantMessage, ChatRequest, FilePart, JsonObject, MessageContent, ReasoningDetail, ToolChoice } from '../../types.js';
import type { UpstreamRequest, UpstreamTarget } from '../adapter.js';
import { addedParts, badRequest, joinUrl, mediaLink, namedContent, nothingToSend, parseDataUrl, reasoningBudget, toolArguments } from '../common.js';
import { PROVIDER } from './errors.js';

export const ANTHROPIC_VERSION = '2023-06-01';
/** The API requires max_tokens; used when the caller sends none. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;
const MIN_THINKING_BUDGET = 1024;
export const JSON_OBJECT_INSTRUCTION =
  'Respond with a single valid JSON object only: no prose, no Markdown code fences.';

export const supportedParameters = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'structured_outputs',
  'reasoning',
] as const;

type Role = 'user' | 'assistant';
interface Turn {
  role: Role;
  content: JsonObject[];
}

function textBlocks(content: MessageContent): JsonObject[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  const blocks: JsonObject[] = [];
  for (const part of content) {
    if (part.type !== 'text' || part.text === '') continue;
    blocks.push({ type: 'text', text: part.text, ...(part.cache_control && { cache_control: part.cache_control }) });
  }
  return blocks;
}

/** `message`: the message's index in the request, `added`: parts put before its own (to name a part as the client sent it). */
function userBlocks(content: MessageContent, message: number, added = 0): JsonObject[] {
  if (typeof content === 'string') return textBlocks(content);
  const blocks: JsonObject[] = [];
  for (const [i, part] of content.entries()) {
    if (part.type === 'text') {
      blocks.push(...textBlocks([part]));
      continue;
    }
    switch (part.type) {
      case 'image_url': {
        const url = part.image_url.url;
        const inline = parseDataUrl(url);
        blocks.push({
          type: 'image',
          source: inline
            ? { type: 'base64', media_type: inline.mediaType, data: inline.data }
            : { type: 'url', url: mediaLink(PROVIDER, url, `messages[${message}].content[${i - added}].image_url.url`) },
        });
        break;
      }
      case 'file':
        blocks.push(documentBlock(part, `messages[${message}].content[${i - added}].file.file_data`));
        break;
      case 'input_audio':
        // Routing keeps audio away from Anthropic endpoints; reaching here is a caller-side mistake, not retryable.
        throw badRequest(PROVIDER, 'Anthropic models take no audio input (input_audio)');
      default: {
        const _never: never = part;
      }
    }
  }
  return blocks;
}

/** A `file` part as a document block: a PDF (base64 or URL) or plain text. */
function documentBlock(part: FilePart, field: string): JsonObject {
  const { file_data: data, filename } = part.file;
  if (data === undefined) throw badRequest(PROVIDER, 'file parts need file_data (uploaded file ids are not supported for Anthropic models)');
  const inline = parseDataUrl(data);
  const source = inline
    ? inline.mediaType === 'text/plain'
      ? { type: 'text', media_type: 'text/plain', data: Buffer.from(inline.data, 'base64').toString('utf8') }
      : { type: 'base64', media_type: inline.mediaType, data: inline.data }
    : { type: 'url', url: mediaLink(PROVIDER, data, field) };
  return { type: 'document', source, ...(filename !== undefined && { title: filename }) };
}

function thinkingBlocks(details: ReasoningDetail[] | undefined): JsonObject[] {
  const blocks: JsonObject[] = [];
  for (const detail of details ?? []) {
    // Signatures are provider-specific; replaying another provider's would be rejected.
    if (detail.format !== undefined && !detail.format.startsWith('anthropic')) continue;
    if (detail.type === 'reasoning.text' && detail.signature !== undefined) {
      blocks.push({ type: 'thinking', thinking: detail.text ?? '', signature: detail.signature });
    } else if (detail.type === 'reasoning.encrypted') {
      blocks.push({ type: 'redacted_thinking', data: detail.data });
    }
  }
  return blocks;
}

function assistantBlocks(message: AssistantMessage): JsonObject[] {
  const blocks = thinkingBlocks(message.reasoning_details);
  if (message.content != null) blocks.push(...textBlocks(message.content));
  for (const call of message.tool_calls ?? []) {
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolArguments(PROVIDER, call) });
  }
  return blocks;
}

function toTurns(req: ChatRequest): { system: JsonObject[]; turns: Turn[] } {
  const system: JsonObject[] = [];
  const turns: Turn[] = [];
  const push = (role: Role, blocks: JsonObject[]): void => {
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const [index, message] of req.messages.entries()) {
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(message.content));
        break;
      case 'user': {
        const content = namedContent(message.content, message.name);
        push('user', userBlocks(content, index, addedParts(message.content, content)));
        break;
      }
      case 'assistant':
        push('assistant', assistantBlocks(message.name === undefined || message.content == null ? message : { ...message, content: namedContent(message.content, message.name) }));
        break;
      case 'tool':
        push('user', [
          {
            type: 'tool_result',
            tool_use_id: message.tool_call_id,
            content: typeof message.content === 'string' ? message.content : userBlocks(message.content, index),
          },
        ]);
        break;
    }
  }
  // A trailing assistant turn is a prefill, and the API rejects prefills that end in whitespace.
  const last = turns[turns.length - 1];
  const lastBlock = last?.role === 'assistant' ? last.content[last.content.length - 1] : undefined;
  if (lastBlock?.type === 'text' && typeof lastBlock.text === 'string') lastBlock.text = lastBlock.text.trimEnd();
  return { system, turns };
}

function toolChoice(choice: ToolChoice | undefined, parallel: boolean | undefined): JsonObject | undefined {
  let out: JsonObject | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else if (choice !== undefined) out = { type: 'tool', name: choice.function.name };
  if (parallel === false && out?.type !== 'none') out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return out;
}

/**
 * max_tokens and the thinking budget as sent. Thinking tokens are output, counted within max_tokens (Anthropic's, as
 * OpenAI's and OpenRouter's max_tokens): max_tokens is never raised above the request's, nor, when it sets none, above
 * what the call was reserved for (`target.maxOutputTokens`), so what the upstream may generate is what the bill is
 * capped at. A budget that leaves no room below it is a 400, as Anthropic answers it, before anything is sent.
 */
function outputLimits(req: ChatRequest, target: UpstreamTarget): { maxTokens: number; budgetTokens?: number } {
  const asked = req.max_completion_tokens ?? req.max_tokens;
  const room = target.maxOutputTokens ?? Number.MAX_SAFE_INTEGER;
  let maxTokens = asked ?? Math.min(ANTHROPIC_DEFAULT_MAX_TOKENS, room);
  const budget = reasoningBudget(req.reasoning, maxTokens);
  if (budget === undefined) return { maxTokens };
  const budgetTokens = Math.max(MIN_THINKING_BUDGET, budget);
  // Without a max_tokens of the caller's, the default's room for the answer comes after the budget.
  if (asked === undefined && budgetTokens >= maxTokens) maxTokens = Math.min(budgetTokens + ANTHROPIC_DEFAULT_MAX_TOKENS, room);
  if (budgetTokens >= maxTokens) {
    const limit = asked === undefined ? `the ${maxTokens} output tokens this endpoint allows (the request sets no max_tokens)` : `max_tokens (${maxTokens})`;
    throw badRequest(
      PROVIDER,
      `The thinking budget (${budgetTokens} tokens, from reasoning.${req.reasoning?.max_tokens !== undefined ? 'max_tokens' : 'effort'}; Anthropic's smallest is ${MIN_THINKING_BUDGET}) must be less than ${limit}: thinking tokens are output tokens, counted within max_tokens. Raise max_tokens or lower the budget`,
    );
  }
  return { maxTokens, budgetTokens };
}

export function buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest {
  const { system, turns } = toTurns(req);
  if (turns.length === 0) throw nothingToSend(PROVIDER);
  const { maxTokens, budgetTokens } = outputLimits(req, target);
  const body: JsonObject = { model: target.upstreamModel, max_tokens: maxTokens, messages: turns };

  const format = req.response_format;
  if (format?.type === 'json_schema' && format.json_schema.schema) {
    body.output_config = { format: { type: 'json_schema', schema: format.json_schema.schema } };
  } else if (format?.type === 'json_object' || format?.type === 'json_schema') {
    system.push({ type: 'text', text: JSON_OBJECT_INSTRUCTION });
  }
  if (system.length > 0) body.system = system;

  if (budgetTokens !== undefined) {
    body.thinking = { type: 'enabled', budget_tokens: budgetTokens };
  } else {
    // Thinking rejects sampling overrides, so these are only sent without it. Anthropic's range is 0..1.
    if (req.temperature !== undefined) body.temperature = Math.min(1, req.temperature);
    if (req.top_p !== undefined) body.top_p = req.top_p;
    if (req.top_k !== undefined) body.top_k = req.top_k;
  }

  if (req.stop !== undefined) {
    const stops = (typeof req.stop === 'string' ? [req.stop] : req.stop).filter((s) => s !== '');
    if (stops.length > 0) body.stop_sequences = stops;
  }
  if (req.tools?.length) {
    body.tools = req.tools.map((tool) => ({
      name: tool.function.name,
      ...(tool.function.description !== undefined && { description: tool.function.description }),
      input_schema: tool.function.parameters ?? { type: 'object', properties: {} },
      // Fine-grained tool streaming: a call's arguments arrive as they are written, not in one burst (OpenRouter sets it).
      ...(req.stream && { eager_input_streaming: true }),
    }));
  }
  const choice = toolChoice(req.tool_choice, req.parallel_tool_calls);
  if (choice && req.tools?.length) body.tool_choice = choice;
  if (req.user !== undefined) body.metadata = { user_id: req.user };
  // Automatic prompt caching: Anthropic places the breakpoint itself.
  if (req.cache_control !== undefined) body.cache_control = req.cache_control;
  if (req.stream) body.stream = true;

  return {
    url: joinUrl(target.baseUrl, '/messages'),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      'anthropic-version': ANTHROPIC_VERSION,
      ...(target.apiKey !== undefined && { 'x-api-key': target.apiKey }),
      ...withBetas(target.headers ?? {}, req.anthropic_beta),
    },
    body: JSON.stringify(body),
  };
}

/**
 * The provider's headers with the request's beta flags (`x-anthropic-beta`) added to its own `anthropic-beta`, in
 * one header, each flag once (the provider's first).
 */
function withBetas(headers: Readonly<Record<string, string>>, requested: readonly string[] | undefined): Record<string, string> {
  if (requested === undefined) return { ...headers };
  const out: Record<string, string> = {};
  const betas: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'anthropic-beta') betas.push(...value.split(',').map((b) => b.trim()).filter((b) => b !== ''));
    else out[name] = value;
  }
  out['anthropic-beta'] = [...new Set([...betas, ...requested])].join(',');
  return out;
}

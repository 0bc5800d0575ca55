/** OpenAI chat completions request: the canonical shape is this protocol, so it is mostly a filter of known fields. */
import type { ChatMessage, ChatRequest, ContentPart, JsonObject } from '../../types.js';
import type { UpstreamRequest, UpstreamTarget } from '../adapter.js';
import { joinUrl, reasoningEffortFor } from '../common.js';
import { extend } from '../../../objects.js';

export const supportedParameters = [
  'max_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'structured_outputs',
  'reasoning',
  'prediction',
  // Not OpenAI's, but passed through for compatible servers (vLLM, Together, …) that accept them.
  'top_k',
  'min_p',
  'top_a',
  'repetition_penalty',
] as const;

const PASSTHROUGH = [
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'top_a',
  'repetition_penalty',
  'presence_penalty',
  'frequency_penalty',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'seed',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'n',
  'response_format',
  'prediction',
  'user',
  'prompt_cache_key',
] as const satisfies readonly (keyof ChatRequest)[];

export function buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest {
  const body: JsonObject = { model: target.upstreamModel, messages: req.messages.map(toUpstreamMessage) };
  for (const key of PASSTHROUGH) if (req[key] !== undefined) body[key] = req[key];
  // `reasoning` is here only where the endpoint lists it (withSupportedParameters): on/off and a budget go up as an effort.
  const effort = reasoningEffortFor(req.reasoning, req.max_completion_tokens ?? req.max_tokens);
  if (effort !== undefined) body.reasoning_effort = effort === 'max' ? 'xhigh' : effort;
  if (req.stream) {
    body.stream = true;
    // Always ask for the usage chunk: billing needs it even when the caller did not ask.
    body.stream_options = extend(req.stream_options ?? {}, { include_usage: true });
  }
  return {
    url: joinUrl(target.baseUrl, '/chat/completions'),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      ...(target.apiKey !== undefined && { authorization: `Bearer ${target.apiKey}` }),
      ...target.headers,
    },
    body: JSON.stringify(body),
  };
}

/** Drops gateway-only fields (reasoning echoes, cache_control) that strict OpenAI validation rejects. */
function toUpstreamMessage(message: ChatMessage): JsonObject {
  switch (message.role) {
    case 'assistant': {
      const out: JsonObject = { role: 'assistant', content: message.content == null ? null : stripParts(message.content) };
      if (message.name !== undefined) out.name = message.name;
      if (message.tool_calls?.length) out.tool_calls = message.tool_calls;
      if (message.refusal != null) out.refusal = message.refusal;
      return out;
    }
    case 'tool':
      return { role: 'tool', tool_call_id: message.tool_call_id, content: stripParts(message.content) };
    default: {
      const out: JsonObject = { role: message.role, content: stripParts(message.content) };
      if (message.name !== undefined) out.name = message.name;
      return out;
    }
  }
}

function stripParts(content: string | ContentPart[]): string | JsonObject[] {
  if (typeof content === 'string') return content;
  return content.map((part) => (part.type === 'text' ? { type: 'text', text: part.text } : { ...part }));
}

/**
 * Gemini request (`models/{model}:generateContent`, `:streamGenerateContent?alt=sse`).
 * - system/developer messages → `systemInstruction`; assistant → role `model`; tool results → `functionResponse`
 *   parts in a user turn (the function name is looked up from the assistant's earlier tool call).
 * - Schemas go out as JSON Schema (`parametersJsonSchema`, `responseJsonSchema`): the older `parameters` /
 *   `responseSchema` fields take an OpenAPI subset that rejects common JSON Schema such as `additionalProperties`.
 * - Thought signatures (required when replaying function calls to thinking models) come back from
 *   `reasoning_details` `reasoning.encrypted` entries keyed by tool-call id, like OpenRouter does.
 */
import type { AssistantMessage, ChatRequest, JsonObject, MessageContent, ReasoningDetail, ToolChoice } from '../../types.js';
import type { UpstreamRequest, UpstreamTarget } from '../adapter.js';
import {
  addedParts,
  badRequest,
  contentText,
  guessImageType,
  isRecord,
  joinUrl,
  mediaLink,
  namedContent,
  nothingToSend,
  parseDataUrl,
  parseJson,
  reasoningDisabled,
  toolArguments,
  type LinkSchemes,
} from '../common.js';
import { PROVIDER } from './errors.js';

export const supportedParameters = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'stop',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'tools',
  'tool_choice',
  'response_format',
  'structured_outputs',
  'reasoning',
] as const;

type Role = 'user' | 'model';
interface Content {
  role: Role;
  parts: JsonObject[];
}

/** What a `fileUri` may be: a web link (Files API URIs, public and signed URLs) or a Cloud Storage object. */
const FILE_URIS: LinkSchemes = { schemes: ['http', 'https', 'gs'], described: 'an http(s) or gs:// URL' };

/** `message`: the message's index in the request, `added`: parts put before its own (to name a part as the client sent it). */
function contentParts(content: MessageContent, message: number, added = 0): JsonObject[] {
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  const parts: JsonObject[] = [];
  for (const [i, part] of content.entries()) {
    if (part.type === 'text') {
      if (part.text !== '') parts.push({ text: part.text });
      continue;
    }
    switch (part.type) {
      case 'image_url': {
        const url = part.image_url.url;
        const inline = parseDataUrl(url);
        parts.push(
          inline
            ? { inlineData: { mimeType: inline.mediaType, data: inline.data } }
            : { fileData: { mimeType: guessImageType(url), fileUri: mediaLink(PROVIDER, url, `messages[${message}].content[${i - added}].image_url.url`, FILE_URIS) } },
        );
        break;
      }
      case 'file': {
        const data = part.file.file_data;
        if (data === undefined) throw badRequest(PROVIDER, 'file parts need file_data (uploaded file ids are not supported for Gemini models)');
        const inline = parseDataUrl(data);
        parts.push(
          inline
            ? { inlineData: { mimeType: inline.mediaType, data: inline.data } }
            : { fileData: { mimeType: 'application/pdf', fileUri: mediaLink(PROVIDER, data, `messages[${message}].content[${i - added}].file.file_data`, FILE_URIS) } },
        );
        break;
      }
      case 'input_audio':
        // OpenAI names the format (`wav`, `mp3`); Gemini wants the MIME type.
        parts.push({ inlineData: { mimeType: `audio/${part.input_audio.format}`, data: part.input_audio.data } });
        break;
      default: {
        const _never: never = part;
      }
    }
  }
  return parts;
}

function geminiSignatures(details: ReasoningDetail[] | undefined): ReasoningDetail[] {
  return (details ?? []).filter((d) => d.type === 'reasoning.encrypted' && d.format?.startsWith('google') === true);
}

function modelParts(message: AssistantMessage, index: number, added: number): JsonObject[] {
  const signatures = geminiSignatures(message.reasoning_details);
  const signatureFor = (id: string | undefined): string | undefined => {
    const detail = signatures.find((d) => d.id === id);
    return detail?.type === 'reasoning.encrypted' ? detail.data : undefined;
  };
  const parts = message.content == null ? [] : contentParts(message.content, index, added);
  const turnSignature = signatureFor(undefined);
  const first = parts[0];
  if (turnSignature !== undefined && first) first.thoughtSignature = turnSignature;
  for (const call of message.tool_calls ?? []) {
    const signature = signatureFor(call.id);
    parts.push({
      functionCall: { name: call.function.name, args: toolArguments(PROVIDER, call) },
      ...(signature !== undefined && { thoughtSignature: signature }),
    });
  }
  return parts;
}

function functionResponse(content: MessageContent): JsonObject {
  const text = contentText(content);
  const parsed = parseJson(text);
  // Gemini wants an object; its docs use `output` for a plain result.
  return isRecord(parsed) ? parsed : { output: parsed ?? text };
}

function toContents(req: ChatRequest): { system: JsonObject[]; contents: Content[] } {
  const system: JsonObject[] = [];
  const contents: Content[] = [];
  const toolNames = new Map<string, string>();
  const push = (role: Role, parts: JsonObject[]): void => {
    if (parts.length === 0) return;
    const last = contents[contents.length - 1];
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  for (const [index, message] of req.messages.entries()) {
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...contentParts(contentText(message.content), index));
        break;
      case 'user': {
        const content = namedContent(message.content, message.name);
        push('user', contentParts(content, index, addedParts(message.content, content)));
        break;
      }
      case 'assistant': {
        for (const call of message.tool_calls ?? []) toolNames.set(call.id, call.function.name);
        const named = message.name === undefined || message.content == null ? message : { ...message, content: namedContent(message.content, message.name) };
        push('model', modelParts(named, index, message.content == null || named.content == null ? 0 : addedParts(message.content, named.content)));
        break;
      }
      case 'tool':
        push('user', [
          {
            functionResponse: {
              name: toolNames.get(message.tool_call_id) ?? message.name ?? message.tool_call_id,
              response: functionResponse(message.content),
            },
          },
        ]);
        break;
    }
  }
  return { system, contents };
}

function toolConfig(choice: ToolChoice | undefined): JsonObject | undefined {
  if (choice === undefined) return undefined;
  if (choice === 'auto') return { functionCallingConfig: { mode: 'AUTO' } };
  if (choice === 'required') return { functionCallingConfig: { mode: 'ANY' } };
  if (choice === 'none') return { functionCallingConfig: { mode: 'NONE' } };
  return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.function.name] } };
}

function generationConfig(req: ChatRequest): JsonObject {
  const config: JsonObject = {};
  if (req.temperature !== undefined) config.temperature = req.temperature;
  if (req.top_p !== undefined) config.topP = req.top_p;
  if (req.top_k !== undefined) config.topK = req.top_k;
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  if (maxTokens !== undefined) config.maxOutputTokens = maxTokens;
  if (req.stop !== undefined) config.stopSequences = typeof req.stop === 'string' ? [req.stop] : req.stop;
  if (req.seed !== undefined) config.seed = req.seed;
  if (req.presence_penalty !== undefined) config.presencePenalty = req.presence_penalty;
  if (req.frequency_penalty !== undefined) config.frequencyPenalty = req.frequency_penalty;
  const format = req.response_format;
  if (format?.type === 'json_object' || format?.type === 'json_schema') config.responseMimeType = 'application/json';
  if (format?.type === 'json_schema' && format.json_schema.schema) config.responseJsonSchema = format.json_schema.schema;
  const reasoning = req.reasoning;
  if (reasoningDisabled(reasoning)) {
    config.thinkingConfig = { thinkingBudget: 0 };
  } else if (reasoning) {
    // Without an explicit budget the model's dynamic thinking applies; effort levels have no Gemini 2.5 equivalent.
    config.thinkingConfig = {
      includeThoughts: reasoning.exclude !== true,
      ...(reasoning.max_tokens !== undefined && { thinkingBudget: reasoning.max_tokens }),
    };
  }
  return config;
}

export function buildRequest(req: ChatRequest, target: UpstreamTarget): UpstreamRequest {
  const { system, contents } = toContents(req);
  if (contents.length === 0) throw nothingToSend(PROVIDER);
  const body: JsonObject = { contents };
  if (system.length > 0) body.systemInstruction = { parts: system };
  const config = generationConfig(req);
  if (Object.keys(config).length > 0) body.generationConfig = config;
  if (req.tools?.length) {
    body.tools = [
      {
        functionDeclarations: req.tools.map((tool) => ({
          name: tool.function.name,
          ...(tool.function.description !== undefined && { description: tool.function.description }),
          ...(tool.function.parameters !== undefined && { parametersJsonSchema: tool.function.parameters }),
        })),
      },
    ];
    const config = toolConfig(req.tool_choice);
    if (config) body.toolConfig = config;
  }
  const model = target.upstreamModel.replace(/^models\//, '');
  const method = req.stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
  return {
    url: joinUrl(target.baseUrl, `/models/${model}:${method}`),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: req.stream ? 'text/event-stream' : 'application/json',
      ...(target.apiKey !== undefined && { 'x-goog-api-key': target.apiKey }),
      ...target.headers,
    },
    body: JSON.stringify(body),
  };
}

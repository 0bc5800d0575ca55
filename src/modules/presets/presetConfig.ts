/**
 * What a preset may hold, checked with the chat request's own parser (src/gateway/chatRequest.ts): a preset can
 * hold nothing a request could not. Pure, apart from the model check the caller passes in.
 */
import { DomainError, ValidationError } from '../../errors.js';
import type { JsonValue } from '../../eventStore/eventStore.js';
import { parseChatBody } from '../../gateway/chatRequest.js';
import { PRESET_MARK } from './presetResolution.js';
import type { PresetConfig } from './preset.events.js';

/** The chat request fields a preset keeps: routing, provider preferences and sampling (not the conversation). */
export const PRESET_FIELDS: ReadonlySet<string> = new Set([
  'model',
  'models',
  'provider',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'top_a',
  'repetition_penalty',
  'frequency_penalty',
  'presence_penalty',
  'seed',
  'stop',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'reasoning',
  'reasoning_effort',
]);

export const PRESET_LIMITS = {
  /** The config as JSON: room for a few tool schemas, not for a document. */
  maxConfigBytes: 32 * 1024,
  maxSystemPromptChars: 32_000,
  maxNameChars: 100,
  maxVersions: 1_000,
  maxPresetsPerAccount: 100,
} as const;

/** Stands in for the model while the parser checks a config that takes its model from each request. */
const ANY_MODEL = 'preset/any-model';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A config as given: a JSON object of PRESET_FIELDS (`strict`: any other field is refused, naming it; `overlap`: other
 * fields are dropped, as OpenRouter does with a sample request). Nulls mean absent. Each model must pass
 * `modelProblem` (null when usable), and none may name a preset (no recursion).
 */
export const checkPresetConfig = (raw: unknown, mode: 'strict' | 'overlap', modelProblem: (model: string) => string | null): PresetConfig => {
  if (!isObject(raw)) throw new ValidationError('A preset config is a JSON object of chat request fields, e.g. {"model": "openai/gpt-4o", "temperature": 0.2}', { field: 'config' });
  const config: Record<string, JsonValue> = {};
  for (const [field, value] of Object.entries(raw)) {
    if (!PRESET_FIELDS.has(field)) {
      if (mode === 'overlap') continue;
      const hint =
        field === 'preset' ? ': a preset cannot name another preset' : field === 'messages' ? ': the system prompt goes in systemPrompt, the conversation in each request' : '';
      throw new ValidationError(`A preset cannot hold ${JSON.stringify(field.slice(0, 80))}${hint} (it holds ${[...PRESET_FIELDS].join(', ')})`, { field: `config.${field.slice(0, 80)}` });
    }
    if (value !== null && value !== undefined) config[field] = value as JsonValue;
  }
  const bytes = Buffer.byteLength(JSON.stringify(config), 'utf8');
  if (bytes > PRESET_LIMITS.maxConfigBytes) {
    throw new DomainError('PAYLOAD_TOO_LARGE', `The preset config is ${bytes} bytes as JSON, over the limit of ${PRESET_LIMITS.maxConfigBytes}`, 413, { field: 'config', limit: PRESET_LIMITS.maxConfigBytes, size: bytes });
  }
  const models = [config.model, ...(Array.isArray(config.models) ? config.models : [])];
  for (const model of models) {
    if (typeof model === 'string' && model.includes(PRESET_MARK)) throw new ValidationError(`A preset cannot name another preset (${model.slice(0, 80)})`, { field: 'config.model', reason: 'preset_recursion' });
  }
  try {
    // The request parser, on a body of this config and a one-line conversation: the same rules, the same messages.
    parseChatBody({ ...config, ...(config.model === undefined && config.models === undefined && { model: ANY_MODEL }), messages: [{ role: 'user', content: '.' }] });
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    const param = typeof error.metadata.param === 'string' ? error.metadata.param : null;
    throw new ValidationError(`Invalid preset config: ${error.message}`, { field: param === null ? 'config' : `config.${param}` });
  }
  for (const model of models) {
    if (typeof model !== 'string') continue;
    const problem = modelProblem(model);
    if (problem !== null) throw new ValidationError(`Invalid preset config: ${problem}`, { field: 'config.model', model });
  }
  return config;
};

export const checkSystemPrompt = (systemPrompt: string | null | undefined): string | null => {
  if (systemPrompt == null || systemPrompt === '') return null;
  if (systemPrompt.length > PRESET_LIMITS.maxSystemPromptChars) {
    throw new DomainError('PAYLOAD_TOO_LARGE', `The system prompt is ${systemPrompt.length} characters, over the limit of ${PRESET_LIMITS.maxSystemPromptChars}`, 413, {
      field: 'systemPrompt',
      limit: PRESET_LIMITS.maxSystemPromptChars,
    });
  }
  return systemPrompt;
};

/**
 * A sample request's system prompt: its system (or developer) messages' text, joined by blank lines; null when it
 * has none. Only text is kept (a preset's system prompt is a string).
 */
export const systemPromptOf = (body: unknown): string | null => {
  if (!isObject(body) || !Array.isArray(body.messages)) return null;
  const texts: string[] = [];
  for (const message of body.messages) {
    if (!isObject(message) || (message.role !== 'system' && message.role !== 'developer')) continue;
    const { content } = message;
    if (typeof content === 'string') texts.push(content);
    else if (Array.isArray(content)) texts.push(content.map((part) => (isObject(part) && part.type === 'text' && typeof part.text === 'string' ? part.text : '')).join(''));
  }
  const joined = texts.filter((t) => t !== '').join('\n\n');
  return joined === '' ? null : joined;
};

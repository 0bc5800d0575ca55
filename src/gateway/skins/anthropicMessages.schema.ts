/**
 * Anthropic's Messages request (`POST /v1/messages`) as zod schemas. Every message names the field it is about
 * (`messages[1].content[0].source.data must be a string`). Unknown top-level fields (service_tier, container ...)
 * are accepted and dropped, as the chat schema does; OpenRouter's routing fields (`fallbacks` or `models`, `provider`,
 * `plugins`, `session_id`) are read and handed to the chat parser (`fallbacks` as chat's `models`).
 */
import { z } from 'zod';
import { fallbackMessage, pathText } from '../chatRequest.schema.js';

type Issue = z.core.$ZodRawIssue;
const at = (issue: Issue) => pathText(issue.path ?? []);
const says = (text: string) => ({ error: (issue: Issue) => `${at(issue)} ${text}` });

const MAX_TOKENS = 10_000_000;
/** OpenAI-protocol upstreams take at most 4 stop sequences, and any model of the catalog may serve the request. */
export const MAX_STOP_SEQUENCES = 4;

const CacheControl = z.object({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).optional() }).nullish();

const TextBlock = z.object({ type: z.literal('text'), text: z.string(says('must be a string')), cache_control: CacheControl });

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;
const ImageBlock = z.object({
  type: z.literal('image'),
  source: z.discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('base64'), media_type: z.enum(IMAGE_TYPES, says(`must be one of ${IMAGE_TYPES.join(', ')}`)), data: z.string().min(1, says('must be non-empty base64')) }),
      z.object({ type: z.literal('url'), url: z.string().min(1, says('must be a non-empty URL')) }),
    ],
    says('must be {type:"base64", media_type, data} or {type:"url", url}'),
  ),
  cache_control: CacheControl,
});

const DocumentBlock = z.object({
  type: z.literal('document'),
  source: z.discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('base64'), media_type: z.literal('application/pdf', says('must be "application/pdf"')), data: z.string().min(1, says('must be non-empty base64')) }),
      z.object({ type: z.literal('text'), media_type: z.literal('text/plain', says('must be "text/plain"')), data: z.string() }),
      z.object({ type: z.literal('url'), url: z.string().min(1, says('must be a non-empty URL')) }),
    ],
    says('must be {type:"base64", media_type:"application/pdf", data}, {type:"text", media_type:"text/plain", data} or {type:"url", url}'),
  ),
  title: z.string().nullish(),
  context: z.string().nullish(),
  cache_control: CacheControl,
});

const ToolResultContent = z.union([z.string(), z.array(z.discriminatedUnion('type', [TextBlock, ImageBlock], says('must be a text or image block')))], {
  error: (issue) => `${at(issue)} must be a string or a list of text and image blocks`,
});

const ToolUseBlock = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1, says('must be a non-empty string')),
  name: z.string().min(1, says('must be a non-empty string')),
  input: z.record(z.string(), z.unknown(), says('must be an object')),
  cache_control: CacheControl,
});

const ToolResultBlock = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1, says('must be a non-empty string')),
  content: ToolResultContent.optional(),
  is_error: z.boolean(says('must be a boolean')).optional(),
  cache_control: CacheControl,
});

const ThinkingBlock = z.object({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() });
const RedactedThinkingBlock = z.object({ type: z.literal('redacted_thinking'), data: z.string() });

const BLOCK_TYPES = 'text, image, document, tool_use, tool_result, thinking or redacted_thinking';
const Block = z.discriminatedUnion('type', [TextBlock, ImageBlock, DocumentBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock], {
  error: (issue) =>
    typeof issue.input !== 'object' || issue.input === null || Array.isArray(issue.input) ? `${at(issue)} must be a content block object` : `${at(issue)} must be one of ${BLOCK_TYPES}`,
});
export type AnthropicBlock = z.output<typeof Block>;

/** A string, or a list of blocks; a mistake inside a block is reported at that block, not at the content. */
const Content = z.union([z.string(), z.array(Block)], {
  error: (issue) => {
    // The list branch's message starts with its path inside the list (`[0].source.data ...`).
    const inList = issue.code === 'invalid_union' && Array.isArray(issue.input) ? issue.errors[1]?.[0] : undefined;
    return inList === undefined ? `${at(issue)} must be a string or a list of content blocks` : `${at(issue)}${inList.message}`;
  },
});

const Message = z.object(
  {
    role: z.enum(['user', 'assistant'], says('must be "user" or "assistant"')),
    content: Content,
  },
  says('must be an object {role, content}'),
);
export type AnthropicMessage = z.output<typeof Message>;

const SYSTEM = 'system must be a string or a list of text blocks';
const System = z.union([z.string(), z.array(TextBlock)], { error: SYSTEM });

const Tool = z.looseObject(
  {
    // Custom tools only: Anthropic's server tools (web_search_20250305, bash_20250124 ...) run on Anthropic's side.
    type: z.literal('custom', says('must be "custom" (server tools such as web search are not supported)')).nullish(),
    name: z.string(says('must be a string')).min(1, says('must be a non-empty string')),
    description: z.string(says('must be a string')).optional(),
    input_schema: z.record(z.string(), z.unknown(), says('must be a JSON schema object')),
    cache_control: CacheControl,
  },
  says('must be a tool object {name, description?, input_schema}'),
);

const TOOL_CHOICE = 'tool_choice must be {type:"auto"|"any"|"none"} or {type:"tool", name}';
const ToolChoice = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
    z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
    z.object({ type: z.literal('none') }),
    z.object({ type: z.literal('tool'), name: z.string().min(1, says('must be a non-empty string')), disable_parallel_tool_use: z.boolean().optional() }),
  ],
  { error: TOOL_CHOICE },
);

const Thinking = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('enabled'), budget_tokens: z.int(says(`must be an integer between 1024 and ${MAX_TOKENS}`)).min(1024, says(`must be an integer between 1024 and ${MAX_TOKENS}`)).max(MAX_TOKENS) }),
    z.object({ type: z.literal('disabled') }),
  ],
  { error: 'thinking must be {type:"enabled", budget_tokens} or {type:"disabled"}' },
);

const TOP_P = 'top_p must be a number greater than 0 and at most 1';
const TOP_K = 'top_k must be an integer between 1 and 1000000';
const numberIn = (key: string, min: number, max: number) => {
  const error = `${key} must be a number between ${min} and ${max}`;
  return z.number({ error }).min(min, { error }).max(max, { error }).optional();
};

const NOT_AN_OBJECT = 'The request body must be a JSON object';
const MESSAGES = 'messages must be a non-empty list of {role, content}';
const MAX_TOKENS_ERROR = `max_tokens is required: an integer between 1 and ${MAX_TOKENS}`;
const STOP = `stop_sequences must be a list of at most ${MAX_STOP_SEQUENCES} non-empty strings`;
const FALLBACKS = 'fallbacks must be a list of at most 3 {model} objects';
const FALLBACK_MODEL = 'must be a model id (a non-empty string of at most 256 characters)';

/** In the order fields are checked: the first issue is the one reported. */
export const MessagesBody = z.object(
  {
    model: z.string({ error: 'model must be a non-empty string' }).trim().min(1, { error: 'model must be a non-empty string' }),
    // OpenRouter's fallback list on this skin is `fallbacks: [{model}]` (at most 3 besides `model`); chat's `models`
    // is taken too, but not both at once (messagesChatBody refuses that).
    fallbacks: z
      .array(
        z.object({ model: z.string(says(FALLBACK_MODEL)).trim().min(1, says(FALLBACK_MODEL)).max(256, says(FALLBACK_MODEL)) }, says('must be an object {model}')),
        { error: FALLBACKS },
      )
      .max(3, { error: FALLBACKS })
      .optional(),
    models: z.array(z.string().min(1), { error: 'models must be a list of at most 3 non-empty strings' }).max(3, { error: 'models must be a list of at most 3 non-empty strings' }).optional(),
    max_tokens: z.int({ error: MAX_TOKENS_ERROR }).min(1, { error: MAX_TOKENS_ERROR }).max(MAX_TOKENS, { error: MAX_TOKENS_ERROR }),
    messages: z.array(Message, { error: MESSAGES }).min(1, { error: MESSAGES }),
    system: System.optional(),
    // Anthropic's range is 0..1 (OpenAI's 0..2 is not offered on this skin).
    temperature: numberIn('temperature', 0, 1),
    // The ranges the chat request it becomes is held to (OpenRouter's): a top_p of 0 or a top_k of 0 samples nothing.
    top_p: z.number({ error: TOP_P }).gt(0, { error: TOP_P }).max(1, { error: TOP_P }).optional(),
    top_k: z.int({ error: TOP_K }).min(1, { error: TOP_K }).max(1_000_000, { error: TOP_K }).optional(),
    stop_sequences: z.array(z.string({ error: STOP }).min(1, { error: STOP }), { error: STOP }).max(MAX_STOP_SEQUENCES, { error: STOP }).optional(),
    tools: z.array(Tool, { error: 'tools must be a list of {name, description?, input_schema}' }).optional(),
    tool_choice: ToolChoice.optional(),
    thinking: Thinking.optional(),
    metadata: z
      .object({ user_id: z.string({ error: 'metadata.user_id must be a string of at most 256 characters' }).max(256, { error: 'metadata.user_id must be a string of at most 256 characters' }).nullish() }, { error: 'metadata must be an object {user_id?}' })
      .optional(),
    stream: z.boolean({ error: 'stream must be a boolean' }).optional(),
    provider: z.unknown().optional(),
    plugins: z.unknown().optional(),
    session_id: z.unknown().optional(),
    // Anthropic's automatic prompt caching (one breakpoint the upstream places itself): checked by the chat parser, as
    // on chat, and sent only to Anthropic-protocol upstreams.
    cache_control: z.unknown().optional(),
    // OpenRouter's `preset: "slug"` (applied by the route, which checks it).
    preset: z.unknown().optional(),
  },
  { error: NOT_AN_OBJECT },
);
export type MessagesBody = z.output<typeof MessagesBody>;

export const PARSE_OPTIONS = { error: fallbackMessage };

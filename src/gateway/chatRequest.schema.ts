/**
 * OpenRouter's chat/completions body as zod schemas. Every message a client can see is written here and names the
 * field it is about (`messages[2].role must be one of ...`); `chatRequest.ts` turns the first issue into a 400 whose
 * `param` is that field. Unknown fields of the body are accepted and dropped (OpenAI SDKs and clients send fields of
 * their own), except inside tools (passed through as-is to OpenAI-style providers, as OpenRouter does); unknown fields
 * inside `provider` and `provider.max_price` are refused, naming the field: a misspelt key there (`orderr`, `prompts`)
 * would silently drop a routing rule or a price cap the client believes it set.
 */
import { z } from 'zod';
import { parseProviderName } from '../modules/catalog/endpointTag.js';
import { usdPerMillionToMaxNanoPerToken, usdToMaxNano } from '../modules/ledger/money.js';
import { REASONING_EFFORTS } from './types.js';

export const QUANTIZATIONS = ['int4', 'int8', 'fp4', 'fp6', 'fp8', 'fp16', 'bf16', 'fp32', 'unknown'] as const;
export const MAX_SESSION_ID = 256;
const MAX_MODELS = 10;
const MAX_TOKENS = 10_000_000;

type Issue = z.core.$ZodRawIssue;

/** `["messages", 2, "content", 0]` → `messages[2].content[0]`. */
export const pathText = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text === '' ? String(key) : `${text}.${String(key)}`), '');
const at = (issue: Issue) => pathText(issue.path ?? []);
/** An error whose message starts with the field's path, for fields inside lists. */
const says = (text: string) => ({ error: (issue: Issue) => `${at(issue)} ${text}` });

/** What a field without its own message says (fields the hand-written parser passed through unchecked). */
export const fallbackMessage = (issue: Issue): string => {
  if (issue.code === 'invalid_type') return `${at(issue)} must be ${issue.expected === 'array' ? 'a list' : issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}`;
  if (issue.code === 'invalid_value') return `${at(issue)} must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
  return `${at(issue)} is invalid`;
};

/** A list of names (`models`, `provider.order`): each at most 256 characters, so nothing the record keeps of them is large. */
const nonEmptyStrings = (what: string, max: number, maxLength = 256) => {
  const error = `${what} must be a list of at most ${max} non-empty strings`;
  const long = `${what} holds a string longer than ${maxLength} characters`;
  return z.array(z.string({ error }).min(1, { error }).max(maxLength, { error: long }), { error }).max(max, { error });
};

/** `provider.order` / `only` / `ignore`: providers, or endpoint variants of them (`deepinfra/fp8`: endpointTag.ts). */
const providerNames = (what: string) =>
  nonEmptyStrings(what, 100)
    .check((ctx) => {
      for (const entry of ctx.value) {
        const parsed = parseProviderName(entry);
        if ('problem' in parsed) {
          ctx.issues.push({ code: 'custom', input: ctx.value, message: `${what}: ${parsed.problem}` });
          return;
        }
      }
    })
    .optional();

const numberIn = (key: string, min: number, max: number) => {
  const error = `${key} must be a number between ${min} and ${max}`;
  return z.number({ error }).min(min, { error }).max(max, { error }).nullish();
};
/** (0, max]: OpenRouter's `top_p` and `repetition_penalty`, where 0 is no distribution at all. */
const positiveUpTo = (key: string, max: number) => {
  const error = `${key} must be a number greater than 0 and at most ${max}`;
  return z.number({ error }).gt(0, { error }).max(max, { error }).nullish();
};
const integerIn = (key: string, min: number, max: number) => {
  const error = `${key} must be an integer between ${min} and ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error }).nullish();
};
const boolean = (key: string) => z.boolean({ error: `${key} must be a boolean` }).nullish();
const STOP = 'stop must be a non-empty string or a list of at most 4 non-empty strings';
const PREDICTION_CONTENT = 'prediction.content must be a string or a list of at most 100 {"type": "text", "text": "…"} parts';
/** OpenRouter clients echo back `null` for absent optional fields; the canonical types have them absent. */
const optional = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);

// ---------------------------------------------------------------------------------------------------------------
// Messages

const PART_SHAPES = '{type:"text", text}, {type:"image_url", image_url:{url}}, {type:"file", file:{filename?, file_data}} or {type:"input_audio", input_audio:{data, format}}';
const ContentPart = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('text'),
    text: z.string(),
    cache_control: z.object({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).optional() }).optional(),
  }),
  z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }) }),
  z.object({
    type: z.literal('file'),
    file: z
      .object({ filename: z.string().optional(), file_data: z.string().min(1).optional(), file_id: z.string().min(1).optional() })
      .refine((f) => f.file_data !== undefined || f.file_id !== undefined),
  }),
  z.object({ type: z.literal('input_audio'), input_audio: z.object({ data: z.string().min(1), format: z.string().min(1) }) }),
]);

/**
 * A union reports one issue at the content itself when no branch fits, so its message is written from the list
 * branch's first issue: a part that is not an object, or any other mistake inside a part.
 */
const contentError = (issue: Issue): string => {
  const where = at(issue);
  const inList = issue.code === 'invalid_union' && Array.isArray(issue.input) ? issue.errors[1]?.[0] : undefined;
  if (inList === undefined) return `${where} must be a string or a list of content parts`;
  const part = `${where}[${String(inList.path[0])}]`;
  return inList.code === 'invalid_type' && inList.path.length === 1 ? `${part} must be an object` : `${part} must be ${PART_SHAPES}`;
};
const Content = z.union([z.string(), z.array(ContentPart)], { error: contentError });

const name = optional(z.string(says('must be a string')));

const ToolCall = z.object({ id: z.string(), type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) });

const detailFields = { format: optional(z.string()), id: optional(z.string()), index: optional(z.number()) };
const ReasoningDetail = z.discriminatedUnion('type', [
  z.object({ type: z.literal('reasoning.text'), text: optional(z.string()), signature: optional(z.string()), ...detailFields }),
  z.object({ type: z.literal('reasoning.encrypted'), data: z.string(), ...detailFields }),
  z.object({ type: z.literal('reasoning.summary'), summary: z.string(), ...detailFields }),
]);

const roleOf = (input: unknown): unknown => (typeof input === 'object' && input !== null && 'role' in input ? input.role : undefined);
const Message = z.discriminatedUnion(
  'role',
  [
    z.object({ role: z.literal(['system', 'developer']), name, content: Content }),
    z.object({ role: z.literal('user'), name, content: Content }),
    z
      .object({
        role: z.literal('assistant'),
        name,
        content: Content.nullish(),
        tool_calls: optional(z.array(ToolCall)),
        refusal: z.string().nullish(),
        reasoning: z.string().nullish(),
        reasoning_details: optional(z.array(ReasoningDetail)),
      })
      .refine((m) => m.content != null || (m.tool_calls !== undefined && m.tool_calls.length > 0), says('(assistant) needs content or tool_calls')),
    z.object({
      role: z.literal('tool'),
      name,
      // Checked before the content: the message names the message, the param the missing field.
      tool_call_id: z.string({ error: (issue) => `${pathText((issue.path ?? []).slice(0, -1))} (tool) needs a tool_call_id` }),
      content: Content,
    }),
  ],
  {
    // Its typings list only the no-match issue, but a message that is not an object is reported here too.
    error: (issue) =>
      typeof issue.input !== 'object' || issue.input === null || Array.isArray(issue.input)
        ? `${at(issue)} must be an object`
        : `${at(issue)} must be one of system, developer, user, assistant, tool (got ${JSON.stringify(roleOf(issue.input))})`,
  },
);

export const MESSAGES_REQUIRED = 'messages must be a non-empty list';
const Messages = z.array(Message, { error: MESSAGES_REQUIRED }).min(1, { error: MESSAGES_REQUIRED });

const PROMPT_REQUIRED = 'prompt must be a non-empty string';
/** A legacy completions prompt: a string, or a list of strings joined. */
/** One prompt: a string, or a list holding one (OpenAI's batch of prompts, one completion each, is not supported). */
export const Prompt = z
  .unknown()
  .transform((value, ctx) => {
    if (typeof value === 'string') return value;
    if (Array.isArray(value) && value.every((part) => typeof part === 'string')) {
      if (value.length <= 1) return (value[0] as string | undefined) ?? '';
      ctx.addIssue({ code: 'custom', message: 'prompt is one string: a list of several prompts (one completion each) is not supported; send one request per prompt' });
      return z.NEVER;
    }
    ctx.addIssue({ code: 'custom', message: Array.isArray(value) && value.length > 0 ? `${PROMPT_REQUIRED} (token ids are not accepted)` : PROMPT_REQUIRED });
    return z.NEVER;
  })
  .pipe(z.string().min(1, { error: PROMPT_REQUIRED }));

// ---------------------------------------------------------------------------------------------------------------
// Tools, formats, reasoning

const TOOLS = 'tools must be a list of {type:"function", function:{name, parameters}}';
const tools = { error: TOOLS };
const FunctionTool = z.looseObject(
  {
    type: z.literal('function', tools),
    function: z.looseObject(
      {
        name: z.string(tools),
        description: z.string(tools).optional(),
        parameters: z.record(z.string(), z.unknown(), tools).optional(),
        strict: z.boolean(tools).nullish(),
      },
      tools,
    ),
  },
  tools,
);

const ToolChoice = z.union(
  [z.enum(['none', 'auto', 'required']), z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) })],
  { error: 'tool_choice must be "none", "auto", "required" or {type:"function", function:{name}}' },
);

const JSON_SCHEMA = { error: 'response_format.json_schema must be {name, schema?, strict?}' };
const ResponseFormat = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.looseObject(
        {
          name: z.string(JSON_SCHEMA),
          description: z.string(JSON_SCHEMA).optional(),
          schema: z.record(z.string(), z.unknown(), JSON_SCHEMA).optional(),
          strict: z.boolean(JSON_SCHEMA).nullish(),
        },
        JSON_SCHEMA,
      ),
    }),
  ],
  { error: 'response_format.type must be text, json_object or json_schema' },
);

const Reasoning = z.object(
  {
    effort: z.enum(REASONING_EFFORTS, { error: 'reasoning.effort must be max, xhigh, high, medium, low, minimal or none' }).optional(),
    max_tokens: z.int({ error: `reasoning.max_tokens must be an integer between 0 and ${MAX_TOKENS}` }).min(0).max(MAX_TOKENS).optional(),
    exclude: z.boolean({ error: 'reasoning.exclude must be a boolean' }).optional(),
    enabled: z.boolean({ error: 'reasoning.enabled must be a boolean' }).optional(),
  },
  { error: 'reasoning must be an object' },
);

// ---------------------------------------------------------------------------------------------------------------
// Provider preferences

const SORT = 'provider.sort must be "price", "throughput" or "latency" (or {by, partition})';
const Sort = z.preprocess(
  // The shorthand `"price"` is `{by: "price"}`.
  (sort) => (typeof sort === 'string' ? { by: sort } : sort),
  z
    .object(
      {
        by: z.enum(['price', 'throughput', 'latency'], { error: SORT }),
        partition: z.enum(['model', 'none'], { error: 'provider.sort.partition must be "model" or "none"' }).nullish().transform((p) => p ?? 'model'),
      },
      { error: SORT },
    )
    .nullish(),
);

/**
 * The message of a strict object (`provider`, `provider.max_price`): an unknown field is named with the object's own
 * fields (chatRequest.ts makes it the 400's param); any other problem is `otherwise`.
 */
const strictFields = (object: string, known: readonly string[], otherwise: string) => ({
  error: (issue: Issue) =>
    issue.code === 'unrecognized_keys'
      ? `${object}.${String(issue.keys[0]).slice(0, 64)} is not a field of ${object} (its fields: ${known.join(', ')})`
      : otherwise,
});

/**
 * A price limit, exact from the number's decimal text (String(0.29) is "0.29"; 0.29 × 1000 in floating point is
 * 289.99...): USD per million tokens → nano-dollars per token, the request price in USD → nano-dollars. Catalog prices
 * are integers of those units, so a bound finer than one (0.0375 per million tokens: 37.5 per token) is floored to one
 * (37): an integer price is at most 37.5 exactly when it is at most 37. It is a bound, not an amount charged, so it
 * is never refused for its precision; only what is not a non-negative number is.
 */
const price = (key: 'prompt' | 'completion' | 'request') => {
  const param = `provider.max_price.${key}`;
  const unit = key === 'request' ? 'USD' : 'USD per million tokens';
  return z
    .union([z.string(), z.number()], { error: `${param} must be a non-negative number (${unit})` })
    .transform((raw, ctx) => {
      try {
        return key === 'request' ? usdToMaxNano(String(raw), param) : usdPerMillionToMaxNanoPerToken(String(raw), param);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        ctx.issues.push({ code: 'custom', input: raw, message: `${error.message} (${unit})` });
        return z.NEVER;
      }
    })
    .nullish();
};

/**
 * A performance threshold: a number (the p50) or percentile cutoffs `{p50, p75, p90, p99}`, each a non-negative
 * number (`unit`: tokens per second, or seconds to the first token).
 */
export const PERCENTILES = ['p50', 'p75', 'p90', 'p99'] as const;
const threshold = (key: 'preferred_min_throughput' | 'preferred_max_latency', unit: string) => {
  const param = `provider.${key}`;
  const error = `${param} must be a non-negative number (${unit}, the p50) or an object of percentile cutoffs such as {"p50": 10, "p90": 5}`;
  const cutoff = z.number({ error }).min(0, { error }).max(1e9, { error });
  return z
    .union([cutoff, z.strictObject(Object.fromEntries(PERCENTILES.map((p) => [p, cutoff.nullish()])) as Record<(typeof PERCENTILES)[number], z.ZodOptional<z.ZodNullable<typeof cutoff>>>, { error })], { error })
    .transform((value) => (typeof value === 'number' ? { p50: value } : Object.fromEntries(Object.entries(value).filter(([, v]) => v != null)) as Partial<Record<(typeof PERCENTILES)[number], number>>))
    .nullish();
};

/**
 * `max_price.image` and `audio` (USD per image, per audio input): checked as bounds, and met by every endpoint, since
 * no endpoint prices images or audio apart: they are billed as the prompt tokens they count as, which `prompt` caps.
 */
const mediaPrice = (key: 'image' | 'audio') => {
  const error = `provider.max_price.${key} must be a non-negative number (USD per ${key === 'image' ? 'image' : 'audio input'})`;
  return z.union([z.number({ error }).min(0, { error }), z.string({ error }).regex(/^\d+(\.\d+)?$/, { error })], { error }).nullish();
};
const MAX_PRICE_FIELDS = ['prompt', 'completion', 'request', 'image', 'audio'] as const;
const MaxPrice = z.strictObject(
  { prompt: price('prompt'), completion: price('completion'), request: price('request'), image: mediaPrice('image'), audio: mediaPrice('audio') },
  strictFields('provider.max_price', MAX_PRICE_FIELDS, 'provider.max_price must be an object such as {"prompt": 1, "completion": 2} (USD per million tokens)'),
);

const PROVIDER_SHAPE = {
  order: providerNames('provider.order'),
  only: providerNames('provider.only'),
  ignore: providerNames('provider.ignore'),
  allow_fallbacks: boolean('provider.allow_fallbacks'),
  require_parameters: boolean('provider.require_parameters'),
  sort: Sort,
  quantizations: nonEmptyStrings('provider.quantizations', 100)
    .check((ctx) => {
      const unknown = ctx.value.filter((q) => !QUANTIZATIONS.some((known) => known === q));
      if (unknown.length > 0) {
        ctx.issues.push({ code: 'custom', input: ctx.value, message: `provider.quantizations has unknown values ${unknown.join(', ')} (known: ${QUANTIZATIONS.join(', ')})` });
      }
    })
    .optional(),
  data_collection: z.enum(['allow', 'deny'], { error: 'provider.data_collection must be "allow" or "deny"' }).nullish(),
  zdr: boolean('provider.zdr'),
  enforce_distillable_text: z
    .literal(false, { error: "provider.enforce_distillable_text is not supported: the catalog records no model's distillation terms, so no endpoint can be shown to meet it" })
    .nullish(),
  preferred_min_throughput: threshold('preferred_min_throughput', 'tokens per second'),
  preferred_max_latency: threshold('preferred_max_latency', 'seconds to the first token'),
  max_price: MaxPrice.nullish(),
};
export const Provider = z.strictObject(PROVIDER_SHAPE, strictFields('provider', Object.keys(PROVIDER_SHAPE), 'provider must be an object'));

/**
 * OpenRouter's plugins. Accepted: `file-parser` (PDF parts go to models that take files natively; its engine choice is
 * not applied), `response-healing` (a whole answer to a request for JSON is repaired when it does not parse:
 * responseHealing.ts), `context-compression` (middle-out, on or off: contextCompression.ts), and `auto-router`, whose `allowed_models` / `excluded_models` narrow what switchyard/auto may pick.
 * Refused, as its absence would change the answer the caller asked for without a word: `web` (no search backend, as
 * the :online variant), and the auto router's `cost_tier` (its rules are an admin's, without tiers).
 */
const PLUGINS: Record<string, string | null> = {
  'file-parser': null,
  'response-healing': null,
  'context-compression': null,
  'auto-router': null,
  web: 'the web plugin (web search) is not supported: Switchyard has no search backend (nor the :online variant)',
};
const PLUGINS_SHAPE = 'plugins must be a list of at most 20 objects such as {"id": "file-parser"}';

/** Model id patterns: `*` stands for any run of characters (`anthropic/*`, `*-mini`). */
const modelPatterns = (key: string) => {
  const error = `${key} must be a list of at most 100 model ids or patterns such as "anthropic/*" (each at most 200 characters)`;
  return z.array(z.string({ error }).min(1, { error }).max(200, { error }), { error }).max(100, { error }).nullish();
};
const AutoRouterSettings = z.looseObject({
  allowed_models: modelPatterns("the auto-router plugin's allowed_models"),
  excluded_models: modelPatterns("the auto-router plugin's excluded_models"),
  cost_tier: z
    .null({ error: "the auto-router plugin's cost_tier is not supported: switchyard/auto follows the rules an admin sets (setAutoRouterRules), which have no cost tiers; narrow its choice with allowed_models" })
    .optional(),
});
/** What the auto-router plugin asks of switchyard/auto: the models it may pick (patterns), and those it may not. */
export interface AutoRouterPlugin {
  readonly allowed: readonly string[] | null;
  readonly excluded: readonly string[] | null;
}

const Plugins = z
  .array(z.looseObject({ id: z.string({ error: PLUGINS_SHAPE }), enabled: z.boolean({ error: 'plugins[].enabled must be a boolean' }).nullish() }, { error: PLUGINS_SHAPE }), {
    error: PLUGINS_SHAPE,
  })
  .max(20, { error: PLUGINS_SHAPE })
  .transform((plugins, ctx): { autoRouter: AutoRouterPlugin | null; responseHealing: boolean; contextCompression: boolean | null } => {
    let autoRouter: AutoRouterPlugin | null = null;
    let responseHealing = false;
    let contextCompression: boolean | null = null;
    plugins.forEach((plugin, i) => {
      if (plugin.id === 'context-compression') contextCompression = plugin.enabled !== false;
      if (plugin.enabled === false) return;
      const refusal = Object.hasOwn(PLUGINS, plugin.id) ? PLUGINS[plugin.id] : `plugins[${i}].id "${plugin.id}" is not a known plugin (known: ${Object.keys(PLUGINS).join(', ')})`;
      if (refusal) return void ctx.issues.push({ code: 'custom', input: plugins, path: [i, 'id'], message: refusal });
      if (plugin.id === 'response-healing') responseHealing = true;
      if (plugin.id !== 'auto-router') return;
      const settings = AutoRouterSettings.safeParse(plugin);
      if (!settings.success) {
        for (const issue of settings.error.issues) ctx.issues.push({ code: 'custom', input: plugins, path: [i, ...issue.path], message: issue.message });
        return;
      }
      autoRouter = { allowed: settings.data.allowed_models ?? null, excluded: settings.data.excluded_models ?? null };
    });
    return { autoRouter, responseHealing, contextCompression };
  });

// ---------------------------------------------------------------------------------------------------------------
// The body

/** Everything but the conversation, in the order the fields are checked (the first issue is the one reported). */
const common = {
  model: z
    .string({ error: 'model must be a non-empty string' })
    .trim()
    .min(1, { error: 'model must be a non-empty string' })
    .nullish(),
  models: nonEmptyStrings('models', MAX_MODELS).nullish(),
  max_tokens: integerIn('max_tokens', 1, MAX_TOKENS),
  max_completion_tokens: integerIn('max_completion_tokens', 1, MAX_TOKENS),
  temperature: numberIn('temperature', 0, 2),
  // OpenRouter's ranges (its API reference): top_p (0, 1], top_k ≥ 1, repetition_penalty (0, 2].
  top_p: positiveUpTo('top_p', 1),
  top_k: integerIn('top_k', 1, 1_000_000),
  min_p: numberIn('min_p', 0, 1),
  top_a: numberIn('top_a', 0, 1),
  repetition_penalty: positiveUpTo('repetition_penalty', 2),
  frequency_penalty: numberIn('frequency_penalty', -2, 2),
  presence_penalty: numberIn('presence_penalty', -2, 2),
  seed: integerIn('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
  top_logprobs: integerIn('top_logprobs', 0, 20),
  logprobs: boolean('logprobs'),
  // One string or a list: an empty one is refused either way (a stop sequence of nothing would end every answer at once).
  stop: z.union([z.string().min(1, { error: STOP }), z.array(z.string({ error: STOP }).min(1, { error: STOP }), { error: STOP }).max(4, { error: STOP })], { error: STOP }).nullish(),
  logit_bias: z.record(z.string(), z.number(says('must be a number')), { error: 'logit_bias must be an object' }).nullish(),
  // OpenAI's predicted output: text the answer is expected to repeat (sent on to providers that take it).
  prediction: z
    .object(
      {
        type: z.literal('content', { error: 'prediction.type must be "content"' }),
        content: z.union([z.string(), z.array(z.object({ type: z.literal('text'), text: z.string() }), { error: PREDICTION_CONTENT }).max(100, { error: PREDICTION_CONTENT })], { error: PREDICTION_CONTENT }),
      },
      { error: 'prediction must be an object such as {"type": "content", "content": "…"}' },
    )
    .nullish(),
  tools: z.array(FunctionTool, tools).nullish(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: boolean('parallel_tool_calls'),
  response_format: ResponseFormat.nullish(),
  reasoning: Reasoning.nullish(),
  // OpenAI's top-level spelling of `reasoning.effort` (LangChain, the openai SDK's typed field).
  reasoning_effort: z
    .enum(REASONING_EFFORTS, { error: 'reasoning_effort must be max, xhigh, high, medium, low, minimal or none' })
    .nullish(),
  // OpenRouter's legacy switch: false leaves the reasoning out of the answer (`reasoning.exclude`).
  include_reasoning: boolean('include_reasoning'),
  user: z.string({ error: 'user must be a string of at most 256 characters' }).max(256, { error: 'user must be a string of at most 256 characters' }).nullish(),
  n: z.literal(1, { error: 'n must be 1 (several choices per request are not supported)' }).nullish(),
  stream: boolean('stream'),
  // OpenAI's stream options: checked, not passed on (every streamed upstream call asks for usage: billing needs it).
  stream_options: z
    .object({ include_usage: boolean('stream_options.include_usage') }, { error: 'stream_options must be an object such as {"include_usage": true}' })
    .nullish(),
  provider: Provider.nullish(),
  // OpenRouter's legacy spelling of model fallbacks: `models` always falls back, so "fallback" changes nothing.
  route: z.literal('fallback', { error: 'route must be "fallback" (the legacy switch for models fallbacks, which are always on), or left out' }).nullish(),
  session_id: z
    .string({ error: `session_id must be a non-empty string of at most ${MAX_SESSION_ID} characters` })
    .min(1, { error: `session_id must be a non-empty string of at most ${MAX_SESSION_ID} characters` })
    .max(MAX_SESSION_ID, { error: `session_id must be a non-empty string of at most ${MAX_SESSION_ID} characters` })
    .nullish(),
  prompt_cache_key: z.string({ error: 'prompt_cache_key must be a non-empty string' }).min(1, { error: 'prompt_cache_key must be a non-empty string' }).nullish(),
  // Anthropic's automatic prompt caching: one breakpoint the upstream places itself.
  cache_control: z
    .object(
      {
        type: z.literal('ephemeral', { error: 'cache_control.type must be "ephemeral"' }),
        ttl: z.enum(['5m', '1h'], { error: 'cache_control.ttl must be "5m" or "1h"' }).nullish().transform((ttl) => ttl ?? undefined),
      },
      { error: 'cache_control must be an object such as {"type": "ephemeral"}' },
    )
    .nullish(),
  plugins: Plugins.nullish(),
  // OpenRouter's debug option: a streamed answer starts with the body sent to each provider tried.
  debug: z.object({ echo_upstream_body: boolean('debug.echo_upstream_body') }, { error: 'debug must be an object such as {"echo_upstream_body": true}' }).nullish(),
  // The legacy spelling of context compression: ["middle-out"] turns it on, [] off.
  transforms: z
    .array(z.literal('middle-out', { error: 'transforms may hold only "middle-out"' }), { error: 'transforms must be a list such as ["middle-out"]' })
    .max(1, { error: 'transforms may hold only "middle-out"' })
    .nullish(),
};

export type CommonBody = z.output<z.ZodObject<typeof common>>;

const NOT_AN_OBJECT = { error: 'The request body must be a JSON object' };
export const MODEL_REQUIRED = 'model is required (or a models list)';
/**
 * The model comes first, then the conversation: a body without them is refused for that before anything else is
 * looked at. (Everything is checked in one pass otherwise, and the first issue is reported.)
 */
const routing = (needsConversation: boolean) =>
  z.looseObject({ model: common.model, models: common.models }, NOT_AN_OBJECT).check((ctx) => {
    if (!ctx.value.model && !ctx.value.models?.length) ctx.issues.push({ code: 'custom', input: ctx.value, path: ['model'], message: MODEL_REQUIRED });
    else if (needsConversation && ctx.value.messages === undefined && ctx.value.prompt === undefined) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['messages'], message: MESSAGES_REQUIRED });
    }
  });
/*
 * Compiled: the interpreted parse measured 3–5× slower (a one-message body 15–24 vs 4.4–5.0 µs, 111 messages 155 vs
 * 54 µs; bench/README.md ## Chat request parse). `strict` makes a schema change that cannot compile fail at import.
 */
/** A chat body; `prompt` is read only when `messages` is absent (a completions body sent to chat/completions). */
export const ChatBody = z.compile(routing(true).pipe(z.object({ messages: Messages.optional(), prompt: z.unknown().optional(), ...common })), { strict: true });
/** A legacy completions body: `messages` is ignored. */
/**
 * Legacy completions' `logprobs` is how many alternatives to give per token (0-5): chat's `logprobs: true` with that
 * many `top_logprobs` (a boolean, as chat takes it, is accepted too).
 */
const LOGPROBS = 'logprobs must be an integer from 0 to 5';
const completionLogprobs = z.union([z.boolean(), z.int({ error: LOGPROBS }).min(0, { error: LOGPROBS }).max(5, { error: LOGPROBS })], { error: LOGPROBS }).nullish();

export const CompletionBody = z.compile(
  routing(false).pipe(
    z
      .object({ prompt: Prompt, ...common, logprobs: completionLogprobs })
      .transform(({ logprobs, ...body }) => (typeof logprobs === 'number' ? { ...body, logprobs: true, top_logprobs: body.top_logprobs ?? logprobs } : { ...body, logprobs })),
  ),
  { strict: true },
);

import { idempotencyKeyArg } from '../../idempotencyKey.js';
import { BILLED_CALL } from '../../graphql/plugins/writeBudget.js';
import type { StoredContent } from '../../contentStore/contentStore.js';
import { mediaCounts, type GenerationDoc } from '../../../projections/generations.js';
import { builder } from '../../graphql/builder.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import { idConnection } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount } from '../../graphql/scopes.js';
import { maySeeGenerationDoc, type Embedded, type SentPrompt } from './generation.api.js';
import type { AppAttribution, TokenUsage } from './generation.events.js';
import type { FeedItem } from './generationFeed.js';

const GenerationAppRef = builder.objectRef<AppAttribution>('GenerationApp').implement({
  description: "An app's attribution of its call (OpenRouter's app headers).",
  fields: (t) => ({
    url: t.exposeString('url', { nullable: true, description: 'HTTP-Referer: the app’s URL.' }),
    title: t.exposeString('title', { nullable: true, description: 'X-OpenRouter-Title (or X-Title).' }),
    categories: t.exposeStringList('categories', { description: 'X-OpenRouter-Categories (at most 2).' }),
  }),
});

const TokenUsageRef = builder.objectRef<TokenUsage>('TokenUsage').implement({
  description: 'Tokens as billed: prompt includes cached and cache-write tokens; completion includes reasoning tokens.',
  fields: (t) => ({
    promptTokens: t.int({ resolve: (u) => u.prompt }),
    completionTokens: t.int({ resolve: (u) => u.completion }),
    reasoningTokens: t.int({ resolve: (u) => u.reasoning }),
    cachedTokens: t.int({ resolve: (u) => u.cached }),
    cacheWriteTokens: t.int({ resolve: (u) => u.cacheWrite }),
  }),
});

const GenerationStatusEnum = builder.enumType('GenerationStatus', {
  values: {
    PENDING: { value: 'pending' },
    COMPLETED: { value: 'completed' },
    FAILED: { value: 'failed' },
    CANCELLED: { value: 'cancelled' },
    UNRECORDED: {
      value: 'unrecorded',
      description:
        "Charged, record lost: the ledger settled the call, but the generation's record (written after the charge) is not in the log: the server stopped first, or its write failed (a full disk, a store unavailable: tried again until written, the call shown so by another server meanwhile, and lost if this one stops first). What the charge knows is shown (cost, tokens, model, provider slug, creation time: when its credits were reserved, isByok and upstreamCost); what only the record knew is null (apiType, streamed, provider, latency, finish reason, ...; cacheWriteTokens 0) and attempts is empty.",
    },
  } as const,
});

const GenerationFilterInput = builder.inputType('GenerationFilter', {
  description: 'Generations that match every field given.',
  fields: (t) => ({
    model: t.string({ description: 'The model that served it, e.g. openai/gpt-4o-mini.' }),
    keyId: t.id({ description: 'The key that made the call.' }),
    provider: t.string({ description: "The provider's slug." }),
    status: t.field({ type: GenerationStatusEnum }),
    from: t.field({ type: 'DateTime', description: 'Created at or after.' }),
    to: t.field({ type: 'DateTime', description: 'Created at or before.' }),
    sessionId: t.string({ description: "The conversation's id the client sent (session_id / x-session-id): its calls." }),
  }),
});

export const GenerationRef = builder.loadableObject('Generation', {
  description: 'One model call through the gateway, as recorded by its events. Visible to its account and to admins.',
  load: loadByIds('Generation', (ids, ctx) => ctx.generations.byIds(ids), (doc, ctx) => ctx.principal !== null && maySeeGenerationDoc(ctx.principal, doc)),
  sort: (doc: GenerationDoc) => doc._id,
  authScopes: (doc) => ({ ownsAccount: doc.accountId }),
  fields: (t) => ({
    id: t.exposeID('_id'),
    accountId: t.exposeID('accountId'),
    keyId: t.exposeID('keyId', { nullable: true }),
    status: t.field({ type: GenerationStatusEnum, resolve: (g) => g.status }),
    requestedModels: t.exposeStringList('requestedModels'),
    model: t.exposeString('model', { nullable: true }),
    provider: t.exposeString('providerName', { nullable: true }),
    providerSlug: t.exposeString('providerSlug', { nullable: true }),
    router: t.exposeString('router', { nullable: true }),
    sessionId: t.string({
      nullable: true,
      description: "The conversation's id as the client sent it (session_id, or the x-session-id header): the calls of one conversation share it (filter generations by it). Null when it sent none.",
      resolve: (g) => g.sessionId ?? null,
    }),
    apiType: t.exposeString('apiType', {
      nullable: true,
      description:
        'The API the generation came through: chat (/api/v1/chat/completions), completions (/api/v1/completions), embeddings (/api/v1/embeddings), responses (/api/v1/responses), messages (/api/v1/messages, Anthropic\'s Messages), graphql (sendPrompt, startGeneration), or workflow (a model step of a workflow run). Null when UNRECORDED.',
    }),
    workflowId: t.id({ nullable: true, description: 'The workflow whose run made the call (null outside workflows).', resolve: (g) => g.workflowId ?? null }),
    workflowRunId: t.id({ nullable: true, description: 'The workflow run that made the call (null outside workflows).', resolve: (g) => g.runId ?? null }),
    app: t.field({
      type: GenerationAppRef,
      nullable: true,
      description: 'The app that made the call, as it named itself (HTTP-Referer, X-OpenRouter-Title or X-Title, X-OpenRouter-Categories); null when it did not.',
      resolve: (g) => g.app ?? null,
    }),
    streamed: t.exposeBoolean('streamed', { nullable: true, description: 'Asked for as a stream; null when UNRECORDED.' }),
    clientGone: t.boolean({
      nullable: true,
      description:
        "The client went away before the end: CANCELLED, or COMPLETED / FAILED when the provider cannot cancel (it bills the whole answer) or the call did not stream (it runs to its end, billed whole, as OpenRouter bills it), so the answer was read on, undelivered, and charged as it billed (OpenRouter's record: cancelled). Null when UNRECORDED.",
      resolve: (g) => (g.status === 'unrecorded' ? null : g.status === 'cancelled' || g.clientGone === true),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (g) => g.createdAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (g) => g.finishedAt }),
    usage: t.field({ type: TokenUsageRef, nullable: true, resolve: (g) => g.usage }),
    usageSource: t.exposeString('usageSource', { nullable: true, description: 'provider (reported upstream) or estimated (counted, ~4 characters per token).' }),
    cost: t.field({ type: 'Money', description: 'Nano-dollars charged; served with the account\'s own provider key (isByok), the BYOK fee.', resolve: (g) => g.cost }),
    isByok: t.boolean({ description: "Served with the account's own provider key (setByokKey).", resolve: (g) => g.upstreamCost !== undefined }),
    upstreamCost: t.field({
      type: 'Money',
      nullable: true,
      description: "Served with the account's own provider key: what the call costs at the endpoint's list price (paid to the provider on that key); null otherwise.",
      resolve: (g) => g.upstreamCost ?? null,
    }),
    reserved: t.field({ type: 'Money', resolve: (g) => g.reserved }),
    cacheDiscount: t.field({
      type: 'Money',
      nullable: true,
      description:
        "What the cached prompt tokens saved against the prompt price, less what cache writes cost above it (OpenRouter's cache_discount, in nano-dollars); 0 when nothing was cached at a price of its own, null for generations recorded before it was.",
      resolve: (g) => g.cacheDiscount ?? null,
    }),
    numMediaPrompt: t.int({ nullable: true, description: "The prompt's media parts: images, files and audio (null for generations recorded before they were counted).", resolve: (g) => mediaCounts(g).prompt }),
    numInputAudioPrompt: t.int({ nullable: true, description: "The prompt's audio inputs (null for generations recorded before they were counted).", resolve: (g) => mediaCounts(g).inputAudio }),
    numMediaCompletion: t.int({ description: "The answer's media parts: always 0 (Switchyard's answers are text).", resolve: (g) => mediaCounts(g).completion }),
    latencyMs: t.exposeInt('latencyMs', { nullable: true, description: 'Time to the first token.' }),
    generationTimeMs: t.exposeInt('generationTimeMs', { nullable: true }),
    finishReason: t.exposeString('finishReason', { nullable: true }),
    nativeFinishReason: t.exposeString('nativeFinishReason', { nullable: true }),
    error: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'Why it failed ({type, status, message}, as the client was told); COMPLETED with finishReason "error", the error its provider ended the answer with mid-generation (the partial answer was delivered and is charged). Null otherwise (and for such answers recorded before their error was).',
      resolve: (g) => g.error,
    }),
    attempts: t.field({ type: 'JSON', resolve: (g) => g.attempts }),
  }),
});

const GenerationContentRef = builder.objectRef<StoredContent>('GenerationContent').implement({
  description: 'What a generation was sent and answered, kept because its account had input & output logging on (setContentLogging).',
  fields: (t) => ({
    messages: t.field({ type: 'JSON', description: 'The messages as the request sent them (a legacy prompt is one user message), before any context compression.', resolve: (c) => c.input.messages }),
    completion: t.string({ nullable: true, description: 'The answer as the client received it (a cut stream: the part sent); null when nothing was generated.', resolve: (c) => c.output.completion }),
    reasoning: t.string({ nullable: true, description: 'The reasoning text the provider returned, if any.', resolve: (c) => c.output.reasoning }),
  }),
});

builder.objectField(GenerationRef, 'content', (t) =>
  t.loadable({
    type: GenerationContentRef,
    nullable: true,
    description:
      "What the generation was sent and answered, when its account had input & output logging on then (and has not deleted it, nor has the retention passed). Its account's own only: null for anyone else, an admin included.",
    // A page of generations asks the content store once.
    load: (ids: string[], ctx) => (ctx.principal ? ctx.generations.findContents(ctx.principal, ids) : Promise.resolve(ids.map(() => null))),
    resolve: (g) => g._id,
  }),
);

const MessageRoleEnum = builder.enumType('MessageRole', {
  values: { SYSTEM: { value: 'system' }, USER: { value: 'user' }, ASSISTANT: { value: 'assistant' } } as const,
});

const MessageInput = builder.inputType('MessageInput', {
  fields: (t) => ({ role: t.field({ type: MessageRoleEnum, required: true }), content: t.string({ required: true }) }),
});

const PromptInput = builder.inputType('PromptInput', {
  description: 'A chat request: a model (or models, for fallbacks) and messages (or a single prompt), with OpenRouter provider preferences as JSON.',
  fields: (t) => ({
    model: t.string({ required: false }),
    models: t.stringList({ required: false }),
    messages: t.field({ type: [MessageInput], required: false }),
    prompt: t.string({ required: false }),
    maxTokens: t.int({ required: false }),
    temperature: t.float({ required: false }),
    provider: t.field({ type: 'JSON', required: false }),
    user: t.string({ required: false }),
    sessionId: t.string({ required: false, description: 'The conversation, for sticky routing (OpenRouter session_id, at most 256 characters).' }),
    responseFormat: t.field({ type: 'JSON', required: false, description: 'OpenRouter response_format: {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}.' }),
    plugins: t.field({
      type: 'JSON',
      required: false,
      description: 'OpenRouter plugins, e.g. [{"id": "response-healing"}] or [{"id": "context-compression", "enabled": false}].',
    }),
  }),
});

const SendPromptResultRef = builder.objectRef<SentPrompt>('SendPromptResult').implement({
  fields: (t) => ({
    generationId: t.exposeID('generationId'),
    completion: t.exposeString('completion'),
    model: t.exposeString('model', { nullable: true }),
    provider: t.exposeString('provider', { nullable: true }),
    finishReason: t.exposeString('finishReason', { nullable: true }),
    usage: t.field({ type: TokenUsageRef, resolve: (r) => r.usage }),
    cost: t.field({ type: 'Money', description: 'Nano-dollars charged.', resolve: (r) => r.cost }),
    error: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'With finishReason "error": the error its provider ended the answer with mid-generation ({type, status, message}, as the generation record says it; the completion is partial, and charged as the provider billed it). Null otherwise.',
      resolve: (r) => (r.error ? { type: r.error.errorType, status: r.error.status, message: r.error.message } : null),
    }),
  }),
});

const EmbedInputRef = builder.inputType('EmbedInput', {
  description: 'An embeddings request: an embeddings model (output modality embeddings) and one text or a list of texts.',
  fields: (t) => ({
    model: t.string({ required: true, description: 'e.g. switchyard/demo-embed or openai/text-embedding-3-small.' }),
    input: t.stringList({ required: true, description: 'The texts, 1 to 2048 non-empty strings; a single string is taken as a list of one.' }),
    dimensions: t.int({ required: false, description: 'The vector size, where the model supports shortening (1 to 8192).' }),
    user: t.string({ required: false }),
  }),
});

const EmbedResultRef = builder.objectRef<Embedded>('EmbedResult').implement({
  description: 'One vector per input, in input order, with the tokens billed (input only) and the cost.',
  fields: (t) => ({
    generationId: t.exposeID('generationId'),
    model: t.exposeString('model'),
    provider: t.exposeString('provider'),
    vectors: t.field({ type: t.listRef(t.listRef('Float')), description: 'One vector per input, in input order.', resolve: (r) => r.vectors.map((v) => [...v]) }),
    usage: t.field({ type: TokenUsageRef, description: 'Input tokens as billed (promptTokens; the rest are 0).', resolve: (r) => r.usage }),
    cost: t.field({ type: 'Money', description: 'Nano-dollars charged.', resolve: (r) => r.cost }),
  }),
});

const StartedGenerationRef = builder.objectRef<{ generationId: string }>('StartedGeneration').implement({
  fields: (t) => ({ generationId: t.exposeID('generationId', { description: 'Subscribe to generation(id) for its tokens and final usage.' }) }),
});

const StreamEventTypeEnum = builder.enumType('GenerationStreamEventType', {
  values: {
    TOKEN: { description: 'Text as it is generated.' },
    TRUNCATED: {
      description:
        'The tokens before this point are no longer kept (the live feeds of the process were full: the tokens of generations that ended go first, then the oldest of a running one): `skipped` characters are missing; the tokens kept follow.',
    },
    DONE: { description: 'The end: outcome, usage and cost.' },
  } as const,
});

const GenerationStreamEventRef = builder.objectRef<FeedItem>('GenerationStreamEvent').implement({
  description:
    'TOKEN events carry text as it is generated; one DONE event ends the stream with the outcome, usage and cost. A TRUNCATED event says how many characters of the start are no longer kept (for a subscriber that came late or fell behind while the feeds were full).',
  fields: (t) => ({
    type: t.field({ type: StreamEventTypeEnum, resolve: (e) => (e.kind === 'token' ? 'TOKEN' : e.kind === 'truncated' ? 'TRUNCATED' : 'DONE') }),
    skipped: t.int({
      nullable: true,
      description: 'TRUNCATED: the characters of content and reasoning before this point that are no longer kept.',
      resolve: (e) => (e.kind === 'truncated' ? e.skipped : null),
    }),
    content: t.string({ nullable: true, resolve: (e) => (e.kind === 'token' ? e.content : null) }),
    reasoning: t.string({ nullable: true, resolve: (e) => (e.kind === 'token' ? e.reasoning : null) }),
    status: t.field({ type: GenerationStatusEnum, nullable: true, resolve: (e) => (e.kind === 'done' ? e.status : null) }),
    model: t.string({ nullable: true, resolve: (e) => (e.kind === 'done' ? e.model : null) }),
    provider: t.string({ nullable: true, resolve: (e) => (e.kind === 'done' ? e.provider : null) }),
    finishReason: t.string({ nullable: true, resolve: (e) => (e.kind === 'done' ? e.finishReason : null) }),
    usage: t.field({
      type: TokenUsageRef,
      nullable: true,
      resolve: (e) =>
        e.kind === 'done' ? { prompt: e.promptTokens, completion: e.completionTokens, reasoning: e.reasoningTokens, cached: e.cachedTokens, cacheWrite: 0 } : null,
    }),
    cost: t.field({ type: 'Money', nullable: true, resolve: (e) => (e.kind === 'done' ? e.cost : null) }),
    error: t.field({ type: 'JSON', nullable: true, resolve: (e) => (e.kind === 'done' ? e.error : null) }),
  }),
});

builder.queryFields((t) => ({
  generation: t.withAuth({ authenticated: true }).field({
    type: GenerationRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    description: "One generation of the caller's account (an admin's: any). Another account's answers NOT_FOUND, as a missing one.",
    resolve: (_root, args, ctx) => ctx.generations.byId(ctx.principal, String(args.id)),
  }),
  generations: t.withAuth(ownsAccountArg).connection({
    type: GenerationRef,
    description: "The caller's generations, oldest first or newest first, optionally filtered (an admin may name another account).",
    args: {
      accountId: t.arg.id({ required: false }),
      newestFirst: t.arg.boolean({ defaultValue: false, description: 'Newest first: `first`/`after` then page towards older generations.' }),
      filter: t.arg({ type: GenerationFilterInput, required: false }),
    },
    resolve: (_root, args, ctx) =>
      idConnection(args, (page) =>
        ctx.generations.list(ctx.principal, targetAccount(args.accountId, ctx), page, {
          newestFirst: args.newestFirst ?? false,
          filter: args.filter ? { ...args.filter, keyId: args.filter.keyId === null || args.filter.keyId === undefined ? null : String(args.filter.keyId) } : {},
        }),
      ),
  }),
  platformGenerations: t.withAuth({ admin: true }).connection({
    type: GenerationRef,
    description: "Every account's generations, oldest first or newest first, optionally filtered (admin).",
    args: {
      newestFirst: t.arg.boolean({ defaultValue: false, description: 'Newest first: `first`/`after` then page towards older generations.' }),
      filter: t.arg({ type: GenerationFilterInput, required: false }),
    },
    resolve: (_root, args, ctx) =>
      idConnection(args, (page) =>
        ctx.generations.list(ctx.principal, null, page, {
          newestFirst: args.newestFirst ?? false,
          filter: args.filter ? { ...args.filter, keyId: args.filter.keyId === null || args.filter.keyId === undefined ? null : String(args.filter.keyId) } : {},
        }),
      ),
  }),
}));

const IDEMPOTENCY_KEY_ARG =
  "One generation per Idempotency-Key and API key (as the REST Idempotency-Key header; another key of the account sending the same one makes its own call): a key another generation holds is a CONFLICT naming it in details.generation_id (its message says when that generation was for another request: another mutation or input); the answer is not replayed here; a key that charged nothing may be sent again.";

builder.mutationFields((t) => ({
  sendPrompt: t.withAuth({ user: true }).field({
    extensions: BILLED_CALL,
    type: SendPromptResultRef,
    description: 'Call a model and wait for the whole answer: the completion, usage, cost and the provider that served it.',
    errors: { directResult: true },
    args: {
      input: t.arg({ type: PromptInput, required: true }),
      idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY_ARG }),
    },
    resolve: (_root, args, ctx) => ctx.generations.send(ctx.principal, args.input, ctx.requestId, { idempotencyKey: idempotencyKeyArg(args.idempotencyKey) }),
  }),
  embed: t.withAuth({ user: true }).field({
    extensions: BILLED_CALL,
    type: EmbedResultRef,
    description: 'Embed one text or several with an embeddings model, charged per input token (the same call as REST POST /api/v1/embeddings).',
    errors: { directResult: true },
    args: { input: t.arg({ type: EmbedInputRef, required: true }) },
    resolve: (_root, args, ctx) => ctx.generations.embed(ctx.principal, args.input, ctx.requestId),
  }),
  deleteGenerationContent: t.withAuth((root, args, ctx) => ({ $all: { fullKey: true, ...ownsAccountArg(root, args, ctx) } })).field({
    type: 'Int',
    description: "Delete every generation's stored content of the account (input & output logging), and the answers kept for its Idempotency-Key retries; how many generations' content were deleted. Calls in flight meanwhile (started before it answers) keep neither. The records and charges stay. Not with a restricted key (a spending limit, or issued to an app).",
    args: { accountId: t.arg.id({ required: false, description: 'An admin may name another account; the caller’s own otherwise.' }) },
    resolve: (_root, args, ctx) => ctx.generations.deleteContent(targetAccount(args.accountId, ctx)),
  }),
  startGeneration: t.withAuth({ user: true }).field({
    extensions: BILLED_CALL,
    type: StartedGenerationRef,
    description: 'Start a streamed generation and return its id at once (after routing and the credit check); subscribe to generation(id).',
    errors: { directResult: true },
    args: {
      input: t.arg({ type: PromptInput, required: true }),
      idempotencyKey: t.arg.string({ required: false, description: IDEMPOTENCY_KEY_ARG }),
    },
    resolve: (_root, args, ctx) => ctx.generations.start(ctx.principal, args.input, ctx.requestId, idempotencyKeyArg(args.idempotencyKey)),
  }),
}));

builder.subscriptionFields((t) => ({
  generation: t.withAuth({ user: true }).field({
    type: GenerationStreamEventRef,
    description:
      'The tokens of a generation started with startGeneration, from its first token (even if you subscribe late: a TRUNCATED event first when the start is no longer kept), then its final usage and cost.',
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) => ctx.generations.live(ctx.principal, String(args.id)),
    resolve: (item) => item,
  }),
}));

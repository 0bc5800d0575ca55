import { GENERATIONS, generationQueries, type GenerationDoc } from '../../../projections/generations.js';
import { NotFoundError } from '../../errors.js';
import { parseChatBody } from '../../gateway/chatRequest.js';
import { newGenerationId, toTokenUsage, type GenerationOutcome } from '../../gateway/gateway.js';
import { builder } from '../../graphql/builder.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import { canSee } from '../../graphql/ownership.js';
import { idConnection, idPage } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount } from '../../graphql/scopes.js';
import { isAdmin } from '../auth/principal.js';
import type { TokenUsage } from './generation.events.js';
import type { FeedItem } from './generationFeed.js';

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
  values: { PENDING: { value: 'pending' }, COMPLETED: { value: 'completed' }, FAILED: { value: 'failed' }, CANCELLED: { value: 'cancelled' } } as const,
});

export const GenerationRef = builder.loadableObject('Generation', {
  description: 'One model call through the gateway, as recorded by its events. Visible to its account and to admins.',
  load: loadByIds('Generation', (ids, ctx) => generationQueries(ctx.core.readStore).byIds(ids), (doc, ctx) => canSee(ctx, doc.accountId)),
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
    apiType: t.exposeString('apiType'),
    streamed: t.exposeBoolean('streamed'),
    createdAt: t.field({ type: 'DateTime', resolve: (g) => g.createdAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (g) => g.finishedAt }),
    usage: t.field({ type: TokenUsageRef, nullable: true, resolve: (g) => g.usage }),
    usageSource: t.exposeString('usageSource', { nullable: true, description: 'provider (reported upstream) or estimated (counted, ~4 characters per token).' }),
    cost: t.field({ type: 'Money', resolve: (g) => g.cost }),
    reserved: t.field({ type: 'Money', resolve: (g) => g.reserved }),
    latencyMs: t.exposeInt('latencyMs', { nullable: true, description: 'Time to the first token.' }),
    generationTimeMs: t.exposeInt('generationTimeMs', { nullable: true }),
    finishReason: t.exposeString('finishReason', { nullable: true }),
    nativeFinishReason: t.exposeString('nativeFinishReason', { nullable: true }),
    error: t.field({ type: 'JSON', nullable: true, resolve: (g) => g.error }),
    attempts: t.field({ type: 'JSON', resolve: (g) => g.attempts }),
  }),
});

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
  }),
});

type PromptArgs = {
  model?: string | null;
  models?: string[] | null;
  messages?: { role: string; content: string }[] | null;
  prompt?: string | null;
  maxTokens?: number | null;
  temperature?: number | null;
  provider?: unknown;
  user?: string | null;
  sessionId?: string | null;
};

/** The same validation as REST: the input becomes an OpenRouter body. */
const parsePrompt = (input: PromptArgs, stream: boolean) =>
  parseChatBody(
    {
      model: input.model ?? undefined,
      models: input.models ?? undefined,
      ...(input.messages ? { messages: input.messages } : { prompt: input.prompt ?? undefined }),
      max_tokens: input.maxTokens ?? undefined,
      temperature: input.temperature ?? undefined,
      provider: input.provider ?? undefined,
      user: input.user ?? undefined,
      session_id: input.sessionId ?? undefined,
      stream,
    },
    input.messages ? 'chat' : 'completion',
  );

interface PromptResult {
  readonly outcome: GenerationOutcome;
}

const SendPromptResultRef = builder.objectRef<PromptResult>('SendPromptResult').implement({
  fields: (t) => ({
    generationId: t.id({ resolve: (r) => r.outcome.generationId }),
    completion: t.string({ resolve: (r) => r.outcome.response?.choices[0]?.message.content ?? '' }),
    model: t.string({ nullable: true, resolve: (r) => r.outcome.model }),
    provider: t.string({ nullable: true, resolve: (r) => r.outcome.providerName }),
    finishReason: t.string({ nullable: true, resolve: (r) => r.outcome.finishReason }),
    usage: t.field({ type: TokenUsageRef, resolve: (r) => toTokenUsage(r.outcome.usage) }),
    cost: t.field({ type: 'Money', description: 'Nano-dollars charged.', resolve: (r) => r.outcome.cost }),
  }),
});

const StartedGenerationRef = builder.objectRef<{ generationId: string }>('StartedGeneration').implement({
  fields: (t) => ({ generationId: t.exposeID('generationId', { description: 'Subscribe to generation(id) for its tokens and final usage.' }) }),
});

const StreamEventTypeEnum = builder.enumType('GenerationStreamEventType', { values: ['TOKEN', 'DONE'] as const });

const GenerationStreamEventRef = builder.objectRef<FeedItem>('GenerationStreamEvent').implement({
  description: 'TOKEN events carry text as it is generated; one DONE event ends the stream with the outcome, usage and cost.',
  fields: (t) => ({
    type: t.field({ type: StreamEventTypeEnum, resolve: (e) => (e.kind === 'token' ? 'TOKEN' : 'DONE') }),
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

const doneItem = (outcome: GenerationOutcome): FeedItem => {
  const usage = toTokenUsage(outcome.usage);
  return {
    kind: 'done',
    status: outcome.kind,
    model: outcome.model,
    provider: outcome.providerName,
    finishReason: outcome.finishReason,
    promptTokens: usage.prompt,
    completionTokens: usage.completion,
    reasoningTokens: usage.reasoning,
    cachedTokens: usage.cached,
    cost: outcome.cost,
    error: outcome.error ? { type: outcome.error.errorType, message: outcome.error.message } : null,
  };
};

builder.queryFields((t) => ({
  generation: t.field({
    type: GenerationRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    description: "One generation of the caller's account (an admin's: any). Another account's answers NOT_FOUND, as a missing one.",
    authScopes: { authenticated: true },
    resolve: async (_root, args, ctx) => {
      const id = String(args.id);
      const doc = await generationQueries(ctx.core.readStore).byId(id);
      if (!doc || !canSee(ctx, doc.accountId)) throw new NotFoundError('Generation', id);
      return doc;
    },
  }),
  generations: t.withAuth(ownsAccountArg).connection({
    type: GenerationRef,
    description: "The caller's generations, oldest first (an admin may name another account).",
    args: { accountId: t.arg.id({ required: false }) },
    resolve: (_root, args, ctx) =>
      idConnection(args, (page) => {
        const { filter, sort } = idPage(page);
        const accountId = targetAccount(args.accountId, ctx);
        return ctx.core.readStore.collection<GenerationDoc>(GENERATIONS).find({ ...filter, accountId }, { sort, limit: page.limit });
      }),
  }),
}));

builder.mutationFields((t) => ({
  sendPrompt: t.withAuth({ authenticated: true }).field({
    type: SendPromptResultRef,
    description: 'Call a model and wait for the whole answer: the completion, usage, cost and the provider that served it.',
    errors: { directResult: true },
    args: { input: t.arg({ type: PromptInput, required: true }) },
    resolve: async (_root, args, ctx) => {
      const parsed = parsePrompt(args.input, false);
      const outcome = await ctx.core.gateway.generate({
        generationId: newGenerationId(),
        principal: ctx.principal,
        parsed,
        rawProvider: args.input.provider ?? null,
        apiType: 'graphql',
        correlationId: ctx.requestId,
      });
      if (outcome.kind !== 'completed') throw outcome.error;
      return { outcome };
    },
  }),
  startGeneration: t.withAuth({ authenticated: true }).field({
    type: StartedGenerationRef,
    description: 'Start a streamed generation and return its id at once (after routing and the credit check); subscribe to generation(id).',
    errors: { directResult: true },
    args: { input: t.arg({ type: PromptInput, required: true }) },
    resolve: async (_root, args, ctx) => {
      const { gateway } = ctx.core;
      const generationId = newGenerationId();
      const parsed = parsePrompt(args.input, true);
      const prepared = await gateway.prepare({ generationId, principal: ctx.principal, parsed, rawProvider: args.input.provider ?? null, apiType: 'graphql', correlationId: ctx.requestId });
      gateway.feeds.open(generationId, ctx.principal.accountId);
      void gateway
        .execute(prepared, {
          onChunk: (chunk) => {
            const delta = chunk.choices[0]?.delta;
            if (delta && (delta.content || delta.reasoning)) gateway.feeds.push(generationId, { kind: 'token', content: delta.content ?? '', reasoning: delta.reasoning ?? null });
          },
        })
        .then(
          (outcome) => gateway.feeds.push(generationId, doneItem(outcome)),
          (error: unknown) => {
            ctx.core.logger.error({ err: error, generationId }, 'a started generation failed unexpectedly');
            gateway.feeds.push(generationId, { kind: 'done', status: 'failed', model: null, provider: null, finishReason: 'error', promptTokens: 0, completionTokens: 0, reasoningTokens: 0, cachedTokens: 0, cost: 0, error: { type: 'server', message: 'Internal error' } });
          },
        );
      return { generationId };
    },
  }),
}));

builder.subscriptionFields((t) => ({
  generation: t.withAuth({ authenticated: true }).field({
    type: GenerationStreamEventRef,
    description: 'The tokens of a generation started with startGeneration, from its first token (even if you subscribe late), then its final usage and cost.',
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) => {
      const id = String(args.id);
      const owner = ctx.core.gateway.feeds.owner(id);
      if (!owner || (owner !== ctx.principal.accountId && !isAdmin(ctx.principal))) throw new NotFoundError('Live generation', id);
      return ctx.core.gateway.feeds.subscribe(id)!;
    },
    resolve: (item) => item,
  }),
}));

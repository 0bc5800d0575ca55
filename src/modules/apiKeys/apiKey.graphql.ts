import { z } from 'zod';
import type { ApiKeyDoc } from '../../../projections/apiKeys.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { builder } from '../../graphql/builder.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import { canSee } from '../../graphql/ownership.js';
import { idConnection, idPage } from '../../graphql/connections.js';
import type { AuthenticatedContext, GraphQLContext } from '../../graphql/context.js';
import { ownsAccountArg, targetAccount } from '../../graphql/scopes.js';
import { newId } from '../../ids.js';
import { apiKeyDecider, type ApiKeyCommand } from './apiKey.decider.js';
import { LIMIT_RESETS, apiKeyStream, type LimitReset } from './apiKey.events.js';
import { generateApiKey } from './keyFormat.js';

export const LimitResetEnum = builder.enumType('LimitReset', {
  values: Object.fromEntries(LIMIT_RESETS.map((reset) => [reset.toUpperCase(), { value: reset }])) as Record<Uppercase<LimitReset>, { value: LimitReset }>,
});

export const ApiKeyStatusEnum = builder.enumType('ApiKeyStatus', {
  values: { ACTIVE: { value: 'active' }, DISABLED: { value: 'disabled' }, REVOKED: { value: 'revoked' } } as const,
});

const loadApiKeys = loadByIds('API key', (ids, ctx) => ctx.core.queries.apiKeys.byIds(ids), (key, ctx) => canSee(ctx, key.accountId));

export const ApiKeyRef = builder.loadableNode('ApiKey', {
  description: 'An API key. The secret is shown once, at creation; only its SHA-256 hash is stored.',
  id: { resolve: (key: ApiKeyDoc) => key._id },
  authScopes: (key) => ({ ownsAccount: key.accountId }),
  load: loadApiKeys,
  fields: (t) => ({
    name: t.exposeString('name'),
    hint: t.exposeString('hint', { description: 'The prefix and last characters of the secret, to recognise it.' }),
    status: t.field({ type: ApiKeyStatusEnum, resolve: (key) => key.status }),
    limit: t.field({ type: 'Money', nullable: true, description: 'Spending limit per window in nano-dollars; null for none.', resolve: (key) => key.limit }),
    limitReset: t.field({ type: LimitResetEnum, resolve: (key) => key.limitReset }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.expiresAt }),
    createdAt: t.field({ type: 'DateTime', resolve: (key) => key.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (key) => key.updatedAt }),
  }),
});

export interface CreatedApiKey {
  readonly key: ApiKeyDoc;
  readonly secret: string;
}

export const CreatedApiKeyRef = builder.objectRef<CreatedApiKey>('CreatedApiKey').implement({
  fields: (t) => ({
    key: t.field({ type: ApiKeyRef, resolve: (created) => created.key }),
    secret: t.exposeString('secret', { description: 'The key itself. Shown only once: store it now.' }),
  }),
});

const keyName = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const limit = z.number().int().positive('must be a positive amount of nano-dollars');

const reloadKey = async (ctx: GraphQLContext, keyId: string) => {
  const [doc] = await ctx.core.queries.apiKeys.byIds([keyId]);
  if (!doc) throw new NotFoundError('API key', keyId);
  return doc;
};

/** Create a key for an account and return it with its secret (the only time the secret exists outside the caller). */
export const issueApiKey = async (
  ctx: GraphQLContext,
  input: { accountId: string; name: string; limit: number | null; limitReset: LimitReset; expiresAt: string | null },
): Promise<CreatedApiKey> => {
  const now = ctx.core.now();
  if (input.expiresAt !== null && Date.parse(input.expiresAt) <= now.getTime()) throw new ValidationError('expiresAt must be in the future');
  const keyId = newId('key');
  const { secret, hash, hint } = generateApiKey();
  await ctx.core.execute(
    apiKeyStream(keyId),
    apiKeyDecider,
    { type: 'CreateApiKey', data: { keyId, hash, hint, ...input, at: now.toISOString() } },
    { actor: ctx.principal?.accountId ?? input.accountId, correlationId: ctx.requestId },
  );
  return { key: await reloadKey(ctx, keyId), secret };
};

const changeKey = async (ctx: AuthenticatedContext, keyId: string, command: ApiKeyCommand) => {
  await ctx.core.execute(apiKeyStream(keyId), apiKeyDecider, command, { actor: ctx.principal.accountId, correlationId: ctx.requestId });
  return reloadKey(ctx, keyId);
};

builder.queryFields((t) => ({
  apiKey: t.field({
    type: ApiKeyRef,
    args: { id: t.arg.id({ required: true }) },
    authScopes: (_root, args) => ({ ownsApiKey: String(args.id) }),
    resolve: (_root, args) => String(args.id),
  }),
  apiKeys: t.withAuth(ownsAccountArg).connection({
    type: ApiKeyRef,
    description: "The caller's keys (an admin may name another account).",
    args: { includeRevoked: t.arg.boolean({ defaultValue: false }), accountId: t.arg.id({ required: false }) },
    resolve: (_root, args, ctx) => {
      const accountId = targetAccount(args.accountId, ctx);
      return idConnection(args, (page) => ctx.core.queries.apiKeys.pageForAccount(accountId, idPage(page), args.includeRevoked ?? false));
    },
  }),
}));

const ownsApiKeyArg = (_root: unknown, args: { id?: unknown }) => ({ ownsApiKey: String(args.id) });

const byId = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) => ({ id: t.arg.id({ required: true }) });

builder.mutationFields((t) => ({
  createApiKey: t.withAuth(ownsAccountArg).field({
    type: CreatedApiKeyRef,
    description: 'Create a key. The secret is in the result and nowhere else.',
    errors: { directResult: true },
    args: {
      name: t.arg.string({ required: true, validate: keyName }),
      limit: t.arg({ type: 'Money', required: false, validate: limit }),
      limitReset: t.arg({ type: LimitResetEnum, defaultValue: 'never' }),
      expiresAt: t.arg({ type: 'DateTime', required: false }),
      accountId: t.arg.id({ required: false, description: 'Admins may create a key for another account.' }),
    },
    resolve: async (_root, args, ctx) => {
      const accountId = targetAccount(args.accountId, ctx);
      if (!ctx.core.directory.account(accountId)) throw new NotFoundError('Account', accountId);
      return issueApiKey(ctx, { accountId, name: args.name, limit: args.limit ?? null, limitReset: args.limitReset ?? 'never', expiresAt: args.expiresAt ?? null });
    },
  }),
  renameApiKey: t.withAuth(ownsApiKeyArg).field({
    type: ApiKeyRef,
    errors: { directResult: true },
    args: { ...byId(t), name: t.arg.string({ required: true, validate: keyName }) },
    resolve: (_root, args, ctx) => {
      const keyId = String(args.id);
      return changeKey(ctx, keyId, { type: 'RenameApiKey', data: { keyId, name: args.name, at: ctx.core.now().toISOString() } });
    },
  }),
  setApiKeyLimit: t.withAuth(ownsApiKeyArg).field({
    type: ApiKeyRef,
    description: 'Set or clear (limit: null) the spending limit and its reset window.',
    errors: { directResult: true },
    args: { ...byId(t), limit: t.arg({ type: 'Money', required: false, validate: limit }), limitReset: t.arg({ type: LimitResetEnum, required: true }) },
    resolve: (_root, args, ctx) => {
      const keyId = String(args.id);
      return changeKey(ctx, keyId, { type: 'SetApiKeyLimit', data: { keyId, limit: args.limit ?? null, limitReset: args.limitReset, at: ctx.core.now().toISOString() } });
    },
  }),
  ...Object.fromEntries(
    (
      [
        ['disableApiKey', 'DisableApiKey', 'Refuse the key until it is enabled again.'],
        ['enableApiKey', 'EnableApiKey', 'Accept a disabled key again.'],
        ['revokeApiKey', 'RevokeApiKey', 'Refuse the key forever.'],
      ] as const
    ).map(([field, type, description]) => [
      field,
      t.withAuth(ownsApiKeyArg).field({
        type: ApiKeyRef,
        description,
        errors: { directResult: true },
        args: byId(t),
        resolve: (_root, args, ctx) => {
          const keyId = String(args.id);
          return changeKey(ctx, keyId, { type, data: { keyId, at: ctx.core.now().toISOString() } });
        },
      }),
    ]),
  ),
}));

builder.subscriptionFields((t) => ({
  apiKeyChanged: t.withAuth({ authenticated: true }).field({
    type: ApiKeyRef,
    description: "Every change to one of the caller's keys, after the read model has stored it.",
    subscribe: (_root, _args, ctx) => ctx.core.pubsub.subscribe('apiKeyChanged', ctx.principal.accountId),
    resolve: (key) => key,
  }),
}));

import { z } from 'zod';
import type { ApiKeyDoc } from '../../../projections/apiKeys.js';
import { builder } from '../../graphql/builder.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import { canSee, readsAccount } from '../../graphql/ownership.js';
import { idConnection, idPage } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount, userOwnsAccountArg } from '../../graphql/scopes.js';
import type { CreatedApiKey } from './apiKey.api.js';
import { KEY_KINDS, LIMIT_RESETS, type KeyKind, type LimitReset } from './apiKey.events.js';
import { CODE_CHALLENGE_METHODS, type CodeChallengeMethod } from './appAuth.events.js';

export const LimitResetEnum = builder.enumType('LimitReset', {
  values: Object.fromEntries(LIMIT_RESETS.map((reset) => [reset.toUpperCase(), { value: reset }])) as Record<Uppercase<LimitReset>, { value: LimitReset }>,
});

export const ApiKeyKindEnum = builder.enumType('ApiKeyKind', {
  description: 'INFERENCE keys call models and this API; MANAGEMENT keys call only /api/v1/keys, /api/v1/activity and /api/v1/credits (OpenRouter\'s management keys).',
  values: Object.fromEntries(KEY_KINDS.map((kind) => [kind.toUpperCase(), { value: kind }])) as Record<Uppercase<KeyKind>, { value: KeyKind }>,
});

export const ApiKeyStatusEnum = builder.enumType('ApiKeyStatus', {
  values: { ACTIVE: { value: 'active' }, DISABLED: { value: 'disabled' }, REVOKED: { value: 'revoked' } } as const,
});

const loadApiKeys = loadByIds('API key', (ids, ctx) => ctx.apiKeys.byIds(ids), (key, ctx) => canSee(ctx, key.accountId));

export const ApiKeyRef = builder.loadableNode('ApiKey', {
  description: 'An API key. The secret is shown once, at creation; only its SHA-256 hash is stored.',
  id: { resolve: (key: ApiKeyDoc) => key._id },
  authScopes: (key, ctx) => readsAccount(ctx, key.accountId),
  load: loadApiKeys,
  fields: (t) => ({
    name: t.exposeString('name'),
    hint: t.exposeString('hint', { description: 'The prefix and last characters of the secret, to recognise it.' }),
    kind: t.field({ type: ApiKeyKindEnum, resolve: (key) => key.kind }),
    status: t.field({ type: ApiKeyStatusEnum, resolve: (key) => key.status }),
    limit: t.field({ type: 'Money', nullable: true, description: 'Spending limit per window in nano-dollars; null for none.', resolve: (key) => key.limit }),
    limitReset: t.field({ type: LimitResetEnum, resolve: (key) => key.limitReset }),
    includeByokInLimit: t.boolean({
      description: "Whether calls on the account's own provider keys (BYOK) count their list price against the limit as well as their fee (OpenRouter's include_byok_in_limit).",
      resolve: (key) => key.includeByokInLimit ?? false,
    }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.expiresAt }),
    createdAt: t.field({ type: 'DateTime', resolve: (key) => key.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (key) => key.updatedAt }),
  }),
});

export const CreatedApiKeyRef = builder.objectRef<CreatedApiKey>('CreatedApiKey').implement({
  fields: (t) => ({
    key: t.field({ type: ApiKeyRef, resolve: (created) => created.key }),
    secret: t.exposeString('secret', { description: 'The key itself. Shown only once: store it now.' }),
  }),
});

export const CodeChallengeMethodEnum = builder.enumType('CodeChallengeMethod', {
  description: 'How a PKCE code challenge was made from its verifier (RFC 7636): S256 = BASE64URL(SHA-256(verifier)), PLAIN = the verifier.',
  values: Object.fromEntries(CODE_CHALLENGE_METHODS.map((m) => [m.toUpperCase(), { value: m }])) as Record<Uppercase<CodeChallengeMethod>, { value: CodeChallengeMethod }>,
});

const AppAuthorizationRef = builder.objectRef<{ redirectUrl: string; expiresAt: string }>('AppAuthorization').implement({
  description: 'A one-time code for an app, inside the URL to send the browser to.',
  fields: (t) => ({
    redirectUrl: t.exposeString('redirectUrl', { description: "The app's callback URL with the code added (?code=...)." }),
    expiresAt: t.field({ type: 'DateTime', description: 'The app must exchange the code (POST /api/v1/auth/keys) before this moment.', resolve: (a) => a.expiresAt }),
  }),
});

const keyName = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const limit = z.number().int().positive('must be a positive amount of nano-dollars');

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
      return idConnection(args, (page) => ctx.apiKeys.pageForAccount(accountId, idPage(page), args.includeRevoked ?? false));
    },
  }),
}));

/** A change to a key: the caller holds the role user and the key is its account's (an admin holds both, for any key). */
const ownsApiKeyArg = (_root: unknown, args: { id?: unknown }) => ({ $all: { user: true, fullKey: true, ownsApiKey: String(args.id) } });

const byId = (t: Parameters<Parameters<typeof builder.mutationFields>[0]>[0]) => ({ id: t.arg.id({ required: true }) });

builder.mutationFields((t) => ({
  createApiKey: t.withAuth(userOwnsAccountArg).field({
    type: CreatedApiKeyRef,
    description: 'Create a key. The secret is in the result and nowhere else. A MANAGEMENT key takes no limit.',
    errors: { directResult: true },
    args: {
      name: t.arg.string({ required: true, validate: keyName }),
      kind: t.arg({ type: ApiKeyKindEnum, defaultValue: 'inference' }),
      limit: t.arg({ type: 'Money', required: false, validate: limit }),
      limitReset: t.arg({ type: LimitResetEnum, defaultValue: 'never' }),
      includeByokInLimit: t.arg.boolean({ defaultValue: false, description: "BYOK calls' list price counts against the limit too, not only their fee." }),
      expiresAt: t.arg({ type: 'DateTime', required: false }),
      accountId: t.arg.id({ required: false, description: 'Admins may create a key for another account.' }),
    },
    resolve: (_root, args, ctx) =>
      ctx.apiKeys.create(ctx, {
        accountId: targetAccount(args.accountId, ctx),
        name: args.name,
        limit: args.limit ?? null,
        limitReset: args.limitReset ?? 'never',
        expiresAt: args.expiresAt ?? null,
        kind: args.kind ?? 'inference',
        includeByokInLimit: args.includeByokInLimit ?? false,
      }),
  }),
  authorizeApp: t.withAuth({ $all: { user: true, fullKey: true } }).field({
    type: AppAuthorizationRef,
    description:
      "Sign in with Switchyard (OpenRouter's OAuth PKCE): let the app at callbackUrl have a new key on the caller's account. Returns the callback URL with a one-time code, valid 10 minutes, which the app exchanges with its code verifier at POST /api/v1/auth/keys for the key. The exchange is refused (403) once the key that consented is revoked, disabled, expired or limited, or the account loses USER. An account has at most 20 codes waiting to be exchanged: past them RATE_LIMITED, until one is exchanged or expires.",
    errors: { directResult: true },
    args: {
      callbackUrl: t.arg.string({ required: true }),
      codeChallenge: t.arg.string({ required: true }),
      codeChallengeMethod: t.arg({ type: CodeChallengeMethodEnum, defaultValue: 'S256' }),
      keyName: t.arg.string({ required: false, validate: keyName }),
      limit: t.arg({ type: 'Money', required: false, validate: limit, description: "The new key's spending limit (never resets); none when omitted." }),
    },
    resolve: (_root, args, ctx) =>
      ctx.apiKeys.authorizeApp(ctx, {
        callbackUrl: args.callbackUrl,
        codeChallenge: args.codeChallenge,
        codeChallengeMethod: args.codeChallengeMethod ?? 'S256',
        keyName: args.keyName ?? null,
        limit: args.limit ?? null,
      }),
  }),
  renameApiKey: t.withAuth(ownsApiKeyArg).field({
    type: ApiKeyRef,
    errors: { directResult: true },
    args: { ...byId(t), name: t.arg.string({ required: true, validate: keyName }) },
    resolve: (_root, args, ctx) => ctx.apiKeys.rename(ctx, String(args.id), args.name),
  }),
  setApiKeyLimit: t.withAuth(ownsApiKeyArg).field({
    type: ApiKeyRef,
    description: 'Set or clear (limit: null) the spending limit and its reset window. A management key takes none (it never calls a model), and a key cannot limit itself (VALIDATION).',
    errors: { directResult: true },
    args: { ...byId(t), limit: t.arg({ type: 'Money', required: false, validate: limit }), limitReset: t.arg({ type: LimitResetEnum, required: true }) },
    resolve: (_root, args, ctx) => ctx.apiKeys.setLimit(ctx, String(args.id), args.limit ?? null, args.limitReset),
  }),
  setApiKeyByokInLimit: t.withAuth(ownsApiKeyArg).field({
    type: ApiKeyRef,
    description: "Whether calls on the account's own provider keys (BYOK) count their list price against the key's limit as well as their fee (OpenRouter's include_byok_in_limit; false by default).",
    errors: { directResult: true },
    args: { ...byId(t), includeByokInLimit: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => ctx.apiKeys.setByokInLimit(ctx, String(args.id), args.includeByokInLimit),
  }),
  setApiKeyExpiry: t.withAuth(ownsApiKeyArg).field({
    type: ApiKeyRef,
    description: 'Set the moment the key stops working (in the future), or clear it (expiresAt: null) so it never expires.',
    errors: { directResult: true },
    args: { ...byId(t), expiresAt: t.arg({ type: 'DateTime', required: false }) },
    resolve: (_root, args, ctx) => ctx.apiKeys.setExpiry(ctx, String(args.id), args.expiresAt ?? null),
  }),
  ...Object.fromEntries(
    (
      [
        ['disableApiKey', 'disable', 'Refuse the key until it is enabled again.'],
        ['enableApiKey', 'enable', 'Accept a disabled key again.'],
        ['revokeApiKey', 'revoke', 'Refuse the key forever.'],
      ] as const
    ).map(([field, command, description]) => [
      field,
      t.withAuth(ownsApiKeyArg).field({
        type: ApiKeyRef,
        description,
        errors: { directResult: true },
        args: byId(t),
        resolve: (_root, args, ctx) => ctx.apiKeys[command](ctx, String(args.id)),
      }),
    ]),
  ),
}));

builder.subscriptionFields((t) => ({
  apiKeyChanged: t.withAuth({ authenticated: true }).field({
    type: ApiKeyRef,
    description: "Every change to one of the caller's keys, after the read model has stored it.",
    subscribe: (_root, _args, ctx) => ctx.apiKeys.changes(ctx.principal.accountId),
    resolve: (key) => key,
  }),
}));

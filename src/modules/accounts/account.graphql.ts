import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import type { GraphQLContext } from '../../graphql/context.js';
import type { AccountDoc, ByokKeyDoc } from '../../../projections/accounts.js';
import { builder } from '../../graphql/builder.js';
import { loadByIds } from '../../graphql/loadByIds.js';
import { canSee, readsAccount } from '../../graphql/ownership.js';
import { idConnection, idPage } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount, userOwnsAccountArg } from '../../graphql/scopes.js';
import { ApiKeyRef, CreatedApiKeyRef } from '../apiKeys/apiKey.graphql.js';
import { BalanceRef } from '../ledger/ledger.graphql.js';
import type { Principal } from '../auth/principal.js';
import type { OpenedAccount } from './account.api.js';
import { MAX_BYOK_KEYS, ROLES, type AccountProviderPreferences, type Role } from './account.events.js';
import { BYOK_STATUSES, type ByokStatus } from './byok.js';

/** What each role lets an account do (README, Roles); a call that needs a role the account lacks is FORBIDDEN naming it. */
const ROLE_DESCRIPTIONS: Readonly<Record<Role, string>> = {
  admin: 'Everything, for every account: accounts, roles, credits, plans, any provider, the catalog, the billing audit; an admin holds every other role too.',
  provider: 'Registers its own providers, and publishes and prices their endpoints.',
  user: "An end user: calls models (every REST model route; sendPrompt, startGeneration, embed and the generation subscription), changes the account's keys, buys credits, saves presets, and sets content logging, the default model, provider lists and BYOK keys. Without it the account still reads its own records.",
  designer: "Builds the account's workflows (create, update, enable, disable, delete, rotate the webhook secret) and their secrets.",
};

export const RoleEnum = builder.enumType('Role', {
  values: Object.fromEntries(ROLES.map((role) => [role.toUpperCase(), { value: role, description: ROLE_DESCRIPTIONS[role] }])) as Record<Uppercase<Role>, { value: Role; description: string }>,
});

/** The calling key as the server reads it on each call (`Principal`): the console shows only what it may do. */
const CurrentKeyRef = builder.objectRef<Principal>('CurrentKey').implement({
  description: 'The key of this request: whether it may run its account, and the roles it holds of it (me is the account).',
  fields: (t) => ({
    restricted: t.boolean({
      description:
        "A key with a spending limit, or one issued to an app (Sign in with Switchyard): it calls models (presets included) and reads its account, but managing keys, authorizeApp, purchaseCredits, the account's settings (content logging, default model, provider lists, BYOK keys, saving presets), deleteGenerationContent, workflows, provider and admin work answer FORBIDDEN (restricted_key); a key of the account without a limit does them.",
      resolve: (principal) => principal.restricted === true,
    }),
    roles: t.field({
      type: [RoleEnum],
      description: "The account's roles this key holds: all of them, or for a restricted key at most USER.",
      resolve: (principal) => ROLES.filter((role) => principal.roles.has(role)),
    }),
  }),
});

const NO_PROVIDER_PREFERENCES: AccountProviderPreferences = { ignore: [], allow: [] };

const ProviderPreferencesRef = builder.objectRef<AccountProviderPreferences>('AccountProviderPreferences').implement({
  description: "The account's provider lists (setProviderPreferences), applied to every request it routes, as provider slugs and endpoint variants (slug/quantization).",
  fields: (t) => ({
    ignore: t.exposeStringList('ignore', { description: "Never routed to: merged with a request's provider.ignore." }),
    allow: t.exposeStringList('allow', { description: "When not empty, the only providers routed to: a request's provider.only narrows within it." }),
  }),
});

const ByokStatusEnum = builder.enumType('ByokKeyStatus', {
  description: 'Whether a BYOK key is sent now.',
  values: Object.fromEntries(BYOK_STATUSES.map((status) => [status.toUpperCase(), { value: status }])) as Record<Uppercase<ByokStatus>, { value: ByokStatus }>,
});

const ByokKeyRef = builder.objectRef<ByokKeyDoc>('ByokKey').implement({
  description: "The account's own key for a provider (setByokKey). The key itself is never shown.",
  fields: (t) => ({
    provider: t.exposeString('provider', { description: 'The provider slug.' }),
    hint: t.exposeString('hint', { description: 'Its last 4 characters (none for a key shorter than 12).' }),
    origin: t.exposeString('origin', { description: "Where it may be sent: the origin of the provider's endpoints when it was set. Never anywhere else." }),
    fallbackToShared: t.exposeBoolean('fallbackToShared', { description: "When calls with it fail or it cannot be sent, the provider's shared key may serve (and is charged in full)." }),
    createdAt: t.field({ type: 'DateTime', resolve: (key) => key.createdAt }),
    status: t.field({
      type: ByokStatusEnum,
      description: 'ACTIVE: sent. NEEDS_CONFIRMATION: the provider now points its endpoints elsewhere; set the key again to send it there.',
      resolve: (key, _args, ctx) => ctx.accounts.byokStatus(key).status,
    }),
    problem: t.string({ nullable: true, description: 'Why it is not sent, when it is not.', resolve: (key, _args, ctx) => ctx.accounts.byokStatus(key).problem }),
  }),
});

export const loadAccounts = loadByIds('Account', (ids, ctx) => ctx.accounts.byIds(ids), (account, ctx) => canSee(ctx, account._id));

export const AccountRef = builder.loadableNode('Account', {
  description: 'A customer, provider, designer or admin. Visible to itself and to admins.',
  id: { resolve: (account: AccountDoc) => account._id },
  authScopes: (account, ctx) => readsAccount(ctx, account._id),
  load: loadAccounts,
  fields: (t) => ({
    name: t.exposeString('name'),
    email: t.exposeString('email', { nullable: true }),
    roles: t.field({ type: [RoleEnum], resolve: (account) => account.roles }),
    plan: t.exposeString('plan'),
    contentLogging: t.exposeBoolean('contentLogging', {
      description: "Input & output logging: while on, each generation's messages and answer are kept (Generation.content, GET /api/v1/generation/content) for CONTENT_RETENTION_DAYS.",
    }),
    defaultModel: t.exposeString('defaultModel', {
      nullable: true,
      description: 'The model a chat or completions request that names none is answered by (setDefaultModel); null: such a request is refused.',
    }),
    providerPreferences: t.field({
      type: ProviderPreferencesRef,
      description: 'The provider lists every request of the account is routed within (setProviderPreferences); empty lists: none.',
      resolve: (account) => account.providerPreferences ?? NO_PROVIDER_PREFERENCES,
    }),
    byokKeys: t.field({
      type: [ByokKeyRef],
      description: 'Its own provider keys (setByokKey), tried before the providers\' shared keys.',
      resolve: (account) => account.byokKeys ?? [],
    }),
    byokFeePercent: t.float({
      description: "The fee on calls served with its own provider keys, in percent of their list price (BYOK_FEE_PERCENT), charged to its credits instead of the price.",
      resolve: (_account, _args, ctx) => ctx.accounts.byokFeePercent,
    }),
    openedAt: t.field({ type: 'DateTime', resolve: (account) => account.openedAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (account) => account.updatedAt }),
    balance: t.field({
      type: BalanceRef,
      description: 'Its credits as the ledger holds them now.',
      resolve: (account, _args, ctx) => ctx.ledger.balance(account._id),
    }),
    apiKeys: t.connection({
      type: ApiKeyRef,
      args: { includeRevoked: t.arg.boolean({ defaultValue: false }) },
      resolve: (account, args, ctx) =>
        idConnection(args, (page) => ctx.apiKeys.pageForAccount(account._id, idPage(page), args.includeRevoked ?? false)),
    }),
  }),
});

/** At most 50 entries of a provider list; what each names is checked against the catalog (accounts.setProviderPreferences). */
const providerNames = z.array(z.string().max(100, 'must be at most 100 characters')).max(50, 'must hold at most 50 providers').nullish();

/** The requests (their contexts) that asked for an account without a key: each may ask once. */
const signupRequests = new WeakSet<GraphQLContext>();

const name = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');

const OpenAccountPayload = builder.objectRef<OpenedAccount>('OpenAccountPayload').implement({
  fields: (t) => ({
    account: t.field({ type: AccountRef, resolve: (payload) => payload.account }),
    initialKey: t.field({
      type: CreatedApiKeyRef,
      description: 'A first API key for the new account. Its secret is shown only here.',
      resolve: (payload) => payload.initialKey,
    }),
  }),
});

builder.queryFields((t) => ({
  me: t.withAuth({ authenticated: true }).field({
    type: AccountRef,
    description: 'The account of the calling key.',
    resolve: (_root, _args, ctx) => ctx.principal.accountId,
  }),
  currentKey: t.withAuth({ authenticated: true }).field({
    type: CurrentKeyRef,
    description: 'The calling key: whether it is restricted (a spending limit, or issued to an app) and the roles it holds.',
    resolve: (_root, _args, ctx) => ctx.principal,
  }),
  account: t.field({
    type: AccountRef,
    args: { id: t.arg.id({ required: true }) },
    authScopes: (_root, args) => ({ ownsAccount: String(args.id) }),
    resolve: (_root, args) => String(args.id),
  }),
  accounts: t.connection({
    type: AccountRef,
    description: 'Every account (admin); `search` keeps those whose name, email or id contains it, in any case.',
    authScopes: { admin: true },
    args: {
      role: t.arg({ type: RoleEnum, required: false }),
      search: t.arg.string({ required: false, validate: z.string().max(100, 'search is at most 100 characters').nullish() }),
    },
    resolve: (_root, args, ctx) =>
      idConnection(args, (page) => ctx.accounts.page(idPage(page), { ...(args.role && { role: args.role }), ...(args.search?.trim() && { search: args.search.trim() }) })),
  }),
}));

builder.mutationFields((t) => ({
  openAccount: t.field({
    type: OpenAccountPayload,
    description:
      "Open an account (admin). Without a key, only when self-signup is enabled, and then with the user role on the free plan, whatever roles and plan were asked for; this answer shows such a caller the account and first key it opened (after it, the key's secret reads them). Without a key, one openAccount per request (another in the same document is VALIDATION) and at most SELF_SIGNUP_PER_HOUR an hour from one client address (past them RATE_LIMITED, with retry_after_ms).",
    errors: { directResult: true },
    args: {
      name: t.arg.string({ required: true, validate: name }),
      email: t.arg.string({ validate: z.email('must be an email address').max(254) }),
      roles: t.arg({ type: [RoleEnum], defaultValue: ['user'] }),
      plan: t.arg.string({ defaultValue: 'free', validate: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be a plan slug') }),
      initialKeyName: t.arg.string({ defaultValue: 'default', validate: name }),
    },
    resolve: async (_root, args, ctx) => {
      // Without a key, one openAccount per request (aliases would otherwise open 30 at once): the first is answered.
      if (ctx.principal === null) {
        if (signupRequests.has(ctx)) throw new ValidationError('A request opens at most one account without a key: send another request for another account');
        signupRequests.add(ctx);
      }
      const opened = await ctx.accounts.open(ctx, {
        name: args.name,
        email: args.email ?? null,
        roles: args.roles ?? ['user'],
        plan: args.plan ?? 'free',
        initialKeyName: args.initialKeyName ?? 'default',
      });
      // Self-signup: the caller has no key but now holds the new one's secret; it reads what it opened (readsAccount).
      if (ctx.principal === null) ctx.openedAccounts.add(opened.account._id);
      return opened;
    },
  }),
  grantRole: t.field({
    type: AccountRef,
    description: 'Give an account a role (admin). ADMIN is granted and revoked one change at a time, decided on who is an admin then: a caller demoted meanwhile is FORBIDDEN.',
    authScopes: { admin: true },
    errors: { directResult: true },
    args: { accountId: t.arg.id({ required: true }), role: t.arg({ type: RoleEnum, required: true }) },
    resolve: (_root, args, ctx) => ctx.accounts.grantRole(ctx, String(args.accountId), args.role),
  }),
  revokeRole: t.field({
    type: AccountRef,
    description:
      "Take a role from an account (admin). Not one's own ADMIN (CONFLICT), nor the bootstrap admin's (acc_root: its role comes from configuration, ADMIN_API_KEY; VALIDATION). ADMIN is granted and revoked one change at a time, decided on who is an admin then: of two admins revoking each other at once, one succeeds and the other is FORBIDDEN (missing_role admin).",
    authScopes: { admin: true },
    errors: { directResult: true },
    args: { accountId: t.arg.id({ required: true }), role: t.arg({ type: RoleEnum, required: true }) },
    resolve: (_root, args, ctx) => ctx.accounts.revokeRole(ctx, String(args.accountId), args.role),
  }),
  setContentLogging: t.withAuth(userOwnsAccountArg).field({
    type: AccountRef,
    description:
      "Turn input & output logging on or off for the account (the caller's own; an admin may name another). Only generations made while it is on keep their content: once it is turned off, calls still in flight store none either; turning it off keeps what was stored (deleteGenerationContent deletes it).",
    errors: { directResult: true },
    args: { accountId: t.arg.id({ required: false }), enabled: t.arg.boolean({ required: true }) },
    resolve: (_root, args, ctx) => ctx.accounts.setContentLogging(ctx, targetAccount(args.accountId, ctx), args.enabled),
  }),
  setDefaultModel: t.withAuth(userOwnsAccountArg).field({
    type: AccountRef,
    description:
      "Set the account's default model (the caller's own; an admin may name another): POST /api/v1/chat/completions and /api/v1/completions without model or models use it, as OpenRouter does. It must be a model id the catalog knows (variants such as :free included); null clears it.",
    errors: { directResult: true },
    args: { accountId: t.arg.id({ required: false }), model: t.arg.string({ required: false, validate: z.string().max(256, 'must be at most 256 characters').nullish() }) },
    resolve: (_root, args, ctx) => ctx.accounts.setDefaultModel(ctx, targetAccount(args.accountId, ctx), args.model ?? null),
  }),
  setProviderPreferences: t.withAuth(userOwnsAccountArg).field({
    type: AccountRef,
    description:
      "Set the account's provider lists (the caller's own; an admin may name another), as OpenRouter's account-wide provider settings: every request of the account (chat, completions, Responses, Messages, embeddings, workflow model steps) never goes to a provider in ignore (merged with the request's provider.ignore), and, when allow is not empty, only to providers in allow (a request's provider.only narrows within it; nothing left is a 404 that names these settings). Each list holds at most 50 providers the catalog knows, by slug or name (stored as slugs), or endpoint variants of them as the endpoints' tag shows them (provider/quantization, e.g. deepinfra/fp8: only that provider's endpoints of that quantization); a list left out stays as it is, null or [] clears it.",
    errors: { directResult: true },
    args: {
      accountId: t.arg.id({ required: false }),
      ignore: t.arg.stringList({ required: false, validate: providerNames }),
      allow: t.arg.stringList({ required: false, validate: providerNames }),
    },
    resolve: (_root, args, ctx) => ctx.accounts.setProviderPreferences(ctx, targetAccount(args.accountId, ctx), { ignore: args.ignore, allow: args.allow }),
  }),
  setByokKey: t.withAuth(userOwnsAccountArg).field({
    type: AccountRef,
    description: `Store the account's own key for a provider (BYOK; the caller's own account, an admin may name another), replacing the one it had: at most ${MAX_BYOK_KEYS} providers. The provider must be one an admin allows (Provider.byok). The key is stored encrypted and bound to the origin the provider's endpoints point at now; it is never shown again, nor sent elsewhere. Its endpoints are then tried first with it, billed a fee of BYOK_FEE_PERCENT of the list price; fallbackToShared false keeps the provider's shared key from serving the account.`,
    errors: { directResult: true },
    args: {
      accountId: t.arg.id({ required: false }),
      provider: t.arg.string({ required: true, validate: z.string().max(64, 'must be at most 64 characters') }),
      apiKey: t.arg.string({ required: true }),
      fallbackToShared: t.arg.boolean({ required: false, defaultValue: true }),
    },
    resolve: (_root, args, ctx) =>
      ctx.accounts.setByokKey(ctx, targetAccount(args.accountId, ctx), { provider: args.provider, apiKey: args.apiKey, fallbackToShared: args.fallbackToShared ?? true }),
  }),
  removeByokKey: t.withAuth(userOwnsAccountArg).field({
    type: AccountRef,
    description: "Remove the account's own key for a provider (the caller's own account; an admin may name another).",
    errors: { directResult: true },
    args: { accountId: t.arg.id({ required: false }), provider: t.arg.string({ required: true, validate: z.string().max(64, 'must be at most 64 characters') }) },
    resolve: (_root, args, ctx) => ctx.accounts.removeByokKey(ctx, targetAccount(args.accountId, ctx), args.provider),
  }),
  changePlan: t.field({
    type: AccountRef,
    description: 'Move an account to another plan (admin). Plans are configuration (PLANS).',
    errors: { directResult: true },
    authScopes: { admin: true },
    args: { accountId: t.arg.id({ required: true }), plan: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.accounts.changePlan(ctx, String(args.accountId), args.plan),
  }),
}));

builder.objectField(ApiKeyRef, 'account', (t) => t.field({ type: AccountRef, resolve: (key) => key.accountId }));

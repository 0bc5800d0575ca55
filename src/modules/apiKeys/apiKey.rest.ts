import { z } from 'zod';
import type { WriteBudget } from '../auth/writeBudget.js';
import { DATE_TIME_RULE, parseDateTime } from '../../dateTime.js';
import type { ApiKeyDoc } from '../../../projections/apiKeys.js';
import { isCalendarDay, utcDay } from '../../calendarDay.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { bearerOf, parseJsonBody, readRequestBody, sendJson, type RestRequest, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import { requireFullKey, requireRole, type Caller, type Principal } from '../auth/principal.js';
import { endpointId } from '../catalog/provider.events.js';
import type { KeyWindowUsage } from '../ledger/ledger.js';
import { limitRemaining, type LedgerApi } from '../ledger/ledger.api.js';
import { keyUsageJson, keyUsageNanosJson } from '../ledger/ledger.rest.js';
import { toUsdNumber, usdToNano } from '../ledger/money.js';
import type { ApiKeysApi } from './apiKey.api.js';

/**
 * OpenRouter's key management (`/api/v1/keys`) and activity (`/api/v1/activity`), for management keys only.
 *
 * - `hash` is the key's id (`key_…`, the GraphQL `ApiKey.id`): a stable public name of the key. OpenRouter's is a
 *   hex digest; ours is not the SHA-256 the store authenticates with, so nothing about the secret is given away.
 * - Dollar fields are JSON numbers as OpenRouter sends them, each with an exact `*_nanos` twin (as `/api/v1/key`);
 *   limits sent in dollars are converted on their decimal digits, never through floating point arithmetic.
 * - `include_byok_in_limit`: calls on the account's own provider keys (BYOK) count their list price against the
 *   key's limit as well as their fee; `byok_usage*` is that list price, from the ledger's events.
 * - Only inference keys are listed and managed: a management key cannot see, change or delete another one.
 */

/** OpenRouter lists keys 100 at a time. */
const KEYS_PAGE = 100;
/** The activity window: the last 30 completed UTC days. */
const ACTIVITY_DAYS = 30;
const DAY_MS = 86_400_000;

const usdLimit = z
  .number({ error: 'limit must be a number of USD or null' })
  .transform((usd, ctx) => {
    try {
      const nanos = usdToNano(String(usd), 'limit');
      if (nanos > 0) return nanos;
      ctx.addIssue({ code: 'custom', message: 'limit must be a positive number of USD (or null for no limit)' });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `${(error as Error).message}; send a positive number of USD (or null for no limit)` });
    }
    return z.NEVER;
  })
  .nullable();
const limitReset = z.enum(['daily', 'weekly', 'monthly'], { error: 'limit_reset must be "daily", "weekly", "monthly" or null' }).nullable();
const name = z.string({ error: 'name must be a string' }).trim().min(1, 'name must not be empty').max(100, 'name must be at most 100 characters');
// The one date-time rule (src/dateTime.ts), as the GraphQL DateTime scalar and a workflow's `until` take it.
const expiresAt = z
  .string({ error: 'expires_at must be an ISO 8601 date-time or null' })
  .refine((text) => parseDateTime(text) !== null, `expires_at must be an ISO 8601 date-time or null: ${DATE_TIME_RULE}`)
  .nullable();
const byok = z.boolean({ error: 'include_byok_in_limit must be a boolean' });

const CreateBody = z.strictObject(
  { name, limit: usdLimit.optional(), limit_reset: limitReset.optional(), include_byok_in_limit: byok.optional(), expires_at: expiresAt.optional() },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `Unknown field(s): ${issue.keys.join(', ')}` : 'The request body must be a JSON object') },
);
const UpdateBody = z.strictObject(
  {
    name: name.optional(),
    disabled: z.boolean({ error: 'disabled must be a boolean' }).optional(),
    limit: usdLimit.optional(),
    limit_reset: limitReset.optional(),
    include_byok_in_limit: byok.optional(),
    expires_at: expiresAt.optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `Unknown field(s): ${issue.keys.join(', ')}` : 'The request body must be a JSON object') },
);

const ExchangeBody = z.strictObject(
  {
    code: z.string({ error: 'code must be a string' }),
    code_verifier: z.string({ error: 'code_verifier must be a string' }),
    code_challenge_method: z.enum(['S256', 'plain'], { error: 'code_challenge_method must be "S256" or "plain"' }).nullish(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `Unknown field(s): ${issue.keys.join(', ')}` : 'The request body must be a JSON object {code, code_verifier}') },
);
const parseBody = <T>(schema: z.ZodType<T>, raw: unknown): T => {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue?.path.map(String).join('.');
  throw new ValidationError(issue?.message ?? 'The request body is invalid', param ? { param } : {});
};

/** Refuse query parameters this endpoint does not know, so a typo is not silently a different question. */
const onlyParams = (url: URL, known: readonly string[]) => {
  for (const param of url.searchParams.keys()) {
    if (!known.includes(param)) throw new ValidationError(`Unknown query parameter ${JSON.stringify(param)}; known: ${known.join(', ')}`, { param });
  }
};

/** OpenRouter's key object, from the key's read-model document and its usage as the ledger holds it now. */
const keyObject = (doc: ApiKeyDoc, usage: KeyWindowUsage, byokUsage: KeyWindowUsage) => {
  const remaining = limitRemaining(doc, usage);
  return {
    hash: doc._id,
    name: doc.name,
    label: doc.hint,
    disabled: doc.status !== 'active',
    limit: doc.limit === null ? null : toUsdNumber(doc.limit),
    limit_remaining: remaining === null ? null : toUsdNumber(remaining),
    limit_reset: doc.limitReset === 'never' ? null : doc.limitReset,
    include_byok_in_limit: doc.includeByokInLimit ?? false,
    ...keyUsageJson(usage, byokUsage),
    created_at: doc.createdAt,
    updated_at: doc.updatedAt,
    expires_at: doc.expiresAt,
    limit_nanos: doc.limit,
    limit_remaining_nanos: remaining,
    ...keyUsageNanosJson(usage, byokUsage),
  };
};

export const apiKeyRoutes = (deps: {
  apiKeys: ApiKeysApi;
  ledger: Pick<LedgerApi, 'keyUsages' | 'byokKeyUsages'>;
  directory: Pick<AuthDirectory, 'authenticateManagement'>;
  /** Provider slug → display name, for activity rows. */
  providerNames: () => Promise<ReadonlyMap<string, string>>;
  maxBodyBytes: number;
  now: () => Date;
  /** Each change (create, update, delete) takes one of the account's writes (WRITES_PER_MINUTE). */
  writes: WriteBudget;
}): Route[] => {
  const { apiKeys, ledger } = deps;
  const caller = (request: RestRequest): Caller & { principal: Principal } => ({
    principal: deps.directory.authenticateManagement(bearerOf(request.req)),
    requestId: request.requestId,
  });
  /**
   * The caller of a change to its keys: managing keys needs the role user (reading them does not), with a key that is
   * not restricted (a management key limited before limits on them were refused is one), and takes one of its writes.
   */
  const manager = (request: RestRequest): Caller & { principal: Principal } => {
    const who = caller(request);
    requireFullKey(requireRole(who.principal, 'user'));
    deps.writes.take(who.principal);
    return who;
  };
  /** Named as this API names it (the application API's own check says `expiresAt`, GraphQL's argument). */
  const requireFutureExpiry = (expiresAt: string | null | undefined) => {
    if (expiresAt && Date.parse(expiresAt) <= deps.now().getTime()) throw new ValidationError('expires_at must be in the future', { param: 'expires_at' });
  };
  const body = async (request: RestRequest): Promise<unknown> => parseJsonBody(await readRequestBody(request.req, deps.maxBodyBytes));

  /** The keys' usage and BYOK usage, each in the keys' order. */
  const usagesOf = (keys: readonly { readonly accountId: string; readonly keyId: string }[]) => Promise.all([ledger.keyUsages(keys), ledger.byokKeyUsages(keys)]);

  /** The key as it stands after the caller's own writes, with its usage. */
  const answerKey = async (principal: Principal, keyId: string) => {
    const [doc] = await apiKeys.byIds([keyId]);
    if (!doc) throw new Error(`the apiKeys read model has no document for ${keyId} after its write`);
    const [[usage], [byokUsage]] = await usagesOf([{ accountId: principal.accountId, keyId }]);
    return keyObject(doc, usage!, byokUsage!);
  };

  return [
    {
      // OpenRouter's OAuth PKCE exchange: no bearer key, the one-time code and its verifier are the credential.
      method: 'POST',
      path: '/api/v1/auth/keys',
      handler: async (request) => {
        const input = parseBody(ExchangeBody, await body(request));
        const { secret, accountId } = await apiKeys.exchangeAppCode(request.requestId, { code: input.code, verifier: input.code_verifier, method: input.code_challenge_method ?? null });
        sendJson(request.res, 200, { key: secret, user_id: accountId });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/keys',
      handler: async (request) => {
        const { principal } = caller(request);
        onlyParams(request.url, ['offset', 'include_disabled']);
        const offsetText = request.url.searchParams.get('offset') ?? '0';
        if (!/^\d{1,9}$/.test(offsetText)) throw new ValidationError('offset must be a non-negative integer', { param: 'offset' });
        const disabledText = request.url.searchParams.get('include_disabled') ?? 'false';
        if (disabledText !== 'true' && disabledText !== 'false') throw new ValidationError('include_disabled must be true or false', { param: 'include_disabled' });
        const docs = await apiKeys.inferenceKeysPage(principal.accountId, { offset: Number(offsetText), limit: KEYS_PAGE, includeDisabled: disabledText === 'true' });
        const [usages, byokUsages] = await usagesOf(docs.map((doc) => ({ accountId: doc.accountId, keyId: doc._id })));
        sendJson(request.res, 200, { data: docs.map((doc, i) => keyObject(doc, usages[i]!, byokUsages[i]!)) });
      },
    },
    {
      method: 'POST',
      path: '/api/v1/keys',
      handler: async (request) => {
        const who = manager(request);
        const input = parseBody(CreateBody, await body(request));
        requireFutureExpiry(input.expires_at);
        const created = await apiKeys.create(who, {
          accountId: who.principal.accountId,
          name: input.name,
          limit: input.limit ?? null,
          // OpenRouter: a limit without a reset window never resets.
          limitReset: input.limit_reset ?? 'never',
          expiresAt: input.expires_at ?? null,
          kind: 'inference',
          includeByokInLimit: input.include_byok_in_limit ?? false,
        });
        sendJson(request.res, 201, { data: await answerKey(who.principal, created.key._id), key: created.secret });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/keys/:hash',
      handler: async (request) => {
        const { principal } = caller(request);
        onlyParams(request.url, []);
        const key = apiKeys.managedKey(principal, request.params.hash!);
        sendJson(request.res, 200, { data: await answerKey(principal, key.keyId) });
      },
    },
    {
      method: 'PATCH',
      path: '/api/v1/keys/:hash',
      handler: async (request) => {
        const who = manager(request);
        const input = parseBody(UpdateBody, await body(request));
        const key = apiKeys.managedKey(who.principal, request.params.hash!);
        requireFutureExpiry(input.expires_at);
        // Each change is its own event on the key's stream; all were validated above, so none is refused halfway.
        if (input.name !== undefined) await apiKeys.rename(who, key.keyId, input.name);
        if (input.limit !== undefined || input.limit_reset !== undefined) {
          const limit = input.limit === undefined ? key.limit : input.limit;
          const reset = input.limit_reset === undefined ? key.limitReset : (input.limit_reset ?? 'never');
          await apiKeys.setLimit(who, key.keyId, limit, reset);
        }
        if (input.expires_at !== undefined) await apiKeys.setExpiry(who, key.keyId, input.expires_at);
        if (input.include_byok_in_limit !== undefined) await apiKeys.setByokInLimit(who, key.keyId, input.include_byok_in_limit);
        if (input.disabled !== undefined) await (input.disabled ? apiKeys.disable(who, key.keyId) : apiKeys.enable(who, key.keyId));
        sendJson(request.res, 200, { data: await answerKey(who.principal, key.keyId) });
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/keys/:hash',
      handler: async (request) => {
        const who = manager(request);
        const key = apiKeys.managedKey(who.principal, request.params.hash!);
        // Deleting is revoking: the key is refused from now on and its history (usage, activity) stays.
        await apiKeys.revoke(who, key.keyId);
        sendJson(request.res, 200, { deleted: true });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/activity',
      handler: async (request) => {
        const { principal } = caller(request);
        onlyParams(request.url, ['date', 'api_key_hash', 'workspace_id', 'group_by']);
        // Switchyard has no workspaces: an account is its one workspace, named by the account id (or `default`, as
        // OpenRouter names an account's default workspace). Another id names nothing here; group_by=workspace splits
        // nothing, but every item then carries its workspace_id as OpenRouter's do.
        const workspace = request.url.searchParams.get('workspace_id');
        if (workspace !== null && workspace !== 'default' && workspace !== principal.accountId) throw new NotFoundError('Workspace', workspace);
        const groupBy = request.url.searchParams.get('group_by');
        if (groupBy !== null && groupBy !== 'workspace') throw new ValidationError('group_by must be "workspace" (or left out)', { param: 'group_by' });
        const today = Date.parse(`${utcDay(deps.now().getTime())}T00:00:00Z`);
        const from = utcDay(today - ACTIVITY_DAYS * DAY_MS);
        const to = utcDay(today - DAY_MS);
        const date = request.url.searchParams.get('date');
        if (date !== null) {
          if (!isCalendarDay(date) || date < from || date > to) {
            throw new ValidationError(`date must be one of the last ${ACTIVITY_DAYS} completed UTC days, YYYY-MM-DD from ${from} to ${to}`, { param: 'date' });
          }
        }
        const hash = request.url.searchParams.get('api_key_hash');
        const keyId = hash === null ? null : apiKeys.keyOfAccount(principal, hash).keyId;
        const [rows, names] = await Promise.all([apiKeys.activity(principal.accountId, { from: date ?? from, to: date ?? to, keyId }), deps.providerNames()]);
        sendJson(request.res, 200, {
          data: rows.map((row) => ({
            date: row.day,
            model: row.model,
            model_permaslug: row.model,
            endpoint_id: endpointId(row.model, row.provider),
            provider_name: names.get(row.provider) ?? row.provider,
            usage: toUsdNumber(row.cost),
            byok_usage_inference: toUsdNumber(row.byokUsage),
            requests: row.requests,
            prompt_tokens: row.promptTokens,
            completion_tokens: row.completionTokens,
            reasoning_tokens: row.reasoningTokens,
            usage_nanos: row.cost,
            ...(groupBy !== null && { workspace_id: principal.accountId }),
            byok_usage_inference_nanos: row.byokUsage,
          })),
        });
      },
    },
  ];
};

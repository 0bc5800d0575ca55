import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin, { resolveNodes } from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import { z } from 'zod';
import { GraphQLError, valueFromASTUntyped, type GraphQLResolveInfo, type ValueNode } from 'graphql';
import { DATE_TIME_RULE, parseDateTime } from '../dateTime.js';
import { DomainError, ERROR_CODES, NotFoundError, ValidationError } from '../errors.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../objects.js';
import type { Role } from '../modules/accounts/account.events.js';
import { hasRole } from '../modules/auth/principal.js';
import type { AuthenticatedContext, GraphQLContext } from './context.js';
import { refusal } from './ownership.js';

export interface AuthScopes {
  authenticated: boolean;
  admin: boolean;
  provider: boolean;
  designer: boolean;
  /** The end user's capabilities: call models, manage the account's keys, buy credits, presets, content logging. */
  user: boolean;
  /** The caller's key is not restricted (`Principal.restricted`): it may run the account (keys, purchases, settings). */
  fullKey: boolean;
  /** The caller is this account, or an admin. */
  ownsAccount: string;
  /** The key belongs to the caller's account, or the caller is an admin. */
  ownsApiKey: string;
  /** The workflow belongs to the caller's account, or the caller is an admin. */
  ownsWorkflow: string;
  /** The run is of a workflow of the caller's account, or the caller is an admin. */
  ownsWorkflowRun: string;
}

/** Node ids carry their type in the prefix (`acc_…`, `key_…`), so they are already global: no base64 wrapping. */
/** A Map, not an object: an id such as `constructor` must not find Object.prototype's members. */
const TYPE_BY_PREFIX: ReadonlyMap<string, string> = new Map([
  ['acc', 'Account'],
  ['key', 'ApiKey'],
]);

/** The most ids one `nodes(ids:)` takes (as GitHub's GraphQL API). */
export const MAX_NODE_IDS = 100;

/** The typename decodeGlobalID gives an id of no Node type (`gen-…`, `run_…`, `constructor`): answered as a missing node. */
const NO_NODE_TYPE = '';

/**
 * The objects behind decoded ids, in order: an id of no Node type is a NotFoundError in its place, as a missing or
 * another account's object is (loadByIds), so `node` answers it NOT_FOUND and `nodes` nulls that item only.
 */
async function nodesOrNotFound(ctx: GraphQLContext, info: GraphQLResolveInfo, ids: readonly { readonly typename: string; readonly id: string }[]): Promise<unknown[]> {
  const loaded = await resolveNodes(builder, ctx, info, ids.filter((id) => id.typename !== NO_NODE_TYPE));
  let next = 0;
  return ids.map((id) => (id.typename === NO_NODE_TYPE ? new NotFoundError('Node', id.id) : loaded[next++]));
}

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: AuthScopes;
  /** Every scope holds only for a caller, so a field behind any of them (`t.withAuth`) sees a non-null principal. */
  AuthContexts: { [Scope in keyof AuthScopes]: AuthenticatedContext };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: string; Output: string };
    /** Integer nano-dollars (1 USD = 1,000,000,000). */
    Money: { Input: number; Output: number };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  defaultFieldNullability: false,
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ValidationPlugin, RelayPlugin, DataloaderPlugin],
  scopeAuth: {
    // Check a subscription's scopes when it starts (the subscribe resolver runs only for an allowed caller), not only
    // when its events resolve.
    authorizeOnSubscribe: true,
    authScopes: (ctx) => {
      const principal = ctx.principal;
      const has = (role: Role) => hasRole(principal, role);
      const admin = has('admin');
      return {
        authenticated: principal !== null,
        admin,
        provider: has('provider'),
        designer: has('designer'),
        user: has('user'),
        fullKey: principal !== null && principal.restricted !== true,
        ownsAccount: (accountId) => principal !== null && (admin || principal.accountId === accountId),
        ownsApiKey: (keyId) => principal !== null && (admin || ctx.apiKeys.ownerOf(keyId) === principal.accountId),
        ownsWorkflow: async (workflowId) => principal !== null && (admin || (await ctx.workflows.ownerOf(workflowId)) === principal.accountId),
        ownsWorkflowRun: (runId) => ctx.runs.canSee(ctx, runId),
      };
    },
    unauthorizedError: refusal,
  },
  validation: {
    validationError: (failure) =>
      new ValidationError(failure.issues.map((issue) => `${issue.path?.map((p) => (typeof p === 'object' ? p.key : p)).join('.') ?? ''}: ${issue.message}`).join('; '), {
        issues: failure.issues.map((issue) => ({ path: issue.path?.map((p) => (typeof p === 'object' ? p.key : p)), message: issue.message })),
      }),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    encodeGlobalID: (_typename, id) => String(id),
    decodeGlobalID: (globalID) => ({ typename: TYPE_BY_PREFIX.get(globalID.split('_', 1)[0] ?? '') ?? NO_NODE_TYPE, id: globalID }),
    nodeQueryOptions: { resolve: async (_root, { id }, ctx, info) => (await nodesOrNotFound(ctx, info, [id]))[0] },
    nodesQueryOptions: {
      // Cost analysis cannot see a list passed in variables: 30,000 ids held the event loop for seconds.
      args: { ids: { description: `At most ${MAX_NODE_IDS} ids.`, validate: z.array(z.unknown()).max(MAX_NODE_IDS, `must hold at most ${MAX_NODE_IDS} ids`) } },
      resolve: (_root, { ids }, ctx, info) => nodesOrNotFound(ctx, info, ids),
    },
  },
  errors: { defaultTypes: [DomainError] },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

/**
 * A scalar's parseLiteral over its parseValue that reports a bad literal on its node: the error then has a location
 * and reads as a bad value (BAD_USER_INPUT, see clientErrors.ts), not as a bad query.
 */
const fromLiteral =
  <T>(parseValue: (value: unknown) => T) =>
  (node: ValueNode, variables?: { readonly [name: string]: unknown } | null): T => {
    try {
      return parseValue(valueFromASTUntyped(node, variables));
    } catch (error) {
      throw new GraphQLError(error instanceof Error ? error.message : String(error), { nodes: node });
    }
  };

/** The one date-time rule (src/dateTime.ts), answered in UTC. */
const parseDateTimeValue = (value: unknown): string => {
  const ms = parseDateTime(value);
  if (ms === null) throw new GraphQLError(`DateTime must be an ISO-8601 string: ${DATE_TIME_RULE}`);
  return new Date(ms).toISOString();
};

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp, answered in UTC, e.g. 2026-11-25T10:00:00.000Z; taken as RFC 3339 gives it: a date-time with a zone (Z or ±hh:mm).',
  serialize: (value) => value,
  parseValue: parseDateTimeValue,
  parseLiteral: fromLiteral(parseDateTimeValue),
});

const parseMoney = (value: unknown): number => {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new GraphQLError('Money must be an integer number of nano-dollars (1 USD = 1,000,000,000) within ±9,007,199,254,740,991');
  }
  return n;
};

builder.scalarType('Money', {
  description: 'An exact amount of money in integer nano-dollars (1 USD = 1,000,000,000). Never a float.',
  serialize: (value) => value,
  parseValue: parseMoney,
  parseLiteral: fromLiteral(parseMoney),
});

const parseJson = (value: unknown): unknown => {
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) throw new GraphQLError(`JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
  return value;
};

builder.scalarType('JSON', { description: `Any JSON value, nested at most ${MAX_JSON_DEPTH} levels deep.`, serialize: (value) => value, parseValue: parseJson, parseLiteral: fromLiteral(parseJson) });

export const ErrorCodeEnum = builder.enumType('ErrorCode', { values: ERROR_CODES });

/** The typed failure of a mutation: returned as data (`... on DomainError { code message }`), never masked. */
builder.objectType(DomainError, {
  name: 'DomainError',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, resolve: (error) => error.code }),
    message: t.exposeString('message'),
    status: t.exposeInt('status'),
    details: t.field({ type: 'JSON', resolve: (error) => error.metadata }),
  }),
});

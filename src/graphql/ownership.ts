import { AuthScopeFailureType, type AuthFailure, type ForbiddenResult } from '@pothos/plugin-scope-auth';
import type { GraphQLResolveInfo } from 'graphql';
import { ForbiddenError, NotFoundError, UnauthenticatedError } from '../errors.js';
import { ROLES, type Role } from '../modules/accounts/account.events.js';
import { refusedRole, restrictedKey } from '../modules/auth/principal.js';
import type { GraphQLContext } from './context.js';

/**
 * Another account's object answers exactly as a missing one (`NotFoundError(label, id)`, the loaders' answer for an
 * unknown id), so a refusal never tells an attacker that an id exists. The labels are the loaders' (loadByIds).
 */
export const OWNED_TYPES: Readonly<Record<string, string>> = { Account: 'Account', ApiKey: 'API key', Generation: 'Generation' };

/** The ownership scopes (builder.ts) and the object each one's parameter names. */
const OWNERSHIP_SCOPES: Readonly<Record<string, string>> = { ownsAccount: 'Account', ownsApiKey: 'API key', ownsWorkflow: 'Workflow', ownsWorkflowRun: 'WorkflowRun' };

/** May the caller see objects of this account? Its own, or any for an admin (or one this request opened: readsAccount). */
export const canSee = (ctx: GraphQLContext, accountId: string): boolean =>
  (ctx.principal !== null && (ctx.principal.roles.has('admin') || ctx.principal.accountId === accountId)) || ctx.openedAccounts.has(accountId);

/**
 * The type scopes of an account and its keys (Account, ApiKey): their owner and admins read them (`ownsAccount`),
 * and so does the request that opened the account without a key (self-signup), which holds its first key's secret: the
 * openAccount payload's account and key are shown to it, as a refusal there would null the whole answer and lose that
 * secret for good. The principal stays null: scopes that need a caller (roles, fullKey, withAuth fields) still refuse.
 */
export const readsAccount = (ctx: GraphQLContext, accountId: string): true | { ownsAccount: string } => (ctx.openedAccounts.has(accountId) ? true : { ownsAccount: accountId });

/** The first scope failure (`kind: AuthScope`) inside `failure` that `pick` maps to something, or null. */
const findScopeFailure = <T>(failure: AuthFailure, pick: (scope: string, parameter: unknown) => T | null): T | null => {
  switch (failure.kind) {
    case AuthScopeFailureType.AuthScope:
      return pick(failure.scope, failure.parameter);
    case AuthScopeFailureType.AnyAuthScopes:
    case AuthScopeFailureType.AllAuthScopes:
      for (const inner of failure.failures) {
        const found = findScopeFailure(inner, pick);
        if (found !== null) return found;
      }
      return null;
    case AuthScopeFailureType.AuthScopeFunction:
    case AuthScopeFailureType.GrantedScope:
    case AuthScopeFailureType.Unknown:
      return null;
  }
};

const ownershipFailure = (failure: AuthFailure): { scope: string; parameter: unknown } | null =>
  findScopeFailure(failure, (scope, parameter) => (scope in OWNERSHIP_SCOPES ? { scope, parameter } : null));

const ROLE_SCOPES: ReadonlySet<string> = new Set(ROLES);

/** The role scope (`user`, `provider`, ...) whose failure refused the field, if one did. */
const roleFailure = (failure: AuthFailure): Role | null => findScopeFailure(failure, (scope) => (ROLE_SCOPES.has(scope) ? (scope as Role) : null));

/**
 * scope-auth's unauthorizedError: UNAUTHENTICATED without a key, NOT_FOUND for another's object, else FORBIDDEN (naming
 * the role the account lacks, when that is why).
 */
export const refusal = (parent: unknown, ctx: GraphQLContext, info: GraphQLResolveInfo, result: ForbiddenResult): Error => {
  if (!ctx.principal) return new UnauthenticatedError();
  const owned = ownershipFailure(result.failure);
  if (!owned) {
    if (findScopeFailure(result.failure, (scope) => (scope === 'fullKey' ? true : null))) return restrictedKey();
    const role = roleFailure(result.failure);
    return role ? refusedRole(ctx.principal, role) : new ForbiddenError(`Not authorized: ${result.message}`);
  }
  // A type's own scope (checked on its fields): the object is the parent, and the parameter is its owner's id.
  const label = OWNED_TYPES[info.parentType.name];
  if (label && typeof parent === 'object' && parent !== null && '_id' in parent && typeof parent._id === 'string') {
    return new NotFoundError(label, parent._id);
  }
  return new NotFoundError(OWNERSHIP_SCOPES[owned.scope]!, String(owned.parameter));
};

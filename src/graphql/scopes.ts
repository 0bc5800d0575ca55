import type { GraphQLContext } from './context.js';

/** The account a field acts on: its `accountId` argument (an admin naming another account), else the caller's own. */
export const targetAccount = (accountId: unknown, ctx: GraphQLContext): string =>
  (typeof accountId === 'string' || typeof accountId === 'number') && accountId !== '' ? String(accountId) : (ctx.principal?.accountId ?? '');

/** The scope of a field with an optional `accountId` argument: the caller owns that account (or is an admin). */
export const ownsAccountArg = (_root: unknown, args: { accountId?: unknown }, ctx: GraphQLContext) => ({ ownsAccount: targetAccount(args.accountId, ctx) });

/**
 * The scope of an end user's change to an account (`accountId` optional): the caller holds the role user with a key
 * that is not restricted (no spending limit, not issued to an app), and the account is its own (an admin holds all
 * three, for any account).
 */
export const userOwnsAccountArg = (root: unknown, args: { accountId?: unknown }, ctx: GraphQLContext) => ({ $all: { user: true, fullKey: true, ...ownsAccountArg(root, args, ctx) } });

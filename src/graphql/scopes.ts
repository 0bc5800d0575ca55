import type { GraphQLContext } from './context.js';

/** The account a field acts on: its `accountId` argument (an admin naming another account), else the caller's own. */
export const targetAccount = (accountId: unknown, ctx: GraphQLContext): string =>
  (typeof accountId === 'string' || typeof accountId === 'number') && accountId !== '' ? String(accountId) : (ctx.principal?.accountId ?? '');

/** The scope of a field with an optional `accountId` argument: the caller owns that account (or is an admin). */
export const ownsAccountArg = (_root: unknown, args: { accountId?: unknown }, ctx: GraphQLContext) => ({ ownsAccount: targetAccount(args.accountId, ctx) });

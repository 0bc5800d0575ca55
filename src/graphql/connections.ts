import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ValidationError } from '../errors.js';

export const MAX_PAGE_SIZE = 100;

/**
 * A relay connection over documents paged by `_id` (our ids sort by creation time). The page function gets the
 * cursor bound and the direction; it returns `limit` documents in that direction.
 */
export const idConnection = <T extends { _id: string }>(
  args: { first?: number | null; last?: number | null; before?: string | null; after?: string | null },
  page: (params: ResolveCursorConnectionArgs) => Promise<T[]>,
) => {
  checkPageArgs(args);
  return resolveCursorConnection({ args, toCursor: (doc: T) => doc._id, defaultSize: 20, maxSize: MAX_PAGE_SIZE }, page);
};

/** A cursor is the id of an edge's node (`acc_0mf3k2x1a9c4e5f6a7b8`, `gen-…`, `acc_root`). */
const CURSOR = /^[a-z]{1,8}[_-][0-9a-z]{1,64}$/;

/** Refuse what relay would reject with an unexpected error (a negative size) or silently ignore (a cursor that is no id). */
const checkPageArgs = (args: { first?: number | null; last?: number | null; before?: string | null; after?: string | null }) => {
  for (const name of ['first', 'last'] as const) {
    const size = args[name];
    if (size !== null && size !== undefined && size < 0) {
      throw new ValidationError(`${name} must be 0 or more (pages hold at most ${MAX_PAGE_SIZE} edges)`, { argument: name, value: size });
    }
  }
  for (const name of ['after', 'before'] as const) {
    const cursor = args[name];
    if (cursor !== null && cursor !== undefined && !CURSOR.test(cursor)) {
      throw new ValidationError(`${name} is not a cursor of this list; pass an edge's cursor or pageInfo's startCursor/endCursor`, { argument: name });
    }
  }
};

/** The MongoDB filter, sort and limit for a page in the direction relay asks for. */
export const idPage = ({ before, after, inverted, limit }: ResolveCursorConnectionArgs) => ({
  limit,
  filter: {
    ...(after || before ? { _id: { ...(after ? { $gt: after } : {}), ...(before ? { $lt: before } : {}) } } : {}),
  },
  sort: { _id: inverted ? -1 : 1 } as const,
});

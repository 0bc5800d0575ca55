import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';

export const MAX_PAGE_SIZE = 100;

/**
 * A relay connection over documents paged by `_id` (our ids sort by creation time). The page function gets the
 * cursor bound and the direction; it returns `limit` documents in that direction.
 */
export const idConnection = <T extends { _id: string }>(
  args: { first?: number | null; last?: number | null; before?: string | null; after?: string | null },
  page: (params: ResolveCursorConnectionArgs) => Promise<T[]>,
) => resolveCursorConnection({ args, toCursor: (doc: T) => doc._id, defaultSize: 20, maxSize: MAX_PAGE_SIZE }, page);

/** The MongoDB filter, sort and limit for a page in the direction relay asks for. */
export const idPage = ({ before, after, inverted, limit }: ResolveCursorConnectionArgs) => ({
  limit,
  filter: {
    ...(after || before ? { _id: { ...(after ? { $gt: after } : {}), ...(before ? { $lt: before } : {}) } } : {}),
  },
  sort: { _id: inverted ? -1 : 1 } as const,
});

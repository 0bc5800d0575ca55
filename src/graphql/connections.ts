import { resolveArrayConnection, resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ValidationError } from '../errors.js';

export const MAX_PAGE_SIZE = 100;

/**
 * A relay connection over documents paged by `_id` (our ids sort by creation time). The page function gets the
 * cursor bound and the direction; it returns `limit` documents in that direction.
 */
export const idConnection = <T extends { _id: string }>(
  args: PageArgs,
  page: (params: ResolveCursorConnectionArgs) => Promise<T[]>,
) => {
  checkPageArgs(args);
  return resolveCursorConnection({ args, toCursor: (doc: T) => doc._id, defaultSize: 20, maxSize: MAX_PAGE_SIZE }, page);
};

type PageArgs = { first?: number | null; last?: number | null; before?: string | null; after?: string | null };

/** A cursor is the id of an edge's node (`acc_0mf3k2x1a9c4e5f6a7b8`, `gen-…`, `acc_root`). */
const CURSOR = /^[a-z]{1,8}[_-][0-9a-z]{1,64}$/;

/** A cursor of a list of stream events: the event's revision in its stream. */
const REVISION_CURSOR = /^\d{1,15}$/;

/**
 * A cursor of a list paged by offset (relay's): base64 of `OffsetConnection:<offset>`, exactly as relay writes it.
 * Node's decoder forgives what relay's strict one throws on (missing or extra padding, spaces, url-safe letters), so the
 * cursor must be the canonical encoding of what it decodes to.
 */
export const isOffsetCursor = (cursor: string): boolean => {
  const decoded = Buffer.from(cursor, 'base64').toString('utf8');
  return /^OffsetConnection:\d{1,9}$/.test(decoded) && Buffer.from(decoded).toString('base64') === cursor;
};

/** A page of a stream's events, newest first, bounded by revisions (exclusive); `oldestFirst` for a `last` page. */
export interface RevisionPage {
  readonly after?: number | undefined;
  readonly before?: number | undefined;
  readonly limit: number;
  readonly oldestFirst: boolean;
}

/** A relay connection over one stream's events, newest first; an edge's cursor is its event's revision. */
export const revisionConnection = <T extends { revision: number }>(
  args: PageArgs,
  page: (params: RevisionPage) => Promise<T[]>,
) => {
  checkPageArgs(args, (cursor) => REVISION_CURSOR.test(cursor));
  const revision = (cursor: string | undefined) => (cursor === undefined ? undefined : Number(cursor));
  const load = ({ after, before, limit, inverted }: ResolveCursorConnectionArgs): Promise<T[]> => page({ after: revision(after), before: revision(before), limit, oldestFirst: inverted });
  return resolveCursorConnection({ args, toCursor: (event: T) => String(event.revision), defaultSize: 20, maxSize: MAX_PAGE_SIZE }, load);
};

/** A relay connection over a list held whole (the catalog's), paged by offset. */
export const arrayConnection = <T>(args: PageArgs, items: T[]) => {
  checkPageArgs(args, isOffsetCursor);
  return resolveArrayConnection({ args, maxSize: MAX_PAGE_SIZE }, items);
};

/** Refuse what relay would reject with an unexpected error (a negative size, a cursor it cannot decode) or silently ignore (a cursor that is no id). */
const checkPageArgs = (args: PageArgs, isCursor = (cursor: string) => CURSOR.test(cursor)) => {
  for (const name of ['first', 'last'] as const) {
    const size = args[name];
    if (size !== null && size !== undefined && size < 0) {
      throw new ValidationError(`${name} must be 0 or more (pages hold at most ${MAX_PAGE_SIZE} edges)`, { argument: name, value: size });
    }
  }
  for (const name of ['after', 'before'] as const) {
    const cursor = args[name];
    if (cursor !== null && cursor !== undefined && !isCursor(cursor)) {
      throw new ValidationError(`${name} is not a cursor of this list; pass an edge's cursor or pageInfo's startCursor/endCursor`, { argument: name });
    }
  }
};

/**
 * A relay connection over documents in the order of a number they carry (`seq`: the log position of their first
 * event, for documents whose ids are derived and so do not sort by time); an edge's cursor is that number.
 */
export const seqConnection = <T extends { seq: number }>(
  args: PageArgs,
  page: (params: { filter: { seq?: { $gt?: number; $lt?: number } }; sort: { seq: 1 | -1 }; limit: number }) => Promise<T[]>,
) => {
  checkPageArgs(args, (cursor) => REVISION_CURSOR.test(cursor));
  const load = ({ before, after, inverted, limit }: ResolveCursorConnectionArgs) =>
    page({
      limit,
      filter: after || before ? { seq: { ...(after ? { $gt: Number(after) } : {}), ...(before ? { $lt: Number(before) } : {}) } } : {},
      sort: { seq: inverted ? -1 : 1 },
    });
  return resolveCursorConnection({ args, toCursor: (doc: T) => String(doc.seq), defaultSize: 20, maxSize: MAX_PAGE_SIZE }, load);
};

/** The MongoDB filter, sort and limit for a page in the direction relay asks for. */
export const idPage = ({ before, after, inverted, limit }: ResolveCursorConnectionArgs) => ({
  limit,
  filter: {
    ...(after || before ? { _id: { ...(after ? { $gt: after } : {}), ...(before ? { $lt: before } : {}) } } : {}),
  },
  sort: { _id: inverted ? -1 : 1 } as const,
});

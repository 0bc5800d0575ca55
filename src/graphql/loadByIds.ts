import { NotFoundError } from '../errors.js';
import type { GraphQLContext } from './context.js';

/**
 * The batch loader of a GraphQL object backed by read-model documents: fetch the documents for the ids, and answer
 * in the order asked, with a NotFoundError (`what` not found) for each id that has none, or whose document the
 * caller may not see (`visible`): another account's object answers exactly as a missing one.
 */
export const loadByIds =
  <D extends { _id: string }>(
    what: string,
    fetch: (ids: readonly string[], ctx: GraphQLContext) => Promise<readonly D[]>,
    visible: (doc: D, ctx: GraphQLContext) => boolean = () => true,
  ) =>
  async (ids: readonly string[], ctx: GraphQLContext): Promise<(D | NotFoundError)[]> => {
    const docs = new Map((await fetch(ids, ctx)).filter((doc) => visible(doc, ctx)).map((doc) => [doc._id, doc]));
    return ids.map((id) => docs.get(id) ?? new NotFoundError(what, id));
  };

import { allPages, gql, type Connection } from './api.js';

export interface TextModel {
  readonly id: string;
  readonly name: string;
}

const MODELS = 'query Models($after: String) { models(first: 100, after: $after) { edges { node { id name outputModalities } } pageInfo { hasNextPage endCursor } } }';
/** More than any catalog a person scrolls through in a select; past it, the page says the list is cut. */
const MAX_MODELS = 2_000;

/**
 * The catalog's models that answer in text (an embeddings model has nothing to say to a chat): the Playground's
 * choices, the default model's suggestions. The catalog is read page after page (the server gives 100 a page): a
 * provider publishing many models that sort early must not push the others out of reach.
 */
export const loadTextModels = async (): Promise<{ models: TextModel[]; complete: boolean }> => {
  const { nodes, complete } = await allPages(
    async (after) => (await gql<{ models: Connection<TextModel & { outputModalities: string[] }> }>(MODELS, { after })).models,
    MAX_MODELS,
  );
  return { models: nodes.filter((m) => m.outputModalities.includes('TEXT')).map(({ id, name }) => ({ id, name })), complete };
};

import { gql } from './api.js';

export interface TextModel {
  readonly id: string;
  readonly name: string;
}

const MODELS = 'query Models { models(first: 200) { edges { node { id name outputModalities } } } }';

/** The catalog's models that answer in text (an embeddings model has nothing to say to a chat): the Playground's choices, the default model's suggestions. */
export const loadTextModels = async (): Promise<TextModel[]> => {
  const { models } = await gql<{ models: { edges: { node: TextModel & { outputModalities: string[] } }[] } }>(MODELS);
  return models.edges.map((e) => e.node).filter((m) => m.outputModalities.includes('TEXT')).map(({ id, name }) => ({ id, name }));
};

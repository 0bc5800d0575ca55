import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import type { CatalogActor } from './provider.events.js';

/**
 * The `model-{author/slug}` aggregate: a model of the catalog, independent of who serves it. A model has an owner
 * (the account that first published it) who decides whether other providers may serve it without an admin.
 */

export const MODALITIES = ['text', 'image', 'audio', 'file', 'video', 'embeddings'] as const;
export type Modality = (typeof MODALITIES)[number];

export interface ModelSpec {
  /** `author/slug`, e.g. `openai/gpt-4o-mini`. */
  readonly modelId: string;
  readonly name: string;
  readonly description: string;
  readonly contextLength: number;
  readonly inputModalities: readonly Modality[];
  readonly outputModalities: readonly Modality[];
  /** Tokenizer family shown by the models API (`GPT`, `Claude`, `Gemini`, `Llama3`, `Other`). */
  readonly tokenizer: string;
}

/**
 * `ownerAccountId` is absent in events written before issue 10: those models came from the seed (see ownerOf).
 * `decidedBy` (who published it) is absent before model namespaces existed.
 */
export type ModelPublished = {
  readonly type: 'ModelPublished';
  readonly data: ModelSpec & { readonly at: string; readonly ownerAccountId?: string; readonly decidedBy?: CatalogActor };
};
export type ModelRetired = { readonly type: 'ModelRetired'; readonly data: { readonly modelId: string; readonly at: string } };
/** Its owner or an admin let any provider publish endpoints for the model (open), or require approval again. */
export type ModelOpenToProvidersSet = {
  readonly type: 'ModelOpenToProvidersSet';
  readonly data: { readonly modelId: string; readonly open: boolean; readonly at: string; readonly decidedBy: CatalogActor };
};

export type ModelEvent = ModelPublished | ModelRetired | ModelOpenToProvidersSet;

/**
 * The owner a ModelPublished names. Events from before owners were recorded count as the root admin's: most came
 * from the seed, and failing closed means a provider that created a model back then asks an admin to open it.
 */
export const ownerOf = (data: ModelPublished['data']): string => data.ownerAccountId ?? ROOT_ACCOUNT_ID;

export const modelStream = (modelId: string): string => `model-${modelId}`;

/** The namespace of a model id: `openai` in `openai/gpt-4o`. */
export const authorOf = (modelId: string): string => modelId.slice(0, modelId.indexOf('/'));

/** `author/slug` with lowercase letters, digits, `.`, `-`, `_` (no variant suffix). */
export const MODEL_ID_PATTERN = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/;

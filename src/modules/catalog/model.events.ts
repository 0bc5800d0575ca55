/** The `model-{author/slug}` aggregate: a model of the catalog, independent of who serves it. */

export const MODALITIES = ['text', 'image', 'audio', 'file', 'video'] as const;
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

export type ModelPublished = { readonly type: 'ModelPublished'; readonly data: ModelSpec & { readonly at: string } };
export type ModelRetired = { readonly type: 'ModelRetired'; readonly data: { readonly modelId: string; readonly at: string } };

export type ModelEvent = ModelPublished | ModelRetired;

export const modelStream = (modelId: string): string => `model-${modelId}`;

/** `author/slug` with lowercase letters, digits, `.`, `-`, `_` (no variant suffix). */
export const MODEL_ID_PATTERN = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/;

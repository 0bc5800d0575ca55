/**
 * The `modelalias-{~author/slug}` aggregate: an admin's alias of a catalog model, OpenRouter's "latest" ids
 * (`~openai/gpt-latest` → `openai/gpt-4o`). Every face reads it where it reads a model id (resolveModelId): a request
 * naming the alias is served and recorded as the model it names.
 */

export type ModelAliasSet = { readonly type: 'ModelAliasSet'; readonly data: { readonly alias: string; readonly model: string; readonly at: string } };
/** `model`: the model it named until then. */
export type ModelAliasRemoved = { readonly type: 'ModelAliasRemoved'; readonly data: { readonly alias: string; readonly model: string; readonly at: string } };
export type ModelAliasEvent = ModelAliasSet | ModelAliasRemoved;

export const modelAliasStream = (alias: string): string => `modelalias-${alias}`;

/** `~author/slug`: a model id (MODEL_ID_PATTERN) after a tilde, no variant suffix. */
export const MODEL_ALIAS_PATTERN = /^~[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/;

/** Whether an id is in the aliases' namespace (then only an alias can resolve it). */
export const isAliasId = (id: string): boolean => id.startsWith('~');

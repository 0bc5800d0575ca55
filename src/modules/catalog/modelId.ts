/**
 * A requested model id as routing reads it: the catalog id, then a chain of OpenRouter's variant suffixes
 * (`x:free:nitro`); the two alias rules: an admin's alias (`~openai/gpt-latest`, see modelAlias.events.ts) and, for an id
 * the catalog does not hold, another spelling of its version; and resolveModelId, which every face reads an id with.
 * Pure: the catalog comes in.
 */
import { extend } from '../../objects.js';
import type { Catalog } from './catalog.js';
import { isAliasId } from './modelAlias.events.js';

/** What a chain of variant suffixes asks for. `problem`: why the id is refused (then only `base` is meaningful). */
export interface ParsedModelId {
  /** The id before the first `:`. */
  readonly base: string;
  /** `:free`, the one catalog variant: the model's free endpoints (listed apart as `…:free`). */
  readonly free: boolean;
  /** The last sort variant's order (`:nitro` throughput, `:floor` price); null: the request's or the default. */
  readonly sort: 'throughput' | 'price' | null;
  /** `:thinking` (deprecated): reasoning on when the request does not set it. */
  readonly thinking: boolean;
  readonly problem: string | null;
}

/** A Map, not an object: the variant is the caller's text (`:constructor` must not find Object's). */
const REFUSED: ReadonlyMap<string, string> = new Map([
  ['online', 'Switchyard has no web search (nor the web plugin that replaced :online)'],
  ['batch', 'Switchyard has no Batch API'],
]);
const SUPPORTED = ':free, :nitro, :floor, :exacto, :thinking, :extended';

/**
 * Splits at each `:` with indexOf (no regex: this runs on every request). At most one catalog variant; the last sort
 * variant wins, as on OpenRouter.
 */
export const parseModelId = (id: string): ParsedModelId => {
  let colon = id.indexOf(':');
  if (colon === -1) return { base: id, free: false, sort: null, thinking: false, problem: null };
  const base = id.slice(0, colon);
  let free = false;
  let sort: ParsedModelId['sort'] = null;
  let thinking = false;
  while (colon !== -1) {
    const next = id.indexOf(':', colon + 1);
    const variant = id.slice(colon + 1, next === -1 ? undefined : next);
    colon = next;
    switch (variant) {
      case 'free':
        if (free) return { base, free, sort, thinking, problem: `${id} names more than one catalog variant (at most one: :free)` };
        free = true;
        break;
      case 'nitro':
        sort = 'throughput';
        break;
      case 'floor':
        sort = 'price';
        break;
      case 'exacto':
        // OpenRouter orders :exacto by its tool-calling quality signals; Switchyard records no such signal, so it is
        // the default order (and, as a sort variant, overrides an earlier :nitro or :floor).
        sort = null;
        break;
      case 'thinking':
        thinking = true;
        break;
      case 'extended':
        // Deprecated on OpenRouter (it named longer-context endpoints); nothing to choose here.
        break;
      case '':
        return { base, free, sort, thinking, problem: `${id} is not a valid model ID` };
      default: {
        const why = REFUSED.get(variant);
        return { base, free, sort, thinking, problem: `The :${variant} variant of ${base} is not supported (${why ? `${why}; ` : ''}supported: ${SUPPORTED})` };
      }
    }
  }
  return { base, free, sort, thinking, problem: null };
};

const isDigit = (c: number) => c >= 48 && c <= 57;
const DASH = 45;
const DOT = 46;
/** More version separators than this and no other spelling is tried (2^4 - 1 = 15 lookups at most). */
const MAX_FLIPS = 4;

/**
 * The other spellings of a model id's version: each separator between two digits in the slug flipped between `-` and
 * `.`, alone or with the others (`anthropic/claude-3-5-sonnet` → `anthropic/claude-3.5-sonnet`;
 * `meta/llama-3-1-8b` → `meta/llama-3.1-8b`, `meta/llama-3-1.8b`, `meta/llama-3.1.8b`).
 */
export const versionSpellings = (id: string): string[] => {
  const flips: number[] = [];
  for (let i = id.indexOf('/') + 2; i < id.length - 1; i++) {
    const c = id.charCodeAt(i);
    if ((c === DASH || c === DOT) && isDigit(id.charCodeAt(i - 1)) && isDigit(id.charCodeAt(i + 1))) {
      if (flips.length === MAX_FLIPS) return [];
      flips.push(i);
    }
  }
  if (flips.length === 0) return [];
  const spellings: string[] = [];
  for (let mask = 1; mask < 1 << flips.length; mask++) {
    const chars = id.split('');
    flips.forEach((at, bit) => {
      if (mask & (1 << bit)) chars[at] = id.charCodeAt(at) === DASH ? '.' : '-';
    });
    spellings.push(chars.join(''));
  }
  return spellings;
};

/**
 * The catalog id an id the catalog does not hold is another spelling of, when exactly one spelling `exists`; null
 * when none does or several do (ambiguous: not guessed). Callers ask only after the exact id missed: it always wins.
 */
export const resolveVersionAlias = (id: string, exists: (id: string) => boolean): string | null => {
  const found = versionSpellings(id).filter(exists);
  return found.length === 1 ? found[0]! : null;
};

const inCatalog = (catalog: Pick<Catalog, 'model' | 'endpoints'>, id: string) => catalog.model(id) !== undefined || catalog.endpoints(id).length > 0;

/** A requested id as routing reads it: its variant chain parsed, its base resolved against the catalog. */
export interface ResolvedModelId extends ParsedModelId {
  /**
   * The catalog id the base names: the model an alias (`~…`) names; else itself when the catalog holds it, else the one
   * other spelling of its version the catalog holds; null when none (an unknown id or alias, a router id). Resolved
   * even when `problem` is set.
   */
  readonly modelId: string | null;
  /** The admin's alias the base is (`~openai/gpt-latest`), null when it is none: refusals name it with its model. */
  readonly alias: string | null;
}

/** The one refusal of a retired model, as chat and the checks of a saved id word it: an alias is named with its model. */
export const retiredRefusal = (requested: string, { alias, modelId }: Pick<ResolvedModelId, 'alias' | 'modelId'>): string =>
  alias === null ? `${requested} is retired` : `${requested} is retired (the alias ${alias} names ${modelId})`;

/**
 * The one reading of a model id, against the in-memory catalog routing uses: the chat route and the other routes that
 * plan a call, and through the catalog's API the single-model REST routes, GraphQL `model(id:)` and the checks of a
 * saved id (presets, the account's default model, workflow steps). One parse and a few map lookups: it runs on every
 * request.
 */
export const resolveModelId = (catalog: Pick<Catalog, 'model' | 'endpoints' | 'alias'>, requested: string): ResolvedModelId => {
  const parsed = parseModelId(requested);
  const { base } = parsed;
  // An alias names a model id exactly (never another alias, nor another spelling): one lookup.
  // extend: a spread that adds keys is slow on Node 20's V8 and promotes its garbage (src/objects.ts).
  if (isAliasId(base)) return extend(parsed, { alias: base, modelId: catalog.alias(base) ?? null });
  return extend(parsed, { alias: null, modelId: inCatalog(catalog, base) ? base : resolveVersionAlias(base, (other) => inCatalog(catalog, other)) });
};

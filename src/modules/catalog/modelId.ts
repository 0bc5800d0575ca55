/**
 * A requested model id as routing reads it: the catalog id, then a chain of OpenRouter's variant suffixes
 * (`x:free:nitro`). Pure.
 */

/** What a chain of variant suffixes asks for. `problem`: why the id is refused (then the rest is unset). */
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

const REFUSED: Readonly<Record<string, string>> = {
  online: 'Switchyard has no web search (nor the web plugin that replaced :online)',
  batch: 'Switchyard has no Batch API',
};
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
        const why = REFUSED[variant];
        return { base, free, sort, thinking, problem: `The :${variant} variant of ${base} is not supported (${why ? `${why}; ` : ''}supported: ${SUPPORTED})` };
      }
    }
  }
  return { base, free, sort, thinking, problem: null };
};

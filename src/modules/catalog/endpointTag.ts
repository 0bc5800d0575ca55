/**
 * OpenRouter's endpoint tags, as `provider.only`, `ignore` and `order` and the account's provider lists take them: a
 * provider (its slug or its name, any case), which names all its endpoints, or `provider/variant`, one endpoint variant
 * of it (`deepinfra/fp8`). A Switchyard provider publishes one endpoint per model, and the variant that tells its
 * endpoints apart is the quantization: an endpoint's tag is `slug/quantization` when it states one, else its slug.
 */
import type { EndpointEntry } from './catalog.js';

/** A variant as an endpoint tag spells it: a quantization such as fp8, bf16 or q4_k_m. */
const VARIANT = /^[a-z0-9][a-z0-9._-]{0,39}$/i;

/** The variant of an endpoint that states a quantization (lowercase), else null. */
const variantOf = (quantization: string | null): string | null => {
  const q = quantization?.toLowerCase() ?? null;
  return q !== null && q !== 'unknown' && VARIANT.test(q) ? q : null;
};

/** The tag GET /api/v1/models/{id}/endpoints shows: what `provider.only` names to target this endpoint alone. */
export const endpointTag = (providerSlug: string, quantization: string | null): string => {
  const variant = variantOf(quantization);
  return variant === null ? providerSlug : `${providerSlug}/${variant}`;
};

export type ProviderName = { readonly provider: string; readonly variant: string | null };

/** An entry as its provider and variant (lowercase), or why it is neither a provider nor `provider/variant`. */
export const parseProviderName = (entry: string): ProviderName | { readonly problem: string } => {
  const slash = entry.indexOf('/');
  if (slash === -1) return { provider: entry.toLowerCase(), variant: null };
  const provider = entry.slice(0, slash);
  const variant = entry.slice(slash + 1);
  if (provider.trim() === '' || provider.trim() !== provider || !VARIANT.test(variant)) {
    return {
      problem: `${JSON.stringify(entry)} is neither a provider nor provider/variant (a variant is an endpoint's quantization, 1 to 40 letters, digits, ".", "_" or "-", as the endpoint's tag in GET /api/v1/models/{author}/{slug}/endpoints shows: deepinfra/fp8)`,
    };
  }
  return { provider: provider.toLowerCase(), variant: variant.toLowerCase() };
};

/** Whether an entry (well-formed: parseProviderName passed it) names this endpoint: its provider, and its variant when it names one. */
export const namesEndpoint = (entry: string, e: EndpointEntry): boolean => {
  const slash = entry.indexOf('/');
  const provider = (slash === -1 ? entry : entry.slice(0, slash)).toLowerCase();
  if (provider !== e.provider.slug && provider !== e.provider.name.toLowerCase()) return false;
  return slash === -1 || entry.slice(slash + 1).toLowerCase() === variantOf(e.quantization);
};

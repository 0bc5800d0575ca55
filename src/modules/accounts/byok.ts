import { boundedCache } from '../../boundedCache.js';
import type { ProviderEntry } from '../catalog/catalog.js';

/**
 * Whether an account's own key for a provider (BYOK) may be sent now. A provider (another tenant) decides where its
 * endpoints point, so a key goes only to the origin its owner set it for: once the provider points elsewhere the key
 * waits for its owner to set it again (re-confirm), and the provider's shared key serves meanwhile, if allowed.
 */
export const BYOK_STATUSES = ['active', 'needs_confirmation', 'provider_not_allowed', 'provider_unknown'] as const;
export type ByokStatus = (typeof BYOK_STATUSES)[number];

/**
 * `https://api.example.com:8443`: where requests to a base URL go (scheme, host, port). Remembered per base URL (few):
 * routing asks for every endpoint of an account with its own keys, on every request.
 */
export const originOf = boundedCache(1000, (baseUrl: string): string => new URL(baseUrl).origin);

export const byokStatus = (provider: Pick<ProviderEntry, 'byok' | 'baseUrl' | 'protocol'> | undefined, key: { readonly origin: string }): { status: ByokStatus; problem: string | null } => {
  if (!provider) return { status: 'provider_unknown', problem: 'the provider is no longer registered' };
  if (!provider.byok || provider.protocol === 'demo') return { status: 'provider_not_allowed', problem: 'an admin no longer allows keys of its own for this provider (setProviderByok)' };
  const now = originOf(provider.baseUrl);
  if (now !== key.origin) {
    return { status: 'needs_confirmation', problem: `the provider's endpoints now point at ${now}, not ${key.origin} where this key was set for: set the key again (setByokKey) to send it there` };
  }
  return { status: 'active', problem: null };
};

/** What identifies a key without giving it away: its last 4 characters, only when it is long enough to keep 8 hidden. */
export const byokHint = (apiKey: string): string => (apiKey.length >= 12 ? `…${apiKey.slice(-4)}` : '…');

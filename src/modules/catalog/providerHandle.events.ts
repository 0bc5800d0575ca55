/**
 * The `providerhandle-{handle}` aggregate: a word that names a provider where a request's `provider.only`, `ignore` and
 * `order` and an account's provider lists name one, its slug or its display name in any case (endpointTag.ts). Each
 * handle names one provider: registering a provider first claims the handles of its slug and of its name, each in its
 * own stream appended at its expected revision, so that no two processes can give two providers the same name (as
 * the `provider-{slug}` stream keeps slugs unique).
 */

export type ProviderHandleClaimed = { readonly type: 'ProviderHandleClaimed'; readonly data: { readonly handle: string; readonly slug: string; readonly at: string } };
export type ProviderHandleEvent = ProviderHandleClaimed;

/**
 * The handle of a slug or a display name: the word as it looks, so that two names a reader cannot tell apart share it.
 * NFKC first (fullwidth "ＯｐｅｎＡＩ" is "OpenAI", an ideographic space a space), trimmed, then case folded (upper then
 * lower case: "ß" and "SS" fold alike, as Unicode's full case folding has them) and NFKC again (lower-casing may leave
 * a form that is not). ASCII names keep the handle they had (trimmed, lowercase). Names that are confusable only by
 * mixing scripts or by invisible characters are refused at registration (catalogText.ts).
 */
export const providerHandle = (slugOrName: string): string => slugOrName.normalize('NFKC').trim().toUpperCase().toLowerCase().normalize('NFKC');

/** The handle's stream (a display name may hold any character: percent-encoded). */
export const providerHandleStream = (handle: string): string => `providerhandle-${encodeURIComponent(handle)}`;

/** The handles a provider is named by: its slug's and its name's (one when they are the same word). */
export const handlesOf = (provider: { readonly slug: string; readonly name: string }): string[] => [...new Set([providerHandle(provider.slug), providerHandle(provider.name)])];

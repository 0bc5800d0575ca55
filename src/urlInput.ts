import { ValidationError } from './errors.js';

/**
 * An absolute URL a client handed in to be called or redirected to later (a provider's base URL, an app's callback):
 * at most 2,048 characters, a scheme `rules.scheme` accepts, no user name or password, no fragment (and no query
 * string where `rules.query` says so). Each refusal is a
 * ValidationError from `rules.refuse`, worded for the field.
 */
export const checkUrlInput = (
  raw: string,
  rules: {
    readonly refuse: (why: string) => ValidationError;
    /** What to say when it is no absolute URL. */
    readonly notAUrl: string;
    /** Why the scheme (or scheme and host) is refused, or null when it is fine. */
    readonly scheme: (url: URL) => string | null;
    /** What to say when it carries a user name or password. */
    readonly credentials: string;
    /** What to say when it has a query string (`?…`); absent: a query string is fine (an app's callback). */
    readonly query?: string;
  },
): URL => {
  if (raw.length > 2_048) throw rules.refuse('must be at most 2,048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw rules.refuse(rules.notAUrl);
  }
  const scheme = rules.scheme(url);
  if (scheme !== null) throw rules.refuse(scheme);
  if (url.username || url.password) throw rules.refuse(rules.credentials);
  if (url.hash) throw rules.refuse('must not have a fragment (#...)');
  // `url.search` is empty for a bare "?": the raw text says whether one was given.
  if (rules.query !== undefined && (url.search || url.href.includes('?'))) throw rules.refuse(rules.query);
  return url;
};

/**
 * Upstream text may quote the request's credentials back: many OpenAI-compatible servers answer a refused key with
 * "Incorrect API key provided: Bearer sk-…", the Authorization header as received. An attempt's error (its message,
 * the upstream's message and code) goes to the client, the generation record and the event log, so what the gateway
 * sent on that attempt (its key, the account's own (BYOK) or the provider's shared one, and the provider's configured
 * header values) is taken out of it first, leaving the last four characters as the BYOK key's hint does; and so is
 * anything shaped like a bearer token or an API key, whoever's it is (an upstream may quote another key it holds).
 * Only errors pass through here: an answer's content is the model's and is not searched.
 */
import type { RouteTarget } from './routePlan.js';
import { ProviderError } from './types.js';

/** Shorter values are no secret worth the name, and taking them out would garble the message ("ollama", "1"). */
const MIN_SECRET_LENGTH = 8;

/** The BYOK key's hint (modules/accounts/byok.ts): the last four characters of a long secret, else nothing. */
const hintOf = (secret: string): string => (secret.length >= 12 ? `…${secret.slice(-4)}` : '…');

/** Bearer tokens, OpenAI/Anthropic/OpenRouter-style `sk-`/`pk-`/`rk-` keys, Google's `AIza` keys, `key=` in a URL. */
const KEY_SHAPED: readonly RegExp[] = [
  /(\bBearer\s+)([^\s"',;]{8,})/gi,
  /(^|[^\w-])((?:sk|pk|rk)-[\w-]{16,})/g,
  /(^|[^\w-])(AIza[\w-]{30,})/g,
  /([?&](?:key|api_key|apikey|access_token|token)=)([^\s&"'#]{8,})/gi,
];

/** The credentials an attempt sent: its key and the provider's configured header values. */
export const credentialsOf = (target: Pick<RouteTarget, 'apiKey' | 'endpoint'>): string[] => {
  const sent = [target.apiKey, ...Object.values(target.endpoint.provider.headers)];
  return sent.filter((value): value is string => typeof value === 'string');
};

/**
 * `text` with every credential in `secrets` of at least MIN_SECRET_LENGTH characters (as sent or percent-encoded) and
 * every key-shaped word replaced by its hint.
 */
export const redactCredentials = (text: string, secrets: readonly string[]): string => {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) if (out.includes(form)) out = out.split(form).join(hintOf(secret));
  }
  for (const pattern of KEY_SHAPED) out = out.replace(pattern, (_, before: string, key: string) => `${before}${hintOf(key)}`);
  return out;
};

/**
 * The attempt's error with its upstream text redacted (the same error when there was nothing to take out). A redacted
 * error drops its cause, which may hold the text as it came.
 */
export const redactProviderError = (error: ProviderError, secrets: readonly string[]): ProviderError => {
  const message = redactCredentials(error.message, secrets);
  const upstreamMessage = error.upstreamMessage === undefined ? undefined : redactCredentials(error.upstreamMessage, secrets);
  const upstreamCode = error.upstreamCode === undefined ? undefined : redactCredentials(error.upstreamCode, secrets);
  if (message === error.message && upstreamMessage === error.upstreamMessage && upstreamCode === error.upstreamCode) return error;
  return new ProviderError({
    code: error.code,
    status: error.status,
    retryable: error.retryable,
    message,
    ...(error.provider !== undefined && { provider: error.provider }),
    ...(error.retryAfterMs !== undefined && { retryAfterMs: error.retryAfterMs }),
    ...(upstreamCode !== undefined && { upstreamCode }),
    ...(upstreamMessage !== undefined && { upstreamMessage }),
  });
};

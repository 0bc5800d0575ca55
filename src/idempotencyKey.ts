/**
 * An `Idempotency-Key` as a caller sends it (a webhook, a manual run, a model call): 1 to 255 visible ASCII characters
 * (`!` to `~`), no spaces, as the keys Stripe's and OpenRouter's clients generate (UUIDs) are.
 */
import { ValidationError } from './errors.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const ALLOWED = 'An Idempotency-Key must be 1 to 255 visible ASCII characters: letters, digits and punctuation (! to ~), no spaces';

/** What is wrong with a key that is not one, for the message. */
const fault = (key: string): string => {
  if (key.length === 0) return 'this one is empty';
  if (key.length > 255) return `this one has ${key.length}`;
  if (key.includes(' ')) return 'this one has a space';
  const other = [...key].find((c) => !IDEMPOTENCY_KEY.test(c))!;
  return `this one has U+${other.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
};

/** The key a caller sent, checked (VALIDATION, with `metadata` naming where it was sent, when it is not a key). */
export const checkIdempotencyKey = (key: string, metadata: Record<string, unknown>): string => {
  if (!IDEMPOTENCY_KEY.test(key)) throw new ValidationError(`${ALLOWED}; ${fault(key)}`, metadata);
  return key;
};

/** A GraphQL `idempotencyKey` argument, checked (VALIDATION naming it); undefined when not given. */
export const idempotencyKeyArg = (key: string | null | undefined): string | undefined => (key == null ? undefined : checkIdempotencyKey(key, { field: 'idempotencyKey' }));

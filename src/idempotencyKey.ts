/** An `Idempotency-Key` as a caller sends it (a webhook, a manual run, a model call): short, printable ASCII. */
import { ValidationError } from './errors.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The key a caller sent, checked (VALIDATION, with `metadata` naming where it was sent, when it is not a key). */
export const checkIdempotencyKey = (key: string, metadata: Record<string, unknown>): string => {
  if (!IDEMPOTENCY_KEY.test(key)) throw new ValidationError('An Idempotency-Key must be 1 to 255 printable ASCII characters', metadata);
  return key;
};

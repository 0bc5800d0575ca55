/**
 * Signed webhook calls, Stripe's scheme in our header names: the caller sends
 *
 *   x-switchyard-timestamp: <Unix seconds>
 *   x-switchyard-signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + raw body)>
 *
 * The timestamp is signed with the body and must be within five minutes of the server's clock, so a captured call
 * cannot be replayed later; within the window, the signature is the call's idempotency key (workflow.rest.ts), so a
 * replay answers the run the call started. Pure: the clock comes in as an argument.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-switchyard-signature';
export const TIMESTAMP_HEADER = 'x-switchyard-timestamp';
/** How far a signed timestamp may be from the server's clock, either way. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;
const TIMESTAMP = /^[0-9]{1,12}$/;

/** The signature header's value for a body sent at `timestamp` (Unix seconds), as a client computes it. */
export const signWebhook = (secret: string, timestamp: number | string, body: Buffer | string): string =>
  `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;

export type SignatureCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'malformed_signature' | 'missing_timestamp' | 'malformed_timestamp' | 'stale_timestamp' | 'wrong_signature'; readonly message: string };

/** Whether `signature` signs `body` at `timestamp` with `secret`, at server time `nowMs`; compared in constant time. */
export const checkWebhookSignature = (input: { secret: string; signature: string; timestamp: string | null; body: Buffer; nowMs: number }): SignatureCheck => {
  const given = SIGNATURE.exec(input.signature.trim());
  if (!given) return { ok: false, reason: 'malformed_signature', message: `${SIGNATURE_HEADER} must be sha256=<64 hex digits>` };
  if (input.timestamp === null) return { ok: false, reason: 'missing_timestamp', message: `A signed call needs the ${TIMESTAMP_HEADER} header (Unix seconds) that it signs` };
  const timestamp = input.timestamp.trim();
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed_timestamp', message: `${TIMESTAMP_HEADER} must be Unix time in whole seconds` };
  if (Math.abs(input.nowMs / 1_000 - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) {
    return { ok: false, reason: 'stale_timestamp', message: `${TIMESTAMP_HEADER} is more than ${SIGNATURE_TOLERANCE_SECONDS} s from the server's time: sign each call when it is sent (old calls are not accepted again)` };
  }
  const expected = createHmac('sha256', input.secret).update(`${timestamp}.`).update(input.body).digest();
  if (!timingSafeEqual(expected, Buffer.from(given[1]!, 'hex'))) {
    return { ok: false, reason: 'wrong_signature', message: `Wrong webhook signature: ${SIGNATURE_HEADER} must be sha256=hex(HMAC-SHA256(secret, timestamp + "." + raw body))` };
  }
  return { ok: true };
};

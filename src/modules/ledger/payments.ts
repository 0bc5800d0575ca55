import { createHash } from 'node:crypto';
import { PaymentFailedError } from '../../errors.js';
import { NANOS_PER_CENT } from './money.js';

export interface PaymentRequest {
  readonly accountId: string;
  /** Credits bought, integer nano-dollars. */
  readonly amount: number;
  readonly fee: number;
  /** A payment method token, e.g. `pm_card_visa`. */
  readonly paymentMethod: string;
  /** The same key returns the same payment (a retried purchase is not charged twice). */
  readonly idempotencyKey: string;
}

/** The payment port: charge amount + fee, return a reference, or throw PaymentFailedError. */
export interface PaymentProcessor {
  readonly name: string;
  fee(amount: number): number;
  charge(request: PaymentRequest): Promise<{ paymentRef: string }>;
}

export interface FeePolicy {
  /** Parts per 10,000 of the amount (550 = 5.5%). */
  readonly basisPoints: number;
  readonly minimum: number;
}

export const DEFAULT_FEE: FeePolicy = { basisPoints: 550, minimum: 80 * NANOS_PER_CENT };

/**
 * Rounded up to a whole cent (a card is charged the amount, whole cents, plus the fee: $100.01 at 5.5% is $5.51, not
 * $5.50055), never below the minimum. In integers: amount × basis points can pass 2^53, so the amount is split into
 * whole 10,000s and a remainder.
 */
export const computeFee = (amount: number, policy: FeePolicy = DEFAULT_FEE): number => {
  const whole = Math.floor(amount / 10_000) * policy.basisPoints;
  const rest = Math.ceil(((amount % 10_000) * policy.basisPoints) / 10_000);
  return Math.max(policy.minimum, Math.ceil((whole + rest) / NANOS_PER_CENT) * NANOS_PER_CENT);
};

/** Stripe's test tokens for cards that pay. */
const PAYING_TEST_TOKENS = new Set(['pm_card_visa', 'pm_card_visa_debit', 'pm_card_mastercard', 'pm_card_mastercard_debit', 'pm_card_amex', 'pm_card_discover', 'pm_card_jcb', 'pm_card_unionpay']);

/** Stripe's test tokens for cards that are declined, with their decline codes. */
const DECLINING_TEST_TOKENS = new Map([
  ['pm_card_declined', { message: 'Your card was declined', declineCode: 'generic_decline' }],
  ['pm_card_insufficient_funds', { message: 'Your card has insufficient funds', declineCode: 'insufficient_funds' }],
]);

/**
 * The built-in processor records purchases without a real payment network (self-hosted installs bill outside, or
 * plug in a real processor behind this port). It knows Stripe's test tokens: the paying ones (`pm_card_visa`, ...)
 * succeed, `pm_card_declined` and `pm_card_insufficient_funds` are declined, and any other token is a declined
 * payment too: a token nobody issued pays nothing.
 */
export const builtInPaymentProcessor = (policy: FeePolicy = DEFAULT_FEE): PaymentProcessor => ({
  name: 'builtin',
  fee: (amount) => computeFee(amount, policy),
  async charge(request) {
    const declined = DECLINING_TEST_TOKENS.get(request.paymentMethod);
    if (declined) throw new PaymentFailedError(declined.message, { decline_code: declined.declineCode });
    if (!PAYING_TEST_TOKENS.has(request.paymentMethod)) {
      throw new PaymentFailedError(`Your payment was declined: ${JSON.stringify(request.paymentMethod.slice(0, 80))} is not a known payment method`, { decline_code: 'invalid_payment_method' });
    }
    const ref = createHash('sha256').update(`${request.accountId}:${request.idempotencyKey}`).digest('hex').slice(0, 24);
    return { paymentRef: `pay_${ref}` };
  },
});

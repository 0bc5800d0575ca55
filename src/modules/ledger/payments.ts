import { createHash } from 'node:crypto';
import { PaymentFailedError } from '../../errors.js';
import { NANOS_PER_USD } from './ledger.events.js';

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

export const DEFAULT_FEE: FeePolicy = { basisPoints: 550, minimum: 0.8 * NANOS_PER_USD };

/** Rounded up to the nano-dollar, never below the minimum. */
export const computeFee = (amount: number, policy: FeePolicy = DEFAULT_FEE): number =>
  Math.max(policy.minimum, Math.ceil((amount * policy.basisPoints) / 10_000));

/**
 * The built-in processor records purchases without a real payment network (self-hosted installs bill outside, or
 * plug in a real processor behind this port). Test tokens follow Stripe's convention: `pm_card_declined` and
 * `pm_card_insufficient_funds` are declined, any other `pm_…` token is accepted.
 */
export const builtInPaymentProcessor = (policy: FeePolicy = DEFAULT_FEE): PaymentProcessor => ({
  name: 'builtin',
  fee: (amount) => computeFee(amount, policy),
  async charge(request) {
    if (!/^pm_[A-Za-z0-9_]{1,64}$/.test(request.paymentMethod)) {
      throw new PaymentFailedError(`Unknown payment method ${JSON.stringify(request.paymentMethod)}`, { decline_code: 'invalid_payment_method' });
    }
    if (request.paymentMethod === 'pm_card_declined') throw new PaymentFailedError('Your card was declined', { decline_code: 'generic_decline' });
    if (request.paymentMethod === 'pm_card_insufficient_funds') throw new PaymentFailedError('Your card has insufficient funds', { decline_code: 'insufficient_funds' });
    const ref = createHash('sha256').update(`${request.accountId}:${request.idempotencyKey}`).digest('hex').slice(0, 24);
    return { paymentRef: `pay_${ref}` };
  },
});

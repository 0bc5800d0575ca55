import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { NANOS_PER_USD } from './money.js';

/**
 * Plans are configuration, not code. Defaults follow OpenRouter: `:free` models at 20 requests a minute and 50 a
 * day, or 1,000 a day once the account has bought at least $10 of credits in its lifetime. `null` means no limit.
 */
export const planSchema = z.object({
  freeRequestsPerMinute: z.number().int().positive().nullable(),
  freeRequestsPerDay: z.number().int().positive().nullable(),
  /** Daily free requests once lifetime purchases reach `purchaseThreshold`. */
  freeRequestsPerDayAfterPurchase: z.number().int().positive().nullable(),
  purchaseThreshold: z.number().int().nonnegative(),
});
export type Plan = z.infer<typeof planSchema>;
export const plansSchema = z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/), planSchema).refine((p) => 'free' in p, 'a "free" plan is required');
export type Plans = z.infer<typeof plansSchema>;

export const DEFAULT_PLANS: Plans = {
  free: { freeRequestsPerMinute: 20, freeRequestsPerDay: 50, freeRequestsPerDayAfterPurchase: 1000, purchaseThreshold: 10 * NANOS_PER_USD },
  pro: { freeRequestsPerMinute: 200, freeRequestsPerDay: null, freeRequestsPerDayAfterPurchase: null, purchaseThreshold: 0 },
};

/** Throw a ValidationError unless `plan` is one of the configured plans (own keys only: `constructor` is no plan). */
export const requireKnownPlan = (plans: Plans, plan: string): void => {
  if (!Object.hasOwn(plans, plan)) throw new ValidationError(`Unknown plan ${JSON.stringify(plan)}; plans are ${Object.keys(plans).join(', ')}`, { field: 'plan' });
};

/** The free-tier limits that apply to an account on `plan` with these lifetime purchases. */
export const freeTierLimits = (plan: Plan, lifetimePurchased: number) => ({
  perMinute: plan.freeRequestsPerMinute,
  perDay: lifetimePurchased >= plan.purchaseThreshold && plan.freeRequestsPerDayAfterPurchase !== null ? plan.freeRequestsPerDayAfterPurchase : plan.freeRequestsPerDay,
});

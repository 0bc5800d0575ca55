import { ForbiddenError } from '../../errors.js';
import { isAdmin, type Principal } from '../auth/principal.js';
import type { Role } from './account.events.js';

/** The plan every self-signed-up account opens on (plans.ts requires one by this name). */
export const SIGNUP_PLAN = 'free';

/**
 * Who may open an account, with which roles and on which plan: an admin, with any roles on any plan; without a key,
 * anyone when self-signup is enabled, and then as a user on the free plan (whatever else was asked for: a paid plan's
 * limits are the operator's to give). A caller with a non-admin key may not open accounts for others.
 */
export const termsForNewAccount = (
  principal: Principal | null,
  requested: { readonly roles: readonly Role[]; readonly plan: string },
  selfSignup: boolean,
): { readonly roles: readonly Role[]; readonly plan: string } => {
  if (isAdmin(principal)) return requested;
  if (principal) throw new ForbiddenError('Only admins open accounts for others');
  if (!selfSignup) throw new ForbiddenError('Self-signup is disabled; ask an admin (SELF_SIGNUP=true enables it)');
  return { roles: ['user'], plan: SIGNUP_PLAN };
};

import { ForbiddenError } from '../../errors.js';
import { isAdmin, type Principal } from '../auth/principal.js';
import type { Role } from './account.events.js';

/**
 * Who may open an account, and with which roles: an admin, with any roles; without a key, anyone when self-signup
 * is enabled, and then as a user only. A caller with a non-admin key may not open accounts for others.
 */
export const rolesForNewAccount = (principal: Principal | null, requested: readonly Role[], selfSignup: boolean): readonly Role[] => {
  if (isAdmin(principal)) return requested;
  if (principal) throw new ForbiddenError('Only admins open accounts for others');
  if (!selfSignup) throw new ForbiddenError('Self-signup is disabled; ask an admin (SELF_SIGNUP=true enables it)');
  return ['user'];
};

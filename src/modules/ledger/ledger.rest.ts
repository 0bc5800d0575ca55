import { bearerOf, requirePrincipal, sendJson, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { KeyWindowUsage } from './ledger.js';
import type { LedgerApi } from './ledger.api.js';
import { toUsdNumber } from './money.js';

/** A key's usage and BYOK usage per window in dollars, as OpenRouter's key objects give them (`/api/v1/key`, `/api/v1/keys`). */
export const keyUsageJson = (usage: KeyWindowUsage, byokUsage: KeyWindowUsage) => ({
  usage: toUsdNumber(usage.lifetime),
  usage_daily: toUsdNumber(usage.daily),
  usage_weekly: toUsdNumber(usage.weekly),
  usage_monthly: toUsdNumber(usage.monthly),
  byok_usage: toUsdNumber(byokUsage.lifetime),
  byok_usage_daily: toUsdNumber(byokUsage.daily),
  byok_usage_weekly: toUsdNumber(byokUsage.weekly),
  byok_usage_monthly: toUsdNumber(byokUsage.monthly),
});

/** The exact `*_nanos` twins of keyUsageJson's fields. */
export const keyUsageNanosJson = (usage: KeyWindowUsage, byokUsage: KeyWindowUsage) => ({
  usage_nanos: usage.lifetime,
  usage_daily_nanos: usage.daily,
  usage_weekly_nanos: usage.weekly,
  usage_monthly_nanos: usage.monthly,
  byok_usage_nanos: byokUsage.lifetime,
  byok_usage_daily_nanos: byokUsage.daily,
  byok_usage_weekly_nanos: byokUsage.weekly,
  byok_usage_monthly_nanos: byokUsage.monthly,
});

/**
 * OpenRouter's account endpoints. Dollar fields are JSON numbers as OpenRouter sends them; each has an exact
 * integer `*_nanos` twin (nano-dollars), which is what to use for arithmetic.
 */
export const ledgerRoutes = (ledger: LedgerApi, auth: Pick<AuthDirectory, 'authenticate' | 'authenticateEitherKind'>): Route[] => [
  {
    method: 'GET',
    path: '/api/v1/credits',
    handler: async ({ req, res }) => {
      // OpenRouter asks for a management key here; an inference key of the account reads it too.
      const principal = auth.authenticateEitherKind(bearerOf(req));
      const b = await ledger.balance(principal.accountId);
      const totalCredits = b.purchased + b.granted - b.refunded;
      sendJson(res, 200, {
        data: {
          total_credits: toUsdNumber(totalCredits),
          total_usage: toUsdNumber(b.settled),
          total_credits_nanos: totalCredits,
          total_usage_nanos: b.settled,
          reserved_nanos: b.reserved,
          available_nanos: b.available,
        },
      });
    },
  },
  // `/api/v1/auth/key` is the older path of the same endpoint, still called by community OpenRouter clients.
  ...['/api/v1/key', '/api/v1/auth/key'].map((path): Route => ({
    method: 'GET',
    path,
    handler: async ({ req, res }) => {
      const { key, usage, byokUsage, limitRemaining: remaining, balance } = await ledger.keyReport(requirePrincipal(auth, req));
      const limit = key?.limit ?? null;
      sendJson(res, 200, {
        data: {
          // key is null only for the bootstrap admin key, which is no key of the store.
          label: key ? key.hint : 'bootstrap admin key',
          name: key ? key.name : null,
          limit: limit === null ? null : toUsdNumber(limit),
          limit_reset: !key || key.limitReset === 'never' ? null : key.limitReset,
          limit_remaining: remaining === null ? null : toUsdNumber(remaining),
          include_byok_in_limit: key?.includeByokInLimit ?? false,
          ...keyUsageJson(usage, byokUsage),
          is_free_tier: balance.lifetimePurchased === 0,
          expires_at: key?.expiresAt ? new Date(key.expiresAt).toISOString() : null,
          limit_nanos: limit,
          limit_remaining_nanos: remaining,
          ...keyUsageNanosJson(usage, byokUsage),
        },
      });
    },
  })),
];

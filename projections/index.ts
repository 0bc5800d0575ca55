import { accountsProjection } from './accounts.js';
import { apiKeysProjection } from './apiKeys.js';
import { balancesProjection } from './balances.js';
import type { Projection } from './projection.js';
import { usageDailyProjection } from './usageDaily.js';

/** Every read model the runner maintains. */
export const allProjections: readonly Projection[] = [accountsProjection, apiKeysProjection, balancesProjection, usageDailyProjection];

import { accountsProjection } from './accounts.js';
import { apiKeysProjection } from './apiKeys.js';
import type { Projection } from './projection.js';

/** Every read model the runner maintains. */
export const allProjections: readonly Projection[] = [accountsProjection, apiKeysProjection];

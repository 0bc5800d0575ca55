import { accountsProjection } from './accounts.js';
import { apiKeysProjection } from './apiKeys.js';
import { balancesProjection } from './balances.js';
import { endpointProposalsProjection, modelsProjection, providersProjection } from './catalog.js';
import { generationsProjection } from './generations.js';
import type { Projection } from './projection.js';
import { providerStatsProjection } from './providerStats.js';
import { usageDailyProjection } from './usageDaily.js';
import { usageOverReportsProjection } from './usageOverReports.js';
import { tableEntriesProjection, tablesProjection } from './tables.js';
import { workflowRunsProjection } from './workflowRuns.js';
import { workflowsProjection } from './workflows.js';

/** Every read model the runner maintains. */
export const allProjections: readonly Projection[] = [accountsProjection, apiKeysProjection, balancesProjection, usageDailyProjection,
  modelsProjection, providersProjection, endpointProposalsProjection, generationsProjection, providerStatsProjection, usageOverReportsProjection,
  workflowsProjection, workflowRunsProjection, tablesProjection, tableEntriesProjection];

/** Collections the embedded read store keeps on disk rather than in memory (they grow with traffic). */
export const diskCollections: readonly string[] = allProjections.filter((p) => p.onDisk).map((p) => p.collection);

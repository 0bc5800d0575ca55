import type { AccountsApi } from './accounts/account.api.js';
import type { ApiKeysApi } from './apiKeys/apiKey.api.js';
import type { CatalogApi } from './catalog/catalog.api.js';
import type { GenerationsApi } from './generations/generation.api.js';
import type { LedgerApi } from './ledger/ledger.api.js';
import type { PresetsApi } from './presets/presets.api.js';
import type { TablesApi } from './tables/tables.api.js';
import type { RunsApi } from './workflows/run.api.js';
import type { SecretsApi } from './workflows/secrets.js';
import type { WorkflowsApi } from './workflows/workflow.api.js';

/** Every module's application API, built once in the composition root (main.ts): what GraphQL, REST and the gateway call. */
export interface Modules {
  accounts: AccountsApi;
  apiKeys: ApiKeysApi;
  ledger: LedgerApi;
  catalog: CatalogApi;
  generations: GenerationsApi;
  workflows: WorkflowsApi;
  runs: RunsApi;
  tables: TablesApi;
  secrets: SecretsApi;
  presets: PresetsApi;
}

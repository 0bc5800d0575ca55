import type { LedgerApi } from './ledger/ledger.api.js';

/** Each capability's application API: what GraphQL, REST and the gateway call (built in main.ts). */
export interface Modules {
  ledger: LedgerApi;
}

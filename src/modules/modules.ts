import type { CatalogApi } from './catalog/catalog.api.js';

/** The modules' application APIs: what GraphQL, REST and the gateway call (built in src/main.ts). */
export interface Modules {
  readonly catalog: CatalogApi;
}

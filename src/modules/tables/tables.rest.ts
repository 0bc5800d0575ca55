import { parseJsonBody, readRequestBody, requirePrincipal, sendJson, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { WriteBudget } from '../auth/writeBudget.js';
import type { TablesApi } from './tables.api.js';

/**
 * REST for tables: add an entry with an API key of the account (the body is the entry, a JSON object); each takes one of
 * the account's writes (WRITES_PER_MINUTE).
 */
export const tableRoutes = (deps: { tables: TablesApi; directory: Pick<AuthDirectory, 'authenticate'>; maxBodyBytes: number; writes: WriteBudget }): Route[] => [
  {
    method: 'POST',
    path: '/api/v1/tables/:name/entries',
    handler: async ({ req, res, params, requestId }) => {
      const principal = requirePrincipal(deps.directory, req);
      deps.writes.take(principal);
      const entry = parseJsonBody(await readRequestBody(req, deps.maxBodyBytes));
      const created = await deps.tables.insertEntry({ principal, requestId }, params['name']!, entry);
      sendJson(res, 201, created);
    },
  },
];

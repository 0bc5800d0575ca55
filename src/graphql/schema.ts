import { builder } from './builder.js';
import '../modules/apiKeys/apiKey.graphql.js';
import '../modules/accounts/account.graphql.js';
import '../modules/ledger/ledger.graphql.js';
import '../modules/catalog/catalog.graphql.js';
import '../modules/generations/generation.graphql.js';
import '../modules/workflows/workflow.graphql.js';
import '../modules/workflows/run.graphql.js';
import '../modules/tables/tables.graphql.js';
import '../modules/workflows/run.progress.graphql.js';
import '../modules/workflows/secrets.graphql.js';
import '../modules/presets/presets.graphql.js';

export const schema = builder.toSchema({ sortSchema: true });

import { builder } from './builder.js';
import '../modules/apiKeys/apiKey.graphql.js';
import '../modules/accounts/account.graphql.js';

export const schema = builder.toSchema({ sortSchema: true });

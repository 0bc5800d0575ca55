import type { Core } from '../core.js';
import type { Principal } from '../modules/auth/principal.js';

export interface GraphQLContext {
  readonly principal: Principal | null;
  readonly core: Core;
  readonly requestId: string;
}

/** The context of a field whose scopes require a caller (scope-auth narrows to it: see AuthContexts in builder.ts). */
export interface AuthenticatedContext extends GraphQLContext {
  readonly principal: Principal;
}

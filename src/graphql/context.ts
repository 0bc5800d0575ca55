import type { Core } from '../core.js';
import type { Principal } from '../modules/auth/principal.js';
import type { Modules } from '../modules/modules.js';

/** The caller and the modules' APIs; `core` only while resolvers move onto the modules (issue 11). */
export interface GraphQLContext extends Modules {
  readonly principal: Principal | null;
  readonly core: Core;
  readonly requestId: string;
}

/** The context of a field whose scopes require a caller (scope-auth narrows to it: see AuthContexts in builder.ts). */
export interface AuthenticatedContext extends GraphQLContext {
  readonly principal: Principal;
}

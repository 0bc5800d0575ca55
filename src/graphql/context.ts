import type { Principal } from '../modules/auth/principal.js';
import type { Modules } from '../modules/modules.js';

/** The caller and the modules' application APIs: a resolver calls `ctx.<module>`, never the composition root. */
export type GraphQLContext = {
  readonly principal: Principal | null;
  readonly requestId: string;
} & Modules;

/** The context of a field whose scopes require a caller (scope-auth narrows to it: see AuthContexts in builder.ts). */
export type AuthenticatedContext = GraphQLContext & {
  readonly principal: Principal;
};

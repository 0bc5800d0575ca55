import type { Core } from '../core.js';
import type { Principal } from '../modules/auth/principal.js';

export interface GraphQLContext {
  readonly principal: Principal | null;
  readonly core: Core;
  readonly requestId: string;
}

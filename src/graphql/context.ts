import type { Principal } from '../modules/auth/principal.js';
import type { Modules } from '../modules/modules.js';

/** The caller and the modules' application APIs: a resolver calls `ctx.<module>`, never the composition root. */
export type GraphQLContext = {
  readonly principal: Principal | null;
  readonly requestId: string;
  /**
   * The accounts this request opened without a key (self-signup): the caller holds their first key's secret, so the
   * answer shows it the account and key it opened as to their owner (ownership.ts `readsAccount`). This request only.
   */
  readonly openedAccounts: Set<string>;
  /** The client's address as the socket has it (no proxy header is trusted): what self-signup is limited by. */
  readonly clientAddress: string | null;
} & Modules;

/** The context of a field whose scopes require a caller (scope-auth narrows to it: see AuthContexts in builder.ts). */
export type AuthenticatedContext = GraphQLContext & {
  readonly principal: Principal;
};

import type { Role } from '../accounts/account.events.js';

/** Who is calling: resolved from the bearer key on every request. */
export interface Principal {
  readonly accountId: string;
  /** Null for the bootstrap admin key from ADMIN_API_KEY, which is not an API key of the store. */
  readonly keyId: string | null;
  readonly roles: ReadonlySet<Role>;
}

export const ROOT_ACCOUNT_ID = 'acc_root';

export const isAdmin = (principal: Principal | null): boolean => principal?.roles.has('admin') ?? false;

/** Who is calling and the request's id: what a command needs to authorize and to record in its events' metadata. */
export interface Caller {
  readonly principal: Principal | null;
  readonly requestId: string;
}

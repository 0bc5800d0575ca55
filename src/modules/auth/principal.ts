import { ForbiddenError } from '../../errors.js';
import type { Role } from '../accounts/account.events.js';

/** Who is calling: resolved from the bearer key on every request. */
export interface Principal {
  readonly accountId: string;
  /** Null for the bootstrap admin key from ADMIN_API_KEY, which is not an API key of the store. */
  readonly keyId: string | null;
  readonly roles: ReadonlySet<Role>;
  /**
   * A key with a spending limit, or one issued to an app: it may call models and read, but not run the account, for it
   * could lift its own limit. Its `roles` hold at most `user` (no admin, provider or designer work), and the account's
   * administration (keys, app authorizations, purchases, settings, presets) refuses it (GraphQL's `fullKey` scope,
   * REST's `requireFullKey`). Absent: false.
   */
  readonly restricted?: boolean;
}

export const ROOT_ACCOUNT_ID = 'acc_root';

export const isAdmin = (principal: Principal | null): boolean => principal?.roles.has('admin') ?? false;

/**
 * Whether the caller holds the role (an admin holds every one). The roles are the account's live set, resolved with the
 * key: a role granted or revoked counts from the next call, for keys already issued too.
 */
export const hasRole = (principal: Principal | null, role: Role): boolean => principal !== null && (principal.roles.has(role) || principal.roles.has('admin'));

/** The refusal of a call that needs a role the caller's account does not hold (403 / FORBIDDEN, naming the role). */
export const missingRole = (role: Role): ForbiddenError =>
  new ForbiddenError(`This account does not have the role ${role}, which this needs (an admin grants roles: grantRole)`, { missing_role: role });

/** Why `principal` does not hold `role`: its account lacks it, or its key is restricted (which keeps only `user`). */
export const refusedRole = (principal: Principal, role: Role): ForbiddenError => (principal.restricted === true && role !== 'user' ? restrictedKey() : missingRole(role));

/** The principal, when it holds the role; else the refusal naming it. */
export const requireRole = (principal: Principal, role: Role): Principal => {
  if (!hasRole(principal, role)) throw refusedRole(principal, role);
  return principal;
};

/** The refusal of a restricted key (`Principal.restricted`) where the account is run. */
export const restrictedKey = (): ForbiddenError =>
  new ForbiddenError(
    "This key has a spending limit or was issued to an app: it can call models, but managing keys, authorizing apps, buying credits, the account's settings and presets, workflows and provider or admin work need a key of the account without a limit",
    { restricted_key: true },
  );

/** The principal, when its key is not restricted (`Principal.restricted`); else the refusal saying why. REST's `fullKey` scope. */
export const requireFullKey = (principal: Principal): Principal => {
  if (principal.restricted === true) throw restrictedKey();
  return principal;
};

/**
 * The one API key whose records a principal may see, when it may see only its own: a restricted key (a spending limit,
 * or issued to an app) sees the workflow runs it started or caused and the table entries it (or those runs) wrote,
 * never another key's; undefined for a full key (the whole account's). `''` (no key) matches nothing.
 */
export const onlyOwnKey = (principal: Principal): string | undefined => (principal.restricted === true ? (principal.keyId ?? '') : undefined);

/** Who is calling and the request's id: what a command needs to authorize and to record in its events' metadata. */
export interface Caller {
  readonly principal: Principal | null;
  readonly requestId: string;
}

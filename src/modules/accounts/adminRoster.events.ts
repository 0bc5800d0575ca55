/**
 * The `adminroster-platform` aggregate: one stream that every ADMIN grant and revoke is decided on first, at its
 * expected revision, before the account's own RoleGranted / RoleRevoked. Whether the caller is still an admin, and
 * whether the account holds the role, are read there, so two admins demoting each other at the same time are decided
 * one after the other, in this process or another (QA s44 liveops #4): the second finds its caller demoted.
 */
export type AdminRoleChanged = {
  readonly type: 'AdminRoleChanged';
  readonly data: { readonly accountId: string; readonly admin: boolean; readonly decidedBy: string | null; readonly at: string };
};
export type AdminRosterEvent = AdminRoleChanged;

export const ADMIN_ROSTER_STREAM = 'adminroster-platform';

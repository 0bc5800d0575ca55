import { ForbiddenError, NotFoundError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { ROOT_ACCOUNT_ID } from '../auth/principal.js';
import { refuseAdminRevocation } from './account.decider.js';
import type { AdminRosterEvent } from './adminRoster.events.js';

/**
 * Whether each account the roster has decided on holds ADMIN now, and the revision of that decision (the stream is
 * folded from its start, so the count of events folded is the next one's revision); an account it never decided on:
 * its own stream says.
 */
export interface AdminRosterState {
  readonly events: number;
  readonly accounts: ReadonlyMap<string, { readonly admin: boolean; readonly revision: number }>;
}

export type AdminRosterCommand = {
  readonly type: 'ChangeAdminRole';
  readonly data: {
    readonly accountId: string;
    readonly admin: boolean;
    /** Null: the system (no key). */
    readonly actorAccountId: string | null;
    /**
     * What the account streams said when the command was made (whether each is open and holds ADMIN). Used only for
     * an account the roster has never decided on: its ADMIN changed before the roster existed or when it was opened,
     * so it cannot have changed since without an event here, which the expected revision would catch.
     */
    readonly streams: { readonly actorAdmin: boolean; readonly accountOpen: boolean; readonly accountAdmin: boolean };
    readonly at: string;
  };
};

export const adminRosterDecider: Decider<AdminRosterState, AdminRosterCommand, AdminRosterEvent> = {
  initialState: () => ({ events: 0, accounts: new Map() }),
  evolve: (state, event) => ({ events: state.events + 1, accounts: new Map(state.accounts).set(event.data.accountId, { admin: event.data.admin, revision: state.events }) }),
  decide: (command, state) => {
    const { accountId, admin, actorAccountId, streams, at } = command.data;
    // The bootstrap admin is one by configuration (ADMIN_API_KEY): its role cannot be revoked (refuseAdminRevocation).
    const holds = (id: string, recorded: boolean) => id === ROOT_ACCOUNT_ID || (state.accounts.get(id)?.admin ?? recorded);
    if (actorAccountId !== null && !holds(actorAccountId, streams.actorAdmin)) {
      throw new ForbiddenError('This account is no longer an admin: its admin role was revoked while this request was under way', { missing_role: 'admin' });
    }
    if (!streams.accountOpen) throw new NotFoundError('Account', accountId);
    if (!admin) refuseAdminRevocation(accountId, actorAccountId);
    return holds(accountId, streams.accountAdmin) === admin ? [] : [{ type: 'AdminRoleChanged', data: { accountId, admin, decidedBy: actorAccountId, at } }];
  },
};

import { describe, expect, it } from 'vitest';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../src/errors.js';
import { accountDecider } from '../../src/modules/accounts/account.decider.js';
import type { AccountEvent } from '../../src/modules/accounts/account.events.js';
import { adminRosterDecider, type AdminRosterCommand } from '../../src/modules/accounts/adminRoster.decider.js';
import type { AdminRosterEvent } from '../../src/modules/accounts/adminRoster.events.js';
import { apiKeyDecider } from '../../src/modules/apiKeys/apiKey.decider.js';
import type { ApiKeyEvent } from '../../src/modules/apiKeys/apiKey.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const at = '2026-11-25T10:00:00.000Z';
const account = deciderSpec(accountDecider);
const opened: AccountEvent = { type: 'AccountOpened', data: { accountId: 'acc_1', name: 'Ada', email: null, roles: ['user'], plan: 'free', at } };

describe('account decider', () => {
  it('opens an account once', () => {
    account([]).when({ type: 'OpenAccount', data: { ...opened.data } }).then([opened]);
    account([opened]).when({ type: 'OpenAccount', data: { ...opened.data } }).thenThrows(ConflictError, /already exists/);
  });
  it('removes duplicate roles when opening', () => {
    account([])
      .when({ type: 'OpenAccount', data: { ...opened.data, roles: ['user', 'user', 'admin'] } })
      .then([{ type: 'AccountOpened', data: { ...opened.data, roles: ['user', 'admin'] } }]);
  });
  it('grants a role, and granting it again records nothing', () => {
    const granted: AccountEvent = { type: 'RoleGranted', data: { accountId: 'acc_1', role: 'designer', at } };
    account([opened]).when({ type: 'GrantRole', data: granted.data }).then([granted]);
    account([opened, granted]).when({ type: 'GrantRole', data: granted.data }).then([]);
  });
  it('refuses changes to an account that does not exist', () => {
    account([]).when({ type: 'GrantRole', data: { accountId: 'acc_x', role: 'admin', at } }).thenThrows(NotFoundError);
    account([]).when({ type: 'ChangePlan', data: { accountId: 'acc_x', plan: 'pro', at } }).thenThrows(NotFoundError);
  });
  it('revokes a held role; an admin cannot revoke its own admin role', () => {
    const admin: AccountEvent = { type: 'AccountOpened', data: { ...opened.data, roles: ['admin', 'user'] } };
    account([admin])
      .when({ type: 'RevokeRole', data: { accountId: 'acc_1', role: 'user', actorAccountId: 'acc_root', at } })
      .then([{ type: 'RoleRevoked', data: { accountId: 'acc_1', role: 'user', at } }]);
    account([admin]).when({ type: 'RevokeRole', data: { accountId: 'acc_1', role: 'admin', actorAccountId: 'acc_1', at } }).thenThrows(ConflictError, /own admin/);
    account([opened]).when({ type: 'RevokeRole', data: { accountId: 'acc_1', role: 'designer', actorAccountId: 'acc_root', at } }).then([]);
  });
  it("refuses revoking the bootstrap admin's admin role, which comes from configuration", () => {
    const root: AccountEvent = { type: 'AccountOpened', data: { ...opened.data, accountId: 'acc_root', roles: ['admin'] } };
    account([root]).when({ type: 'RevokeRole', data: { accountId: 'acc_root', role: 'admin', actorAccountId: 'acc_2', at } }).thenThrows(ValidationError, /configuration/);
  });
  it("records ADMIN changes decided on the admin roster in the roster's order, whichever arrives first", () => {
    const admin: AccountEvent = { type: 'AccountOpened', data: { ...opened.data, roles: ['admin', 'user'] } };
    const revoke = (rosterRevision: number) => ({ type: 'RevokeRole' as const, data: { accountId: 'acc_1', role: 'admin' as const, actorAccountId: 'acc_2', at, rosterRevision } });
    const grant = (rosterRevision: number) => ({ type: 'GrantRole' as const, data: { accountId: 'acc_1', role: 'admin' as const, at, rosterRevision } });
    // The grant decided later (6) arrives first, on an account that still holds ADMIN: recorded all the same.
    account([admin]).when(grant(6)).then([{ type: 'RoleGranted', data: grant(6).data }]);
    // The revoke decided before it (5) then arrives: stale, nothing recorded.
    account([admin, { type: 'RoleGranted', data: grant(6).data }]).when(revoke(5)).then([]);
    account([admin, { type: 'RoleGranted', data: grant(6).data }]).when(revoke(7)).then([{ type: 'RoleRevoked', data: { accountId: 'acc_1', role: 'admin', at, rosterRevision: 7 } }]);
    // Nothing decided on the roster (-1): the account already says it.
    account([admin]).when(grant(-1)).then([]);
  });
  it('turns input & output logging on and off, recording only a change', () => {
    const on: AccountEvent = { type: 'ContentLoggingChanged', data: { accountId: 'acc_1', enabled: true, at } };
    const off: AccountEvent = { type: 'ContentLoggingChanged', data: { accountId: 'acc_1', enabled: false, at } };
    account([opened]).when({ type: 'SetContentLogging', data: on.data }).then([on]);
    account([opened]).when({ type: 'SetContentLogging', data: off.data }).then([]);
    account([opened, on]).when({ type: 'SetContentLogging', data: on.data }).then([]);
    account([opened, on]).when({ type: 'SetContentLogging', data: off.data }).then([off]);
    account([]).when({ type: 'SetContentLogging', data: { ...on.data, accountId: 'acc_x' } }).thenThrows(NotFoundError);
  });
  it('sets and clears the default model, recording only a change', () => {
    const set: AccountEvent = { type: 'DefaultModelChanged', data: { accountId: 'acc_1', model: 'openai/gpt-4o:free', at } };
    const cleared: AccountEvent = { type: 'DefaultModelChanged', data: { accountId: 'acc_1', model: null, at } };
    account([opened]).when({ type: 'SetDefaultModel', data: set.data }).then([set]);
    account([opened]).when({ type: 'SetDefaultModel', data: cleared.data }).then([]);
    account([opened, set]).when({ type: 'SetDefaultModel', data: set.data }).then([]);
    account([opened, set]).when({ type: 'SetDefaultModel', data: cleared.data }).then([cleared]);
    account([]).when({ type: 'SetDefaultModel', data: { ...set.data, accountId: 'acc_x' } }).thenThrows(NotFoundError);
  });
  it('sets the provider lists, keeps a list the command leaves out, and clears them to none, recording only a change', () => {
    const changed = (preferences: { ignore: string[]; allow: string[] } | null): AccountEvent => ({ type: 'ProviderPreferencesChanged', data: { accountId: 'acc_1', preferences, at } });
    const ignoring = changed({ ignore: ['slow'], allow: [] });
    const both = changed({ ignore: ['slow'], allow: ['fast', 'cheap'] });
    account([opened]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', ignore: ['slow'], at } }).then([ignoring]);
    account([opened]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', ignore: [], allow: [], at } }).then([]);
    // The allow list alone: the ignore list stays.
    account([opened, ignoring]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', allow: ['fast', 'cheap'], at } }).then([both]);
    account([opened, both]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', ignore: ['slow'], allow: ['fast', 'cheap'], at } }).then([]);
    account([opened, both]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', at } }).then([]);
    account([opened, both]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', allow: ['cheap', 'fast'], at } }).then([changed({ ignore: ['slow'], allow: ['cheap', 'fast'] })]);
    // Two empty lists are none at all.
    account([opened, both]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', ignore: [], allow: [], at } }).then([changed(null)]);
    account([opened, ignoring]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_1', ignore: [], at } }).then([changed(null)]);
    account([]).when({ type: 'SetProviderPreferences', data: { accountId: 'acc_x', ignore: ['slow'], at } }).thenThrows(NotFoundError);
  });
  it('changes the plan only when it differs', () => {
    account([opened]).when({ type: 'ChangePlan', data: { accountId: 'acc_1', plan: 'pro', at } }).then([{ type: 'PlanChanged', data: { accountId: 'acc_1', plan: 'pro', at } }]);
    account([opened]).when({ type: 'ChangePlan', data: { accountId: 'acc_1', plan: 'free', at } }).then([]);
  });
});

const key = deciderSpec(apiKeyDecider);
const created: ApiKeyEvent = {
  type: 'ApiKeyCreated',
  data: { keyId: 'key_1', accountId: 'acc_1', name: 'ci', hash: 'h', hint: 'sk-sy-v1-abc…wxyz', limit: null, limitReset: 'never', expiresAt: null, at },
};
const revoked: ApiKeyEvent = { type: 'ApiKeyRevoked', data: { keyId: 'key_1', at } };
const disabled: ApiKeyEvent = { type: 'ApiKeyDisabled', data: { keyId: 'key_1', at } };

describe('API key decider', () => {
  it('creates a key once', () => {
    key([]).when({ type: 'CreateApiKey', data: created.data }).then([created]);
    key([created]).when({ type: 'CreateApiKey', data: created.data }).thenThrows(ConflictError);
  });
  it('renames and changes limits, recording nothing when unchanged', () => {
    key([created]).when({ type: 'RenameApiKey', data: { keyId: 'key_1', name: 'prod', at } }).then([{ type: 'ApiKeyRenamed', data: { keyId: 'key_1', name: 'prod', at } }]);
    key([created]).when({ type: 'RenameApiKey', data: { keyId: 'key_1', name: 'ci', at } }).then([]);
    key([created])
      .when({ type: 'SetApiKeyLimit', data: { keyId: 'key_1', limit: 5_000_000_000, limitReset: 'daily', at } })
      .then([{ type: 'ApiKeyLimitChanged', data: { keyId: 'key_1', limit: 5_000_000_000, limitReset: 'daily', at } }]);
    key([created]).when({ type: 'SetApiKeyLimit', data: { keyId: 'key_1', limit: null, limitReset: 'never', at } }).then([]);
  });
  it('sets and clears the expiry, recording nothing when unchanged', () => {
    const expiry = { type: 'ApiKeyExpiryChanged' as const, data: { keyId: 'key_1', expiresAt: '2030-01-01T00:00:00.000Z', at } };
    key([created]).when({ type: 'SetApiKeyExpiry', data: expiry.data }).then([expiry]);
    key([created, expiry]).when({ type: 'SetApiKeyExpiry', data: expiry.data }).then([]);
    key([created, expiry]).when({ type: 'SetApiKeyExpiry', data: { keyId: 'key_1', expiresAt: null, at } }).then([{ type: 'ApiKeyExpiryChanged', data: { keyId: 'key_1', expiresAt: null, at } }]);
  });
  it('disables, enables, and is idempotent about it', () => {
    key([created]).when({ type: 'DisableApiKey', data: { keyId: 'key_1', at } }).then([disabled]);
    key([created, disabled]).when({ type: 'DisableApiKey', data: { keyId: 'key_1', at } }).then([]);
    key([created, disabled]).when({ type: 'EnableApiKey', data: { keyId: 'key_1', at } }).then([{ type: 'ApiKeyEnabled', data: { keyId: 'key_1', at } }]);
    key([created]).when({ type: 'EnableApiKey', data: { keyId: 'key_1', at } }).then([]);
  });
  it('revocation is final, and revoking again is a no-op', () => {
    key([created]).when({ type: 'RevokeApiKey', data: { keyId: 'key_1', at } }).then([revoked]);
    key([created, revoked]).when({ type: 'RevokeApiKey', data: { keyId: 'key_1', at } }).then([]);
    key([created, revoked]).when({ type: 'EnableApiKey', data: { keyId: 'key_1', at } }).thenThrows(ConflictError, /revoked/);
    key([created, revoked]).when({ type: 'RenameApiKey', data: { keyId: 'key_1', name: 'x', at } }).thenThrows(ConflictError, /revoked/);
  });
  it('refuses changes to a key that does not exist', () => {
    key([]).when({ type: 'RevokeApiKey', data: { keyId: 'key_9', at } }).thenThrows(NotFoundError);
    key([]).when({ type: 'DisableApiKey', data: { keyId: 'key_9', at } }).thenThrows(NotFoundError);
  });
  it('reads a key created before key kinds existed as an inference key, and keeps a management key one', () => {
    const kindAfter = (event: ApiKeyEvent) => {
      const state = apiKeyDecider.evolve(apiKeyDecider.initialState(), event);
      return state.status === 'none' ? null : state.kind;
    };
    expect(kindAfter(created)).toBe('inference');
    expect(kindAfter({ type: 'ApiKeyCreated', data: { ...created.data, kind: 'management' } })).toBe('management');
  });
});

describe('admin roster decider', () => {
  const roster = deciderSpec(adminRosterDecider);
  const streams = { actorAdmin: true, accountOpen: true, accountAdmin: true };
  const change = (accountId: string, admin: boolean, actorAccountId: string | null, over: Partial<typeof streams> = {}): AdminRosterCommand => ({
    type: 'ChangeAdminRole',
    data: { accountId, admin, actorAccountId, streams: { ...streams, ...over }, at },
  });
  const changed = (accountId: string, admin: boolean, decidedBy: string | null): AdminRosterEvent => ({ type: 'AdminRoleChanged', data: { accountId, admin, decidedBy, at } });

  it('decides a revoke on what it recorded: an admin demoted meanwhile can no longer demote (two admins demoting each other)', () => {
    roster([]).when(change('acc_b', false, 'acc_a')).then([changed('acc_b', false, 'acc_a')]);
    // acc_b's account stream may still say admin (its RoleRevoked not yet appended): the roster's record wins.
    roster([changed('acc_b', false, 'acc_a')]).when(change('acc_a', false, 'acc_b')).thenThrows(ForbiddenError, /no longer an admin/);
    roster([changed('acc_b', false, 'acc_a'), changed('acc_b', true, 'acc_root')]).when(change('acc_a', false, 'acc_b')).then([changed('acc_a', false, 'acc_b')]);
  });
  it('reads an account it never decided on from its stream, and records only a change', () => {
    roster([]).when(change('acc_b', false, 'acc_a', { actorAdmin: false })).thenThrows(ForbiddenError);
    roster([]).when(change('acc_b', false, 'acc_a', { accountAdmin: false })).then([]);
    roster([]).when(change('acc_b', true, 'acc_a', { accountAdmin: false })).then([changed('acc_b', true, 'acc_a')]);
    roster([]).when(change('acc_b', true, 'acc_a')).then([]);
    roster([]).when(change('acc_x', true, 'acc_a', { accountOpen: false })).thenThrows(NotFoundError);
  });
  it("refuses an admin's own revoke and the bootstrap admin's; the bootstrap admin and the system always decide", () => {
    roster([]).when(change('acc_a', false, 'acc_a')).thenThrows(ConflictError, /own admin/);
    roster([]).when(change('acc_root', false, 'acc_a')).thenThrows(ValidationError, /configuration/);
    roster([]).when(change('acc_b', false, 'acc_root', { actorAdmin: false })).then([changed('acc_b', false, 'acc_root')]);
    roster([]).when(change('acc_b', false, null, { actorAdmin: false })).then([changed('acc_b', false, null)]);
  });
});

/**
 * Who holds ADMIN, through GraphQL of the started app (QA s44 liveops #4 and #5): two admins demoting each other at
 * the same time cannot both succeed (no order of the two requests allows it), and the bootstrap admin's role, which
 * comes from configuration, is not reported revoked while it is not.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountStream } from '../../src/modules/accounts/account.events.js';
import { ROOT_ACCOUNT_ID } from '../../src/modules/auth/principal.js';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

const OPEN = `mutation($name: String!) { openAccount(name: $name, roles: [USER, ADMIN]) {
  ... on OpenAccountPayload { account { id } initialKey { secret } } ... on DomainError { code message } } }`;
const REVOKE = `mutation($id: ID!) { revokeRole(accountId: $id, role: ADMIN) {
  __typename ... on Account { id roles } ... on DomainError { code message details } } }`;
const GRANT = `mutation($id: ID!) { grantRole(accountId: $id, role: ADMIN) { __typename ... on Account { roles } ... on DomainError { code message } } }`;
const ROLES = 'query($id: ID!) { account(id: $id) { roles } }';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
/** The data directory of a harness started again on it, which its stop leaves. */
let restartedDir: string | null = null;
afterAll(async () => {
  await h.stop();
  if (restartedDir) rmSync(restartedDir, { recursive: true, force: true });
});

const openAdmin = async (name: string) => {
  const { body } = await h.gql(OPEN, { name });
  expect(body.data.openAccount.account, JSON.stringify(body)).toBeDefined();
  return { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
};
const rolesOf = async (id: string) => (await h.gql(ROLES, { id })).body.data.account.roles as string[];

describe('two admins demoting each other at once', () => {
  it('one after the other: the second is no longer an admin and is refused', async () => {
    const [a, b] = [await openAdmin('Seq A'), await openAdmin('Seq B')];
    expect((await h.gql(REVOKE, { id: b.id }, a.key)).body.data.revokeRole).toEqual({ __typename: 'Account', id: b.id, roles: ['USER'] });
    const second = await h.gql(REVOKE, { id: a.id }, b.key);
    expect(second.body.errors[0].extensions).toMatchObject({ code: 'FORBIDDEN', missing_role: 'admin' });
    expect(await rolesOf(a.id)).toEqual(['USER', 'ADMIN']);
  });

  it('at the same time: exactly one succeeds, the other is FORBIDDEN, and its caller stays an admin (QA: both succeeded, 6 of 6)', async () => {
    for (let round = 0; round < 6; round++) {
      const [a, b] = [await openAdmin(`A${round}`), await openAdmin(`B${round}`)];
      const answers = (await Promise.all([h.gql(REVOKE, { id: b.id }, a.key), h.gql(REVOKE, { id: a.id }, b.key)])).map((r) => r.body);
      const won = answers.filter((body) => body.data?.revokeRole?.__typename === 'Account');
      expect(won, JSON.stringify(answers)).toHaveLength(1);
      // The loser found itself demoted when the change was decided (or, started a little later, at the edge already).
      const lost = answers.find((body) => body.data?.revokeRole?.__typename !== 'Account');
      const refusal = lost.data?.revokeRole ?? { __typename: 'DomainError', code: lost.errors?.[0]?.extensions.code, details: lost.errors?.[0]?.extensions };
      expect(refusal, JSON.stringify(lost)).toMatchObject({ __typename: 'DomainError', code: 'FORBIDDEN', details: { missing_role: 'admin' } });
      const winner = won[0].data.revokeRole.id === b.id ? a : b;
      const loser = winner === a ? b : a;
      expect(await rolesOf(winner.id)).toEqual(['USER', 'ADMIN']);
      expect(await rolesOf(loser.id)).toEqual(['USER']);
    }
  });

  it('a grant and a revoke of one account at the same time leave its role and the deciding view agreeing', async () => {
    for (let round = 0; round < 8; round++) {
      const [a, b, x, d] = [await openAdmin(`GA${round}`), await openAdmin(`GB${round}`), await openAdmin(`GX${round}`), await openAdmin(`GD${round}`)];
      const [revoked, granted] = await Promise.all([h.gql(REVOKE, { id: x.id }, a.key), h.gql(GRANT, { id: x.id }, b.key)]);
      expect(revoked.body.data.revokeRole.__typename, JSON.stringify(revoked.body)).toBe('Account');
      expect(granted.body.data.grantRole.__typename, JSON.stringify(granted.body)).toBe('Account');
      if (!(await rolesOf(x.id)).includes('ADMIN')) {
        expect((await h.gql(GRANT, { id: x.id })).body.data.grantRole.roles, `round ${round}: granted again`).toEqual(['USER', 'ADMIN']);
      }
      // What the account says is what the next decision reads: an admin, X demotes D.
      expect((await h.gql(REVOKE, { id: d.id }, x.key)).body.data.revokeRole, `round ${round}`).toEqual({ __typename: 'Account', id: d.id, roles: ['USER'] });
    }
  });

  it('a demoted admin granted ADMIN again may demote others again', async () => {
    const [a, b] = [await openAdmin('Again A'), await openAdmin('Again B')];
    expect((await h.gql(REVOKE, { id: b.id }, a.key)).body.data.revokeRole.__typename).toBe('Account');
    expect((await h.gql(GRANT, { id: b.id })).body.data.grantRole.roles).toEqual(['USER', 'ADMIN']);
    expect((await h.gql(REVOKE, { id: a.id }, b.key)).body.data.revokeRole).toEqual({ __typename: 'Account', id: a.id, roles: ['USER'] });
  });
});

describe("the bootstrap admin's role", () => {
  it('cannot be revoked through the API: it comes from configuration (QA: answered roles [] while the key stayed an admin)', async () => {
    const c = await openAdmin('Carol');
    const answer = (await h.gql(REVOKE, { id: ROOT_ACCOUNT_ID }, c.key)).body.data.revokeRole;
    expect(answer).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringContaining('configuration') });
    expect(answer.details).toMatchObject({ field: 'accountId' });
    expect(await rolesOf(ROOT_ACCOUNT_ID)).toEqual(['ADMIN']);
    const { body } = await h.gql('{ me { roles } currentKey { roles } }', {}, ADMIN_KEY);
    expect(body.data).toEqual({ me: { roles: ['ADMIN'] }, currentKey: { roles: ['ADMIN'] } });
    // Its own attempt stays the CONFLICT every admin gets for demoting itself.
    expect((await h.gql(REVOKE, { id: ROOT_ACCOUNT_ID }, ADMIN_KEY)).body.data.revokeRole).toMatchObject({ code: 'CONFLICT' });
  });

  it('revoked by an earlier version, it is given back at the next start', async () => {
    // What revokeRole(acc_root, ADMIN) recorded before it was refused.
    await h.running.core.eventStore.append(accountStream(ROOT_ACCOUNT_ID), [{ type: 'RoleRevoked', data: { accountId: ROOT_ACCOUNT_ID, role: 'admin', at: new Date().toISOString() } }]);
    expect(await eventually('the revoke read', async () => (await rolesOf(ROOT_ACCOUNT_ID)).length === 0)).toBe(true);
    const dataDir = h.dataDir;
    await h.stop({ keepData: true });
    h = await startHarness({}, dataDir);
    restartedDir = dataDir;
    expect(await eventually('ADMIN given back', async () => (await rolesOf(ROOT_ACCOUNT_ID)).includes('ADMIN'))).toBe(true);
  });
});


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


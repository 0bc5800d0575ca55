import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';

// Commands answer with what they decided. With the projection runner held back, no read model holds the new account
// or key, yet every mutation answers in full: the secret is never lost to a lagging read side.

const OPEN = `mutation($name: String!, $email: String, $roles: [Role!]) {
  openAccount(name: $name, email: $email, roles: $roles) {
    __typename
    ... on OpenAccountPayload {
      account { id name email roles plan openedAt updatedAt }
      initialKey { secret key { id name hint status limit limitReset expiresAt createdAt updatedAt } }
    }
    ... on DomainError { code message }
  }
}`;
const CREATE = `mutation($name: String!, $limit: Money, $limitReset: LimitReset, $expiresAt: DateTime) {
  createApiKey(name: $name, limit: $limit, limitReset: $limitReset, expiresAt: $expiresAt) {
    __typename
    ... on CreatedApiKey { secret key { id name hint status limit limitReset expiresAt } }
    ... on DomainError { code message }
  }
}`;
const CHANGE_PLAN = `mutation($id: ID!, $plan: String!) { changePlan(accountId: $id, plan: $plan) { __typename ... on Account { id plan roles } ... on DomainError { code message } } }`;
const KEY_FIELDS = '__typename ... on ApiKey { id name status limit limitReset } ... on DomainError { code message }';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ SELF_SIGNUP: 'true' });
});
afterEach(async () => {
  await h.running.core.runner.resume();
});
afterAll(async () => {
  await h.stop();
});

const credits = (key: string) => fetch(`${h.url}/api/v1/credits`, { headers: { authorization: `Bearer ${key}` } });
/** The read models trail the event log: the runner is really held back. */
const readModelsBehind = async () => h.running.core.runner.position < (await h.running.core.eventStore.headPosition());

describe('commands while the read models are held back', () => {
  it('openAccount answers with the account and its first key, whose secret works at once', async () => {
    await h.running.core.runner.pause();
    const { body } = await h.gql(OPEN, { name: 'Ada', email: 'ada@example.com', roles: ['USER', 'DESIGNER'] });
    expect(body.errors).toBeUndefined();
    const payload = body.data.openAccount;
    expect(payload).toMatchObject({
      __typename: 'OpenAccountPayload',
      account: { name: 'Ada', email: 'ada@example.com', roles: ['USER', 'DESIGNER'], plan: 'free' },
      initialKey: { key: { name: 'default', status: 'ACTIVE', limit: null, limitReset: 'NEVER', expiresAt: null } },
    });
    expect(payload.account.id).toMatch(/^acc_/);
    expect(payload.account.openedAt).toBe(payload.account.updatedAt);
    expect(payload.initialKey.secret).toMatch(/^sk-sy-v1-/);
    expect(payload.initialKey.key.hint).toBe(`${payload.initialKey.secret.slice(0, 12)}…${payload.initialKey.secret.slice(-4)}`);
    // The auth directory is write-side: the new key is accepted before any read model has seen it.
    expect((await credits(payload.initialKey.secret)).status).toBe(200);
    expect(await readModelsBehind()).toBe(true);
  });

  it('self-signup answers with the first key of a user account on the free plan, whatever roles and plan were asked for', async () => {
    await h.running.core.runner.pause();
    // Without a key the caller holds the new key's secret: it reads the account and key it opened as their owner does,
    // in this answer only (an error there would null the whole answer, and the secret with it).
    const signup = `mutation { openAccount(name: "Eve", roles: [ADMIN, PROVIDER], plan: "pro") { __typename ... on OpenAccountPayload {
      account { id name roles plan contentLogging balance { available } }
      initialKey { secret key { id name hint status limit } } } } }`;
    const { body } = await h.gql(signup, {}, null);
    expect(body.errors).toBeUndefined();
    const secret: string = body.data.openAccount.initialKey.secret;
    expect(body.data.openAccount).toMatchObject({
      account: { id: expect.stringMatching(/^acc_/), name: 'Eve', roles: ['USER'], plan: 'free', contentLogging: false, balance: { available: 0 } },
      initialKey: { key: { id: expect.stringMatching(/^key_/), name: 'default', hint: `${secret.slice(0, 12)}…${secret.slice(-4)}`, status: 'ACTIVE', limit: null } },
    });
    expect((await credits(secret)).status).toBe(200);
    // Only in that answer: another request without a key reads neither.
    const { id } = body.data.openAccount.account as { id: string };
    for (const [field, of] of [['account', id], ['apiKey', body.data.openAccount.initialKey.key.id as string]] as const) {
      const later = await h.gql(`query($id: ID!) { ${field}(id: $id) { id } }`, { id: of }, null);
      expect(later.body.data).toBeNull();
      expect(later.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    // A key of a non-admin account cannot open accounts for others.
    const byUser = await h.gql(OPEN, { name: 'Eve 2' }, secret);
    expect(byUser.body.data.openAccount).toMatchObject({ __typename: 'DomainError', code: 'FORBIDDEN', message: 'Only admins open accounts for others' });
    await h.running.core.runner.resume();
    expect((await h.gql('{ me { name roles plan } }', {}, secret)).body.data.me).toEqual({ name: 'Eve', roles: ['USER'], plan: 'free' });
  });

  it('createApiKey answers with the key and its secret, and changes to the key answer with the changed key', async () => {
    await h.running.core.runner.resume();
    const opened = (await h.gql(OPEN, { name: 'Grace' })).body.data.openAccount;
    const userKey: string = opened.initialKey.secret;
    await h.running.core.runner.pause();

    const created = (await h.gql(CREATE, { name: 'ci', limit: 5_000_000_000, limitReset: 'DAILY', expiresAt: '2999-01-01T00:00:00.000Z' }, userKey)).body.data.createApiKey;
    expect(created).toMatchObject({
      __typename: 'CreatedApiKey',
      key: { name: 'ci', status: 'ACTIVE', limit: 5_000_000_000, limitReset: 'DAILY', expiresAt: '2999-01-01T00:00:00.000Z' },
    });
    expect(created.secret).toMatch(/^sk-sy-v1-/);
    expect((await credits(created.secret)).status).toBe(200);

    const id = created.key.id as string;
    const renamed = await h.gql(`mutation($id: ID!) { renameApiKey(id: $id, name: "deploy") { ${KEY_FIELDS} } }`, { id }, userKey);
    expect(renamed.body.data.renameApiKey).toMatchObject({ id, name: 'deploy', status: 'ACTIVE', limit: 5_000_000_000 });
    const limited = await h.gql(`mutation($id: ID!) { setApiKeyLimit(id: $id, limit: null, limitReset: NEVER) { ${KEY_FIELDS} } }`, { id }, userKey);
    expect(limited.body.data.setApiKeyLimit).toMatchObject({ id, name: 'deploy', limit: null, limitReset: 'NEVER' });
    const disabled = await h.gql(`mutation($id: ID!) { disableApiKey(id: $id) { ${KEY_FIELDS} } }`, { id }, userKey);
    expect(disabled.body.data.disableApiKey).toMatchObject({ id, status: 'DISABLED' });
    expect((await credits(created.secret)).status).toBe(401);
    const revoked = await h.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { ${KEY_FIELDS} } }`, { id }, userKey);
    expect(revoked.body.data.revokeApiKey).toMatchObject({ id, name: 'deploy', status: 'REVOKED' });
    // Revocation is on the write side: refused on the very next request, read models or not.
    expect((await credits(created.secret)).status).toBe(401);
    expect(await readModelsBehind()).toBe(true);

    // Once the read models catch up, queries show the same key.
    await h.running.core.runner.resume();
    const listed = await h.gql(`{ apiKeys(includeRevoked: true) { edges { node { id name status } } } }`, {}, userKey);
    expect(listed.body.data.apiKeys.edges.map((e: { node: unknown }) => e.node)).toContainEqual({ id, name: 'deploy', status: 'REVOKED' });
  });

  it('GET /api/v1/key answers a fresh key with its own label and name, not as the bootstrap admin key', async () => {
    await h.running.core.runner.pause();
    const opened = (await h.gql(OPEN, { name: 'Barbara' })).body.data.openAccount;
    const initial: string = opened.initialKey.secret;
    const keyReport = async (secret: string) => {
      const res = await fetch(`${h.url}/api/v1/key`, { headers: { authorization: `Bearer ${secret}` } });
      expect(res.status).toBe(200);
      return ((await res.json()) as { data: Record<string, unknown> }).data;
    };
    expect(await keyReport(initial)).toMatchObject({ label: opened.initialKey.key.hint, name: 'default' });

    const created = (await h.gql(CREATE, { name: 'ci', limit: 2_000_000_000, limitReset: 'DAILY' }, initial)).body.data.createApiKey;
    expect(await keyReport(created.secret)).toMatchObject({ label: created.key.hint, name: 'ci', limit: 2, limit_reset: 'daily' });
    await h.gql(`mutation($id: ID!) { renameApiKey(id: $id, name: "deploy") { ${KEY_FIELDS} } }`, { id: created.key.id }, initial);
    expect(await keyReport(created.secret)).toMatchObject({ label: created.key.hint, name: 'deploy' });
    expect(await readModelsBehind()).toBe(true);

    // Only the bootstrap admin key (ADMIN_API_KEY, no key of the store) is labelled so.
    await h.running.core.runner.resume();
    expect(await keyReport(ADMIN_KEY)).toMatchObject({ label: 'bootstrap admin key', name: null });
  });

  it('changePlan and role changes answer with the changed account', async () => {
    await h.running.core.runner.resume();
    const opened = (await h.gql(OPEN, { name: 'Linus' })).body.data.openAccount;
    const id = opened.account.id as string;
    await h.running.core.runner.pause();

    expect((await h.gql(CHANGE_PLAN, { id, plan: 'pro' })).body.data.changePlan).toEqual({ __typename: 'Account', id, plan: 'pro', roles: ['USER'] });
    const granted = await h.gql(`mutation($id: ID!) { grantRole(accountId: $id, role: PROVIDER) { __typename ... on Account { plan roles } } }`, { id });
    expect(granted.body.data.grantRole).toEqual({ __typename: 'Account', plan: 'pro', roles: ['USER', 'PROVIDER'] });
    // Changing nothing appends nothing and still answers with the account as it is.
    expect((await h.gql(CHANGE_PLAN, { id, plan: 'pro' })).body.data.changePlan).toEqual({ __typename: 'Account', id, plan: 'pro', roles: ['USER', 'PROVIDER'] });
    expect(await readModelsBehind()).toBe(true);

    await h.running.core.runner.resume();
    const account = await h.gql(`query($id: ID!) { account(id: $id) { plan roles } }`, { id });
    expect(account.body.data.account).toEqual({ plan: 'pro', roles: ['USER', 'PROVIDER'] });
  });
});

describe('openAccount', () => {
  it('refuses a plan that is not configured, as changePlan does, and opens nothing', async () => {
    const OPEN_ON_PLAN = `mutation($name: String!, $plan: String) {
      openAccount(name: $name, plan: $plan) { __typename ... on OpenAccountPayload { account { plan } } ... on DomainError { code message } }
    }`;
    const head = await h.running.core.eventStore.headPosition();
    for (const plan of ['platinum', 'constructor']) {
      const { body } = await h.gql(OPEN_ON_PLAN, { name: 'Plat', plan });
      expect(body.data.openAccount, plan).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: `Unknown plan "${plan}"; plans are free, pro` });
    }
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
    expect((await h.gql(OPEN_ON_PLAN, { name: 'Pro', plan: 'pro' })).body.data.openAccount).toEqual({ __typename: 'OpenAccountPayload', account: { plan: 'pro' } });
  });
});

describe('changePlan', () => {
  it('refuses a plan that is not configured, including names every object has (constructor, __proto__)', async () => {
    const opened = (await h.gql(OPEN, { name: 'Mallory' })).body.data.openAccount;
    for (const plan of ['gold', 'constructor', '__proto__', 'toString']) {
      const { body } = await h.gql(CHANGE_PLAN, { id: opened.account.id, plan });
      expect(body.data.changePlan, plan).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: `Unknown plan "${plan}"; plans are free, pro` });
    }
    const unknown = await h.gql(CHANGE_PLAN, { id: 'acc_nobody', plan: 'pro' });
    expect(unknown.body.data.changePlan).toMatchObject({ __typename: 'DomainError', code: 'NOT_FOUND' });
  });
});

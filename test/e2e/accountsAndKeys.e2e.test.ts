import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_ACCOUNT_ID } from '../../src/modules/auth/principal.js';
import { KEYS_PER_MINUTE } from '../../src/modules/apiKeys/apiKey.api.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

const OPEN = `mutation($name: String!, $email: String) {
  openAccount(name: $name, email: $email) {
    __typename
    ... on OpenAccountPayload { account { id name roles plan } initialKey { secret key { id name hint status } } }
    ... on DomainError { code message }
  }
}`;
const ME = '{ me { id name roles } }';
const CREATE = `mutation($name: String!, $limit: Money, $limitReset: LimitReset, $expiresAt: DateTime) {
  createApiKey(name: $name, limit: $limit, limitReset: $limitReset, expiresAt: $expiresAt) {
    __typename
    ... on CreatedApiKey { secret key { id name hint status limit limitReset expiresAt } }
    ... on DomainError { code message }
  }
}`;

let h: Harness;
/** The app's clock runs this far ahead of the wall clock (moved on a minute to let an account be issued more keys). */
let shift = 0;
beforeAll(async () => {
  h = await startHarness({}, undefined, { now: () => new Date(Date.now() + shift) });
});
afterAll(async () => {
  await h.stop();
});

const openUser = async (name: string) => {
  const { body } = await h.gql(OPEN, { name, email: `${name.toLowerCase()}@example.com` });
  expect(body.errors).toBeUndefined();
  const payload = body.data.openAccount;
  expect(payload.__typename).toBe('OpenAccountPayload');
  return { id: payload.account.id as string, key: payload.initialKey.secret as string, keyId: payload.initialKey.key.id as string };
};

describe('accounts', () => {
  it('the bootstrap admin key reaches the root admin account', async () => {
    const { status, body } = await h.gql(ME);
    expect(status).toBe(200);
    expect(body.data.me).toEqual({ id: ROOT_ACCOUNT_ID, name: 'Root admin', roles: ['ADMIN'] });
  });

  it('an admin opens an account whose first key works at once', async () => {
    const user = await openUser('Ada');
    const { body } = await h.gql(ME, {}, user.key);
    expect(body.data.me).toEqual({ id: user.id, name: 'Ada', roles: ['USER'] });
    const account = await h.gql(`query($id: ID!) { account(id: $id) { id email plan } }`, { id: user.id });
    expect(account.body.data.account).toEqual({ id: user.id, email: 'ada@example.com', plan: 'free' });
  });

  it('self-signup is refused unless enabled, and a user cannot open accounts for others', async () => {
    const anonymous = await h.gql(OPEN, { name: 'Eve' }, null);
    expect(anonymous.body.data.openAccount).toMatchObject({ __typename: 'DomainError', code: 'FORBIDDEN' });
    const user = await openUser('Mallory');
    const byUser = await h.gql(OPEN, { name: 'Eve' }, user.key);
    expect(byUser.body.data.openAccount).toMatchObject({ __typename: 'DomainError', code: 'FORBIDDEN' });
  });

  it('admins grant and revoke roles; users cannot; an admin cannot demote itself', async () => {
    const user = await openUser('Grace');
    const grant = `mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename ... on Account { roles } ... on DomainError { code } } }`;
    const revoke = `mutation($id: ID!, $role: Role!) { revokeRole(accountId: $id, role: $role) { __typename ... on Account { roles } ... on DomainError { code message } } }`;
    expect((await h.gql(grant, { id: user.id, role: 'DESIGNER' })).body.data.grantRole.roles).toEqual(['USER', 'DESIGNER']);
    expect((await h.gql(ME, {}, user.key)).body.data.me.roles).toEqual(['USER', 'DESIGNER']);
    expect((await h.gql(revoke, { id: user.id, role: 'USER' })).body.data.revokeRole.roles).toEqual(['DESIGNER']);
    const byUser = await h.gql(grant, { id: user.id, role: 'ADMIN' }, user.key);
    expect(byUser.body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    const self = await h.gql(revoke, { id: ROOT_ACCOUNT_ID, role: 'ADMIN' });
    expect(self.body.data.revokeRole).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
  });

  it('lists accounts for admins with cursor paging, and refuses users', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = await h.gql(`query($after: String) { accounts(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, { after });
      seen.push(...page.body.data.accounts.edges.map((e: any) => e.node.id));
      if (!page.body.data.accounts.pageInfo.hasNextPage) break;
      after = page.body.data.accounts.pageInfo.endCursor;
    }
    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
    const user = await openUser('Linus');
    const denied = await h.gql(`{ accounts(first: 5) { edges { node { id } } } }`, {}, user.key);
    expect(denied.body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect(denied.body.data).toBeNull();
  });
});

describe('API keys', () => {
  it('creates a key whose secret is shown once, stored only as a hash, and listed without it', async () => {
    const user = await openUser('Barbara');
    const { body } = await h.gql(CREATE, { name: 'ci', limit: 5_000_000_000, limitReset: 'DAILY' }, user.key);
    const created = body.data.createApiKey;
    expect(created.secret).toMatch(/^sk-sy-v1-[0-9A-Za-z]{49}$/);
    expect(created.key).toMatchObject({ name: 'ci', status: 'ACTIVE', limit: 5_000_000_000, limitReset: 'DAILY', expiresAt: null });
    const list = await h.gql(`{ apiKeys { edges { node { id name hint } } } }`, {}, user.key);
    expect(list.body.data.apiKeys.edges.map((e: any) => e.node.name)).toEqual(['default', 'ci']);
    expect(JSON.stringify(list.body)).not.toContain(created.secret);
    expect((await h.gql(ME, {}, created.secret)).body.data.me.id).toBe(user.id);
  });

  it('refuses a key the moment disable or revoke returns, and accepts it again when enabled', async () => {
    const user = await openUser('Ken');
    const { body } = await h.gql(CREATE, { name: 'temp' }, user.key);
    const { secret, key } = body.data.createApiKey;
    const change = (mutation: string) =>
      h.gql(`mutation($id: ID!) { ${mutation}(id: $id) { __typename ... on ApiKey { status } ... on DomainError { code message } } }`, { id: key.id }, user.key);

    expect((await change('disableApiKey')).body.data.disableApiKey.status).toBe('DISABLED');
    const refused = await h.gql(ME, {}, secret);
    expect(refused.status).toBe(401);
    expect(refused.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(refused.body.errors[0].message).toMatch(/disabled/);

    expect((await change('enableApiKey')).body.data.enableApiKey.status).toBe('ACTIVE');
    expect((await h.gql(ME, {}, secret)).status).toBe(200);

    expect((await change('revokeApiKey')).body.data.revokeApiKey.status).toBe('REVOKED');
    const revoked = await h.gql(ME, {}, secret);
    expect(revoked.status).toBe(401);
    expect(revoked.body.errors[0].message).toMatch(/revoked/);
    expect((await change('revokeApiKey')).body.data.revokeApiKey.status).toBe('REVOKED');
    expect((await change('enableApiKey')).body.data.enableApiKey).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
    const list = await h.gql(`{ apiKeys { edges { node { id } } } }`, {}, user.key);
    expect(list.body.data.apiKeys.edges.map((e: any) => e.node.id)).not.toContain(key.id);
    const all = await h.gql(`{ apiKeys(includeRevoked: true) { edges { node { id status } } } }`, {}, user.key);
    expect(all.body.data.apiKeys.edges).toContainEqual({ node: { id: key.id, status: 'REVOKED' } });
  });

  it('an account holds at most 1,000 keys that are not revoked: the next is a CONFLICT until one is revoked', { timeout: 60_000 }, async () => {
    const user = await openUser('Minty');
    // Its first key, then 999 more, KEYS_PER_MINUTE in each minute of the app's clock.
    const secrets: string[] = [];
    try {
      for (let made = 0; made < 999; made += KEYS_PER_MINUTE) {
        shift += 60_000;
        const batch = Math.min(KEYS_PER_MINUTE, 999 - made);
        const results = await Promise.all(Array.from({ length: batch }, (_, i) => h.gql(CREATE, { name: `k${made + i}` }, user.key)));
        for (const { body } of results) secrets.push(body.data.createApiKey.secret);
      }
      expect(secrets.filter((secret) => typeof secret === 'string')).toHaveLength(999);
      shift += 60_000;
      const refused = (await h.gql(CREATE, { name: 'one too many' }, user.key)).body.data.createApiKey;
      expect(refused).toEqual({ __typename: 'DomainError', code: 'CONFLICT', message: 'An account holds at most 1000 keys that are not revoked: revoke keys it no longer uses first' });
      // A revoked key frees its place (disabled ones keep theirs: they can be enabled again).
      const revoked = await h.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { ... on ApiKey { status } } }`, { id: user.keyId }, user.key);
      expect(revoked.body.data.revokeApiKey.status).toBe('REVOKED');
      const again = (await h.gql(CREATE, { name: 'in its place' }, secrets[0])).body.data.createApiKey;
      expect(again.__typename).toBe('CreatedApiKey');
    } finally {
      shift = 0;
    }
  });

  it('T-GQL-5: an account is issued at most KEYS_PER_MINUTE keys a minute, however they are asked for: concurrent requests, aliases in one document, the keys API', async () => {
    const RATE = `mutation($name: String!) { createApiKey(name: $name) { __typename ... on DomainError { code message details } } }`;
    const keysOf = async (key: string) => (await h.gql('{ apiKeys(first: 100) { edges { node { id } } } }', {}, key)).body.data.apiKeys.edges.length as number;
    try {
      // 100 at once from one account (its first key, made with it, counts too): KEYS_PER_MINUTE in all, the rest refused.
      const ann = await openUser('Ann');
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => h.gql(RATE, { name: `burst ${i}` }, ann.key)));
      const results = answers.map(({ body }) => body.data.createApiKey);
      expect(results.filter((r) => r.__typename === 'CreatedApiKey')).toHaveLength(KEYS_PER_MINUTE - 1);
      const refusals = results.filter((r) => r.__typename !== 'CreatedApiKey');
      expect(refusals).toHaveLength(100 - KEYS_PER_MINUTE + 1);
      for (const refusal of refusals) {
        expect(refusal).toMatchObject({ __typename: 'DomainError', code: 'RATE_LIMITED', message: expect.stringMatching(/at most 50 keys a minute/) });
        expect(refusal.details.retry_after_ms).toBeGreaterThan(0);
        expect(refusal.details.retry_after_ms).toBeLessThanOrEqual(60_000);
      }
      expect(await keysOf(ann.key)).toBe(KEYS_PER_MINUTE);

      // The same as aliases: four documents of 25 createApiKey each.
      const bob = await openUser('Bob');
      const aliased = `mutation { ${Array.from({ length: 25 }, (_, i) => `k${i}: createApiKey(name: "alias ${i}") { __typename ... on DomainError { code } }`).join(' ')} }`;
      const documents = await Promise.all(Array.from({ length: 4 }, () => h.gql(aliased, {}, bob.key)));
      const fields = documents.flatMap(({ body }) => Object.values(body.data as Record<string, { __typename: string; code?: string }>));
      expect(fields).toHaveLength(100);
      expect(fields.filter((f) => f.__typename === 'CreatedApiKey')).toHaveLength(KEYS_PER_MINUTE - 1);
      expect(fields.filter((f) => f.code === 'RATE_LIMITED')).toHaveLength(100 - KEYS_PER_MINUTE + 1);
      expect(await keysOf(bob.key)).toBe(KEYS_PER_MINUTE);

      // OpenRouter's keys API counts against the same minute: a 429 with Retry-After.
      const carol = await openUser('Carol');
      const manager = (await h.gql(`mutation { createApiKey(name: "m", kind: MANAGEMENT) { ... on CreatedApiKey { secret } } }`, {}, carol.key)).body.data.createApiKey.secret as string;
      const provision = () => fetch(`${h.url}/api/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'customer' }) });
      const statuses = await Promise.all(Array.from({ length: KEYS_PER_MINUTE }, async () => (await provision()).status));
      expect(statuses.filter((s) => s === 201)).toHaveLength(KEYS_PER_MINUTE - 2);
      const limited = await provision();
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await limited.json()).toMatchObject({ error: { code: 429, metadata: { error_type: 'rate_limit_exceeded' } } });

      // A minute later the account is issued keys again.
      shift += 60_000;
      expect((await h.gql(RATE, { name: 'next minute' }, ann.key)).body.data.createApiKey.__typename).toBe('CreatedApiKey');
    } finally {
      shift = 0;
    }
  });

  it('renames and sets or clears a spending limit, from another key of the account: a key cannot limit itself', async () => {
    const user = await openUser('Donald');
    const rename = await h.gql(`mutation($id: ID!) { renameApiKey(id: $id, name: "prod") { ... on ApiKey { name } } }`, { id: user.keyId }, user.key);
    expect(rename.body.data.renameApiKey.name).toBe('prod');
    const second = (await h.gql(CREATE, { name: 'script' }, user.key)).body.data.createApiKey;
    const setLimit = `mutation($id: ID!, $limit: Money, $reset: LimitReset!) { setApiKeyLimit(id: $id, limit: $limit, limitReset: $reset) { ... on ApiKey { limit limitReset } ... on DomainError { code message } } }`;
    expect((await h.gql(setLimit, { id: second.key.id, limit: 2_500_000_000, reset: 'WEEKLY' }, user.key)).body.data.setApiKeyLimit).toEqual({ limit: 2_500_000_000, limitReset: 'WEEKLY' });
    expect((await h.gql(setLimit, { id: second.key.id, limit: null, reset: 'NEVER' }, user.key)).body.data.setApiKeyLimit).toEqual({ limit: null, limitReset: 'NEVER' });
    // Limited, the key would lose the right to manage keys: its holder would be locked out (it is the account's only other one).
    const self = (await h.gql(setLimit, { id: user.keyId, limit: 2_500_000_000, reset: 'WEEKLY' }, user.key)).body.data.setApiKeyLimit;
    expect(self).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('cannot put a limit on itself') });
  });

  it("a key with a spending limit calls and reads, but cannot run the account: lift its limit, mint or revoke keys, buy credits, change settings", async () => {
    const user = await openUser('Mallory');
    const limited = (await h.gql(CREATE, { name: 'limited', limit: 100_000, limitReset: 'DAILY' }, user.key)).body.data.createApiKey;
    expect(limited.__typename).toBe('CreatedApiKey');
    const as = (query: string, variables: Record<string, unknown> = {}) => h.gql(query, variables, limited.secret);
    const restricted = { code: 'FORBIDDEN', message: expect.stringContaining('This key has a spending limit or was issued to an app') };
    const errorOf = (res: { body: any }) => ({ code: res.body.errors?.[0]?.extensions?.code, message: res.body.errors?.[0]?.message });
    // Reads and its own key work.
    expect((await as(ME)).body.data.me).toMatchObject({ id: user.id });
    // Every change of the account is refused, its own limit first.
    for (const [query, variables] of [
      ['mutation($id: ID!) { setApiKeyLimit(id: $id, limit: null, limitReset: NEVER) { __typename } }', { id: limited.key.id }],
      ['mutation { createApiKey(name: "escape") { __typename } }', {}],
      ['mutation { createApiKey(name: "mgmt", kind: MANAGEMENT) { __typename } }', {}],
      ['mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: user.keyId }],
      ['mutation($id: ID!) { setApiKeyExpiry(id: $id, expiresAt: null) { __typename } }', { id: limited.key.id }],
      ['mutation { purchaseCredits(amount: 1000000000, paymentMethod: "pm_card_visa") { __typename } }', {}],
      ['mutation { setContentLogging(enabled: true) { __typename } }', {}],
      ['mutation { deleteGenerationContent }', {}],
      ['mutation { authorizeApp(callbackUrl: "http://localhost:9999/cb", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") { __typename } }', {}],
    ] as const) {
      expect(errorOf(await as(query, variables)), query).toEqual(restricted);
    }
    // The account's other roles are not the key's: no designer or provider work either (the owner's key has them).
    for (const role of ['DESIGNER', 'PROVIDER']) await h.gql(`mutation { grantRole(accountId: "${user.id}", role: ${role}) { __typename } }`);
    for (const query of ['{ secrets { name } }', '{ endpointProposals(first: 1) { edges { node { id } } } }']) {
      expect(errorOf(await as(query)), query).toEqual(restricted);
      expect((await h.gql(query, {}, user.key)).body.errors, query).toBeUndefined();
    }
    // The limit is where it was; the owner's key still works.
    expect((await h.gql('{ apiKey(id: "' + limited.key.id + '") { limit } }', {}, user.key)).body.data.apiKey.limit).toBe(100_000);
    expect((await h.gql(ME, {}, user.key)).status).toBe(200);
    // Its limit cleared (from the owner's key), it runs the account again, from its next call.
    await h.gql('mutation($id: ID!) { setApiKeyLimit(id: $id, limit: null, limitReset: NEVER) { __typename } }', { id: limited.key.id }, user.key);
    expect((await as('mutation { createApiKey(name: "now allowed") { __typename } }')).body.data.createApiKey.__typename).toBe('CreatedApiKey');
  });

  it('refuses an expired key', async () => {
    const user = await openUser('Margaret');
    // Valid for a few seconds: its first use must come before the expiry, however slow a loaded host is here (1.5 s
    // was sometimes not enough for the create and the first call); then used until it stops working.
    const expiresAt = new Date(Date.now() + 3_000).toISOString();
    const { body } = await h.gql(CREATE, { name: 'short', expiresAt }, user.key);
    const { secret } = body.data.createApiKey;
    expect((await h.gql(ME, {}, secret)).status).toBe(200);
    const expired = await eventually('the key to expire', async () => ((res) => res.status !== 200 && res)(await h.gql(ME, {}, secret)), { intervalMs: 200 });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    expect(expired.status).toBe(401);
    expect(expired.body.errors[0].message).toMatch(/expired/);
    const past = await h.gql(CREATE, { name: 'past', expiresAt: '2020-01-01T00:00:00Z' }, user.key);
    expect(past.body.data.createApiKey).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION' });
  });

  it('refuses a key with a bad checksum, an unknown key and a missing key', async () => {
    const user = await openUser('Edsger');
    const last = user.key.at(-1) === 'a' ? 'b' : 'a';
    const tampered = user.key.slice(0, -1) + last;
    for (const bad of [tampered, 'sk-sy-v1-not-a-key', 'x'.repeat(40)]) {
      const res = await h.gql(ME, {}, bad);
      expect(res.status).toBe(401);
      expect(res.body.errors[0]).toMatchObject({ message: 'Invalid API key', extensions: { code: 'UNAUTHENTICATED' } });
    }
    const missing = await h.gql(ME, {}, null);
    expect(missing.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(missing.body.data).toBeNull();
  });
});

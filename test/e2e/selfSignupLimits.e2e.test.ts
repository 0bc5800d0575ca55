import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

// Anonymous openAccount (SELF_SIGNUP=true) opens at most one account per request and SELF_SIGNUP_PER_HOUR per client
// address: the free tier's quotas are per account, so each account opened without bound was fresh free use.

const FIELDS = `__typename ... on OpenAccountPayload { account { id plan } initialKey { secret } } ... on DomainError { code message details }`;
const OPEN = `mutation($name: String!) { openAccount(name: $name) { ${FIELDS} } }`;
const aliases = (n: number) => `mutation { ${Array.from({ length: n }, (_, i) => `a${i}: openAccount(name: "m${i}") { ${FIELDS} }`).join(' ')} }`;

/** POST /graphql without a key from another loopback address (127.0.0.0/8 is all this host's). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
const gqlFrom = (h: Harness, localAddress: string, query: string, variables: Record<string, unknown>) =>
  new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = request(`${h.url}/graphql`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject).end(JSON.stringify({ query, variables }));
  });

describe('self-signup limits', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ SELF_SIGNUP: 'true', SELF_SIGNUP_PER_HOUR: '3' });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('opens at most one account per request without a key: a second openAccount in the document is VALIDATION, the first answered', async () => {
    const { status, body } = await h.gql(aliases(5), {}, null);
    expect(status).toBe(200);
    expect(body.data.a0).toMatchObject({ __typename: 'OpenAccountPayload', account: { plan: 'free' } });
    for (const alias of ['a1', 'a2', 'a3', 'a4']) {
      expect(body.data[alias]).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringContaining('one account') });
    }
    // The key the request got works.
    const credits = await fetch(`${h.url}/api/v1/credits`, { headers: { authorization: `Bearer ${body.data.a0.initialKey.secret}` } });
    expect(credits.status).toBe(200);
  });

  it('an admin opens as many as it asks for in one request, and is not counted', async () => {
    const { body } = await h.gql(aliases(5));
    for (const alias of ['a0', 'a1', 'a2', 'a3', 'a4']) expect(body.data[alias].__typename).toBe('OpenAccountPayload');
  });

  it('opens SELF_SIGNUP_PER_HOUR accounts per client address an hour: past them RATE_LIMITED with retry_after_ms; another address still opens', async () => {
    // The first test's request took one of 127.0.0.1's three.
    for (const name of ['b1', 'b2']) expect((await h.gql(OPEN, { name }, null)).body.data.openAccount.__typename).toBe('OpenAccountPayload');
    for (const name of ['b3', 'b4']) {
      const refused = (await h.gql(OPEN, { name }, null)).body.data.openAccount;
      expect(refused).toMatchObject({ __typename: 'DomainError', code: 'RATE_LIMITED', message: expect.stringContaining('3 accounts an hour') });
      expect(refused.details.retry_after_ms).toBeGreaterThan(0);
      expect(refused.details.retry_after_ms).toBeLessThanOrEqual(3_600_000);
      expect(refused.details.limit).toBe(3);
    }
    // A refused document opens nothing, whatever it holds.
    const batch = (await h.gql(aliases(3), {}, null)).body.data;
    expect(batch.a0.code).toBe('RATE_LIMITED');
    // Another client address has its own hour.
    const other = await gqlFrom(h, '127.0.0.2', OPEN, { name: 'c1' });
    expect(other.body.data.openAccount.__typename).toBe('OpenAccountPayload');
    // Admins are not limited.
    expect((await h.gql(OPEN, { name: 'admin-made' })).body.data.openAccount.__typename).toBe('OpenAccountPayload');
  });
});

describe('SELF_SIGNUP_PER_HOUR=0', () => {
  it('does not limit anonymous opening per address (still one account per request)', async () => {
    const h = await startHarness({ SELF_SIGNUP: 'true', SELF_SIGNUP_PER_HOUR: '0' });
    try {
      for (let i = 0; i < 8; i++) expect((await h.gql(OPEN, { name: `u${i}` }, null)).body.data.openAccount.__typename).toBe('OpenAccountPayload');
      expect((await h.gql(aliases(2), {}, null)).body.data.a1.code).toBe('VALIDATION');
    } finally {
      await h.stop();
    }
  });
});

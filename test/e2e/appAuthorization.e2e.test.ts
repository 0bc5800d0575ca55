/**
 * Sign in with Switchyard (OpenRouter's OAuth PKCE) over real HTTP: the console's consent (GraphQL authorizeApp) gives
 * the app a one-time code at its callback URL; the app exchanges it with its code verifier at POST /api/v1/auth/keys
 * for a key on the user's account. Hostile inputs: callback URLs, challenges, verifiers, replayed and raced codes.
 */
import { createHash, randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS_PER_MINUTE, MAX_PENDING_APP_CODES } from '../../src/modules/apiKeys/apiKey.api.js';
import { appAuthorizationStream } from '../../src/modules/apiKeys/appAuth.events.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;
/** The app's clock runs this far ahead of the wall clock (to let codes expire and key-issue minutes pass). */
let shift = 0;

beforeAll(async () => {
  h = await startGatewayHarness({}, { now: () => new Date(Date.now() + shift) });
  user = await h.openAccount({ name: 'app-user', credits: 1_000_000_000 });
});
afterAll(async () => {
  await h.stop();
});

const AUTHORIZE = `mutation ($callbackUrl: String!, $codeChallenge: String!, $method: CodeChallengeMethod, $keyName: String, $limit: Money) {
  authorizeApp(callbackUrl: $callbackUrl, codeChallenge: $codeChallenge, codeChallengeMethod: $method, keyName: $keyName, limit: $limit) {
    ... on AppAuthorization { redirectUrl expiresAt }
    ... on DomainError { code message }
  }
}`;

const newVerifier = () => randomBytes(48).toString('base64url'); // 64 characters
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

const authorize = async (variables: Record<string, unknown>, key: string | null = user.key) => {
  const { body } = await h.gql(AUTHORIZE, { callbackUrl: 'http://127.0.0.1:3000/callback?state=xyz', ...variables }, key);
  return body as { data: { authorizeApp: { redirectUrl?: string; expiresAt?: string; code?: string; message?: string } } | null; errors?: { message: string; extensions?: { code?: string } }[] };
};

const codeFor = async (verifier: string, extra: Record<string, unknown> = {}) => {
  const body = await authorize({ codeChallenge: s256(verifier), ...extra });
  const redirect = new URL(body.data!.authorizeApp.redirectUrl!);
  return redirect.searchParams.get('code')!;
};

const exchange = (body: unknown) =>
  fetch(`${h.url}/api/v1/auth/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

const keysOf = async (account: Account) => {
  const { body } = await h.gql('{ apiKeys(first: 50) { edges { node { id name limit } } } }', {}, account.key);
  return body.data.apiKeys.edges.map((e: { node: { id: string; name: string; limit: number | null } }) => e.node) as { id: string; name: string; limit: number | null }[];
};

describe('sign in with Switchyard', () => {
  it('gives the app a key on the user’s account for its code and verifier, once, and the key calls models', async () => {
    const verifier = newVerifier();
    const body = await authorize({ codeChallenge: s256(verifier), keyName: 'Notes app', limit: 5_000_000 });
    const { redirectUrl, expiresAt } = body.data!.authorizeApp;
    const redirect = new URL(redirectUrl!);
    // The callback as given (its own query kept), with the code added.
    expect(`${redirect.origin}${redirect.pathname}`).toBe('http://127.0.0.1:3000/callback');
    expect(redirect.searchParams.get('state')).toBe('xyz');
    const code = redirect.searchParams.get('code')!;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(expiresAt!) - Date.now()).toBeGreaterThan(9 * 60_000);

    const res = await exchange({ code, code_verifier: verifier, code_challenge_method: 'S256' });
    expect(res.status).toBe(200);
    const { key, user_id } = (await res.json()) as { key: string; user_id: string };
    expect(user_id).toBe(user.accountId);
    const created = (await keysOf(user)).find((k) => k.name === 'Notes app');
    expect(created).toMatchObject({ limit: 5_000_000 });

    // The key is the user's: it calls a model through the openai SDK, charged to the user's account.
    const client = new OpenAI({ apiKey: key, baseURL: `${h.url}/api/v1` });
    const completion = await client.chat.completions.create({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hello' }] });
    expect(completion.choices[0]!.message.content).toBeTruthy();
    const { body: me } = await h.gql('{ me { id } }', {}, key);
    expect(me.data.me.id).toBe(user.accountId);

    // The code is spent: a replay gets nothing.
    const replay = await exchange({ code, code_verifier: verifier });
    expect(replay.status).toBe(403);
    expect(((await replay.json()) as { error: { message: string } }).error.message).toContain('Invalid code or code_verifier');
    expect((await keysOf(user)).filter((k) => k.name === 'Notes app')).toHaveLength(1);
  });

  it("an app's key, even without a limit, calls models but cannot run the account, and reads only its own generations", async () => {
    const owner = await h.openAccount({ name: 'app-owner', credits: 1_000_000_000 });
    // The owner's own call, with content the app must not read.
    const mine = await h.chat(owner.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'my diary' }] });
    const mineId = mine.headers.get('x-generation-id')!;
    expect(mine.status).toBe(200);
    const verifier = newVerifier();
    const consent = await authorize({ codeChallenge: s256(verifier), keyName: 'Unlimited app' }, owner.key);
    const code = new URL(consent.data!.authorizeApp.redirectUrl!).searchParams.get('code')!;
    const { key: appKey } = (await (await exchange({ code, code_verifier: verifier })).json()) as { key: string };
    const app = await h.chat(appKey, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'from the app' }] });
    expect(app.status).toBe(200);
    const appGenerationId = app.headers.get('x-generation-id')!;

    const ownerKeyId = (await keysOf(owner)).find((k) => k.name !== 'Unlimited app')!.id;
    for (const query of [
      'mutation { createApiKey(name: "escape") { __typename } }',
      `mutation { revokeApiKey(id: "${ownerKeyId}") { __typename } }`,
      'mutation { purchaseCredits(amount: 1000000000, paymentMethod: "pm_card_visa") { __typename } }',
      'mutation { setContentLogging(enabled: true) { __typename } }',
    ]) {
      const { body } = await h.gql(query, {}, appKey);
      expect(body.errors?.[0], query).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: expect.stringContaining('issued to an app') });
    }
    expect((await keysOf(owner)).find((k) => k.id === ownerKeyId)).toBeDefined();

    // Its own generations only: the list, by id over GraphQL and REST.
    const listed = await h.gql('{ generations(first: 50) { edges { node { id } } } }', {}, appKey);
    expect(listed.body.data.generations.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([appGenerationId]);
    const byOwner = await h.gql('{ generations(first: 50) { edges { node { id } } } }', {}, owner.key);
    expect(byOwner.body.data.generations.edges.map((e: { node: { id: string } }) => e.node.id).sort()).toEqual([mineId, appGenerationId].sort());
    const other = await h.gql(`{ generation(id: "${mineId}") { id } }`, {}, appKey);
    expect(other.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const rest = await fetch(`${h.url}/api/v1/generation?id=${mineId}`, { headers: { authorization: `Bearer ${appKey}` } });
    expect(rest.status).toBe(404);
    const own = await fetch(`${h.url}/api/v1/generation?id=${appGenerationId}`, { headers: { authorization: `Bearer ${appKey}` } });
    expect(own.status).toBe(200);
  });

  it('refuses a wrong verifier (the code stays usable with the right one) and a code it never issued', async () => {
    const verifier = newVerifier();
    const code = await codeFor(verifier);
    for (const attempt of [{ code, code_verifier: newVerifier() }, { code, code_verifier: verifier, code_challenge_method: 'plain' }, { code: randomBytes(32).toString('base64url'), code_verifier: verifier }, { code: 'short', code_verifier: verifier }]) {
      const res = await exchange(attempt);
      expect(res.status, JSON.stringify(attempt)).toBe(403);
    }
    const res = await exchange({ code, code_verifier: verifier });
    expect(res.status).toBe(200);
  });

  it('the plain method: the challenge is the verifier', async () => {
    const verifier = newVerifier();
    const code = await codeFor(verifier, { codeChallenge: verifier, method: 'PLAIN' });
    expect((await exchange({ code, code_verifier: newVerifier() })).status).toBe(403);
    expect((await exchange({ code, code_verifier: verifier, code_challenge_method: 'plain' })).status).toBe(200);
  });

  it('20 exchanges of one code at once: one key, 19 refusals', async () => {
    const verifier = newVerifier();
    const code = await codeFor(verifier, { keyName: 'raced' });
    const results = await Promise.all(Array.from({ length: 20 }, () => exchange({ code, code_verifier: verifier })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 403)).toHaveLength(19);
    expect((await keysOf(user)).filter((k) => k.name === 'raced')).toHaveLength(1);
  });

  it('names the key after the callback host when the consent gives no name', async () => {
    const verifier = newVerifier();
    const code = await codeFor(verifier, { callbackUrl: 'https://notes.example/oauth' });
    expect((await exchange({ code, code_verifier: verifier })).status).toBe(200);
    expect((await keysOf(user)).some((k) => k.name === 'App at notes.example')).toBe(true);
  });

  it('answers browsers’ CORS preflights on the REST API, so a page of another origin can exchange its code and call models', async () => {
    const preflight = (path: string, headers: string) =>
      fetch(`${h.url}${path}`, { method: 'OPTIONS', headers: { 'access-control-request-method': 'POST', 'access-control-request-headers': headers } });
    for (const path of ['/api/v1/auth/keys', '/api/v1/chat/completions']) {
      const res = await preflight(path, 'authorization, content-type, x-stainless-os');
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, PATCH, DELETE');
      expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-stainless-os');
    }
    // Asked headers that are not plain header names are not echoed back.
    expect((await preflight('/api/v1/chat/completions', 'authorization; x=1')).headers.get('access-control-allow-headers')).toBeNull();
    // An OPTIONS that is no preflight is routed like any request (no such method: 405).
    expect((await fetch(`${h.url}/api/v1/models`, { method: 'OPTIONS' })).status).toBe(405);
    const answer = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-expose-headers')).toContain('x-generation-id');
    // The console's page is not the API: no CORS headers there.
    expect((await fetch(`${h.url}/`)).headers.get('access-control-allow-origin')).toBeNull();
  });

  it.each([
    ['javascript:alert(1)', 'callbackUrl must use https'],
    ['http://evil.example/cb', 'callbackUrl must use https (http only on localhost, 127.0.0.1 or [::1])'],
    ['https://user:pw@app.example/cb', 'callbackUrl must not carry a user name or password'],
    ['https://app.example/cb#frag', 'callbackUrl must not have a fragment'],
    ['/relative', 'callbackUrl must be an absolute URL'],
    [`https://app.example/${'x'.repeat(2_100)}`, 'callbackUrl must be at most 2,048 characters'],
  ])('refuses the callback URL %s', async (callbackUrl, message) => {
    const body = await authorize({ callbackUrl, codeChallenge: s256(newVerifier()) });
    expect(body.data!.authorizeApp.code).toBe('VALIDATION');
    expect(body.data!.authorizeApp.message).toContain(message);
  });

  it('refuses a malformed challenge, an unauthenticated consent and malformed exchanges, creating no key', async () => {
    const before = (await keysOf(user)).length;
    const badChallenge = await authorize({ codeChallenge: 'too-short' });
    expect(badChallenge.data!.authorizeApp).toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('codeChallenge must be BASE64URL(SHA-256(code_verifier))') });
    const badPlain = await authorize({ codeChallenge: 'has spaces and is long enough to pass the length check of 43', method: 'PLAIN' });
    expect(badPlain.data!.authorizeApp.code).toBe('VALIDATION');
    const anonymous = await authorize({ codeChallenge: s256(newVerifier()) }, null);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const code = await codeFor(newVerifier());
    for (const [body, message] of [
      ['not json', 'JSON'],
      [[], 'The request body must be a JSON object {code, code_verifier}'],
      [{ code }, 'code_verifier must be a string'],
      [{ code, code_verifier: 'short' }, 'code_verifier must be 43-128 characters'],
      [{ code, code_verifier: newVerifier(), code_challenge_method: 'md5' }, 'code_challenge_method must be "S256" or "plain"'],
      [{ code, code_verifier: newVerifier(), scope: 'all' }, 'Unknown field(s): scope'],
    ] as const) {
      const res = await exchange(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(message);
    }
    expect((await keysOf(user)).length).toBe(before);
  });

  describe('a code lives only as long as what granted it', () => {
    const CREATE = 'mutation ($name: String!, $expiresAt: DateTime) { createApiKey(name: $name, expiresAt: $expiresAt) { ... on CreatedApiKey { secret key { id } } } }';
    const newKey = async (owner: Account, name: string, expiresAt: string | null = null) => {
      const created = (await h.gqlOk(CREATE, { name, expiresAt }, owner.key)).createApiKey as { secret: string; key: { id: string } };
      return { secret: created.secret, id: created.key.id };
    };
    const codeBy = async (key: string, verifier: string, keyName?: string) => {
      const body = await authorize({ codeChallenge: s256(verifier), ...(keyName ? { keyName } : {}) }, key);
      return new URL(body.data!.authorizeApp.redirectUrl!).searchParams.get('code')!;
    };
    const refusal = async (res: Response) => ({ status: res.status, message: ((await res.json()) as { error?: { message: string } }).error?.message });

    it('a code granted by a key that is then revoked, disabled or expired, or by an account that lost the role user, gives no key', async () => {
      const owner = await h.openAccount({ name: 'leaky', credits: 1_000_000 });
      const leaked = await newKey(owner, 'leaked');
      const verifier = newVerifier();
      const stocked = await codeBy(leaked.secret, verifier, 'stocked');
      const revoked = await h.gqlOk('mutation ($id: ID!) { revokeApiKey(id: $id) { ... on ApiKey { status } } }', { id: leaked.id }, owner.key);
      expect(revoked.revokeApiKey.status).toBe('REVOKED');
      expect(await refusal(await exchange({ code: stocked, code_verifier: verifier }))).toEqual({ status: 403, message: expect.stringMatching(/^The key that authorized this app can no longer do so \(API key has been revoked\)/) });

      // Disabled: refused while it is; the code works again once the key is enabled (before the code expires).
      const paused = await newKey(owner, 'paused');
      const pausedCode = await codeBy(paused.secret, verifier, 'paused app');
      await h.gqlOk('mutation ($id: ID!) { disableApiKey(id: $id) { __typename } }', { id: paused.id }, owner.key);
      expect(await refusal(await exchange({ code: pausedCode, code_verifier: verifier }))).toEqual({ status: 403, message: expect.stringContaining('(API key is disabled)') });
      await h.gqlOk('mutation ($id: ID!) { enableApiKey(id: $id) { __typename } }', { id: paused.id }, owner.key);
      expect((await exchange({ code: pausedCode, code_verifier: verifier })).status).toBe(200);

      // Expired: a key valid 5 minutes grants a code; 6 minutes later (the code still has 4) it is refused.
      const brief = await newKey(owner, 'brief', new Date(Date.now() + shift + 5 * 60_000).toISOString());
      const briefCode = await codeBy(brief.secret, verifier, 'brief app');
      try {
        shift += 6 * 60_000;
        expect(await refusal(await exchange({ code: briefCode, code_verifier: verifier }))).toEqual({ status: 403, message: expect.stringContaining('(API key has expired)') });
      } finally {
        shift = 0;
      }

      // The account loses the role user between the consent and the exchange.
      const roleCode = await codeBy(owner.key, verifier, 'role app');
      await h.gqlOk('mutation ($id: ID!) { revokeRole(accountId: $id, role: USER) { __typename } }', { id: owner.accountId });
      expect(await refusal(await exchange({ code: roleCode, code_verifier: verifier }))).toEqual({ status: 403, message: expect.stringMatching(/^The account that authorized this app no longer has the role user/) });
      await h.gqlOk('mutation ($id: ID!) { grantRole(accountId: $id, role: USER) { __typename } }', { id: owner.accountId });

      // A wrong verifier is still the one undistinguished refusal: the code's story is told only to its app.
      expect(await refusal(await exchange({ code: stocked, code_verifier: newVerifier() }))).toEqual({ status: 403, message: expect.stringMatching(/^Invalid code or code_verifier/) });
      const names = (await keysOf(owner)).map((k) => k.name);
      expect(names).toContain('paused app');
      for (const refused of ['stocked', 'brief app', 'role app']) expect(names).not.toContain(refused);
    });

    it(`an account holds at most MAX_PENDING_APP_CODES codes not yet exchanged: the next consent is RATE_LIMITED until one is exchanged, expires or loses its key`, async () => {
      const owner = await h.openAccount({ name: 'stocker' });
      const stocker = await newKey(owner, 'stocker');
      const verifier = newVerifier();
      // Twice the cap at once, from one key: exactly the cap granted.
      const answers = await Promise.all(Array.from({ length: 2 * MAX_PENDING_APP_CODES }, () => authorize({ codeChallenge: s256(verifier) }, stocker.secret)));
      const granted = answers.map((a) => a.data!.authorizeApp).filter((a) => a.redirectUrl);
      expect(granted).toHaveLength(MAX_PENDING_APP_CODES);
      const refused = answers.map((a) => a.data!.authorizeApp).filter((a) => !a.redirectUrl);
      for (const r of refused) {
        expect(r).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(new RegExp(`^An account has at most ${MAX_PENDING_APP_CODES} app sign-in codes waiting to be exchanged: `)) });
      }
      const { body } = await h.gql(`${AUTHORIZE.replace('code message', 'code message details')}`, { callbackUrl: 'https://app.example/cb', codeChallenge: s256(verifier) }, owner.key);
      expect((body.data.authorizeApp as { details: { retry_after_ms: number } }).details.retry_after_ms).toBeGreaterThan(9 * 60_000);

      // An exchanged code frees its place.
      const first = new URL(granted[0]!.redirectUrl!).searchParams.get('code')!;
      expect((await exchange({ code: first, code_verifier: verifier })).status).toBe(200);
      expect((await authorize({ codeChallenge: s256(verifier) }, owner.key)).data!.authorizeApp.redirectUrl).toBeDefined();
      expect((await authorize({ codeChallenge: s256(verifier) }, owner.key)).data!.authorizeApp.code).toBe('RATE_LIMITED');

      // Revoking the key that stocked them frees theirs (they can no longer be exchanged).
      await h.gqlOk('mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: stocker.id }, owner.key);
      const after = await Promise.all(Array.from({ length: MAX_PENDING_APP_CODES }, () => authorize({ codeChallenge: s256(verifier) }, owner.key)));
      expect(after.filter((a) => a.data!.authorizeApp.redirectUrl)).toHaveLength(MAX_PENDING_APP_CODES - 1);

      // Expired codes free theirs.
      try {
        shift += 10 * 60_000;
        const later = await Promise.all(Array.from({ length: MAX_PENDING_APP_CODES + 1 }, () => authorize({ codeChallenge: s256(verifier) }, owner.key)));
        expect(later.filter((a) => a.data!.authorizeApp.redirectUrl)).toHaveLength(MAX_PENDING_APP_CODES);
      } finally {
        shift = 0;
      }
    });

    it('an exchange refused by the key-issue limit (429) leaves the code usable: the retry after Retry-After gets the key', async () => {
      const owner = await h.openAccount({ name: 'busy' });
      const verifier = newVerifier();
      const code = await codeBy(owner.key, verifier, 'patient app');
      // The account's first key and KEYS_PER_MINUTE - 1 more fill its minute.
      const made = await Promise.all(Array.from({ length: KEYS_PER_MINUTE - 1 }, (_, i) => h.gql(CREATE, { name: `k${i}` }, owner.key)));
      expect(made.filter(({ body }) => body.data.createApiKey.secret)).toHaveLength(KEYS_PER_MINUTE - 1);
      try {
        const limited = await exchange({ code, code_verifier: verifier });
        expect(limited.status).toBe(429);
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
        expect((await refusal(limited)).message).toContain(`at most ${KEYS_PER_MINUTE} keys a minute`);
        // Nothing was recorded for the code: it is waiting as it was.
        const stream = await h.running.core.eventStore.readStream(appAuthorizationStream(createHash('sha256').update(code).digest('hex')));
        expect(stream.map((e) => e.type)).toEqual(['AppAuthorizationGranted']);

        shift += 61_000;
        const retried = await exchange({ code, code_verifier: verifier });
        expect(retried.status).toBe(200);
        const { key } = (await retried.json()) as { key: string };
        // It is an app's key (restricted), as any exchanged one.
        expect((await h.gqlOk('{ currentKey { restricted } }', {}, key)).currentKey.restricted).toBe(true);
      } finally {
        shift = 0;
      }
    });
  });
});

/**
 * Every GraphQL operation is authorized when it runs, not when its socket opened: a key revoked, disabled or expired
 * mid-connection loses its subscriptions (pushed, not found at the next event) and every later operation on the same
 * socket. How soon is not asserted here: a loaded CI host can take more than a second (test/support/eventually.ts). Credentials
 * come from connectionParams, the upgrade request or (GraphiQL) the subscribe message's extensions.headers.
 */
import type { ExecutionResult, GraphQLFormattedError } from 'graphql';
import { createClient, type Client, type SubscribePayload } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ADMIN_KEY } from '../support/appHarness.js';
import { DEADLINE_MS, eventually, within } from '../support/eventually.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness();
});
afterAll(async () => {
  await h.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client that connects at once and keeps one socket (no retry), counting how many sockets it opened. */
const connect = (connectionParams?: Record<string, unknown>) => {
  let sockets = 0;
  const client = createClient({
    url: `ws://127.0.0.1:${h.port}/graphql`,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => undefined,
    ...(connectionParams ? { connectionParams } : {}),
    on: { connected: () => void sockets++ },
  });
  return { client, sockets: () => sockets };
};

interface Run {
  readonly results: ExecutionResult[];
  /** What the sink's error received: GraphQL errors (an `error` message) or the close event. */
  error: unknown;
  ended: boolean;
}

/** Start one operation and collect what it delivers; `ended` resolves with the time it completed or failed. */
const start = (client: Client, payload: SubscribePayload) => {
  const run: Run = { results: [], error: null, ended: false };
  const ended = new Promise<number>((resolve) => {
    const end = () => {
      run.ended = true;
      resolve(Date.now());
    };
    client.subscribe(payload, {
      next: (result) => void run.results.push(result as ExecutionResult),
      error: (error) => {
        run.error = error;
        end();
      },
      complete: end,
    });
  });
  return { run, ended };
};

const once = async (client: Client, payload: SubscribePayload) => {
  const { run, ended } = start(client, payload);
  await ended;
  return run;
};

/** The codes of every error an operation got, whether in a `next` payload or an `error` message. */
const codesOf = (run: Run): unknown[] => [
  ...run.results.flatMap((result) => (result.errors ?? []).map((error) => error.extensions?.code)),
  ...(Array.isArray(run.error) ? (run.error as GraphQLFormattedError[]).map((error) => error.extensions?.code) : []),
];

const BALANCE_CHANGED = 'subscription { balanceChanged { available } }';

/** Subscribe to balanceChanged and grant a nano-dollar until the first change arrives (graphql-ws does not ack). */
const subscribeBalance = async (client: Client, account: Account, extensions?: Record<string, unknown>) => {
  const op = start(client, { query: BALANCE_CHANGED, ...(extensions ? { extensions } : {}) });
  for (const deadline = Date.now() + DEADLINE_MS; op.run.results.length === 0 && !op.run.ended && Date.now() < deadline; ) {
    await h.grant(account.accountId, 1);
    await sleep(50);
  }
  return op;
};
const liveBalance = async (client: Client, account: Account, extensions?: Record<string, unknown>) => {
  const op = await subscribeBalance(client, account, extensions);
  expect(op.run.error).toBeNull();
  expect(op.run.results[0]?.data).toMatchObject({ balanceChanged: { available: expect.any(Number) } });
  return op;
};

/** The subscription delivered data, then one UNAUTHENTICATED error with `message`, then completed. */
const expectEndedUnauthenticated = (run: Run, message: RegExp) => {
  expect(run.ended).toBe(true);
  const last = run.results.at(-1);
  expect(last?.errors).toEqual([expect.objectContaining({ message: expect.stringMatching(message), extensions: { code: 'UNAUTHENTICATED' } })]);
  expect(run.results.slice(0, -1).every((result) => result.errors === undefined && result.data)).toBe(true);
};

const SEND = `mutation { sendPrompt(input: { model: "switchyard/demo-paid", prompt: "after revocation" }) { __typename } }`;
const CREATE_KEY = `mutation { createApiKey(name: "minted on a dead socket") { ... on CreatedApiKey { secret } } }`;

const keyCount = async (accountId: string) => {
  const { body } = await h.gql(`query ($id: ID!) { apiKeys(accountId: $id, includeRevoked: true, first: 100) { edges { node { id } } } }`, { id: accountId });
  return body.data.apiKeys.edges.length as number;
};

/** After the key is refused, the same socket can neither charge nor mint a key. */
const expectSocketRefusesTheKey = async (client: Client, account: Account, message: RegExp) => {
  const before = await h.settledBalance(account.accountId);
  const keysBefore = await keyCount(account.accountId);
  for (const query of [SEND, CREATE_KEY]) {
    const run = await once(client, { query });
    expect(codesOf(run), query).toEqual(['UNAUTHENTICATED']);
    expect(JSON.stringify(run.error ?? run.results)).toMatch(message);
  }
  const after = await h.settledBalance(account.accountId);
  expect({ settled: after.settled, reserved: after.reserved, available: after.available }).toEqual({ settled: before.settled, reserved: before.reserved, available: before.available });
  expect(await keyCount(account.accountId)).toBe(keysBefore);
};

describe('a key refused mid-connection loses the socket', () => {
  it('revoked: its balanceChanged subscription ends with UNAUTHENTICATED; sendPrompt and createApiKey on the same socket are refused and change nothing', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const { client, sockets } = connect({ authorization: `Bearer ${user.key}` });
    try {
      // The socket works before: a paid prompt is charged.
      expect((await once(client, { query: SEND })).results[0]?.data).toEqual({ sendPrompt: { __typename: 'SendPromptResult' } });
      const op = await liveBalance(client, user);

      const revoked = await h.gql(`mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: user.keyId }, ADMIN_KEY);
      expect(revoked.body.data.revokeApiKey).toEqual({ __typename: 'ApiKey' });
      await within('the subscription to end after the revocation', op.ended);
      expectEndedUnauthenticated(op.run, /revoked/);

      await expectSocketRefusesTheKey(client, user, /revoked/);
      expect(sockets()).toBe(1);
    } finally {
      await client.dispose();
    }
  });

  it('disabled: the subscription ends with UNAUTHENTICATED; enabled again, the same socket works again (each operation is authenticated when it runs)', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const { client, sockets } = connect({ authorization: `Bearer ${user.key}` });
    try {
      const op = await liveBalance(client, user);
      await h.gql(`mutation ($id: ID!) { disableApiKey(id: $id) { __typename } }`, { id: user.keyId }, ADMIN_KEY);
      await within('the subscription to end after disabling the key', op.ended);
      expectEndedUnauthenticated(op.run, /disabled/);
      await expectSocketRefusesTheKey(client, user, /disabled/);

      await h.gql(`mutation ($id: ID!) { enableApiKey(id: $id) { __typename } }`, { id: user.keyId }, ADMIN_KEY);
      expect((await once(client, { query: '{ me { id } }' })).results[0]?.data).toEqual({ me: { id: user.accountId } });
      expect(sockets()).toBe(1);
    } finally {
      await client.dispose();
    }
  });

  it('expired: the subscription ends with UNAUTHENTICATED at expiresAt, not before, with no event marking it', { timeout: 60_000 }, async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    // The key must still be live once the subscription is: on a loaded host setting it up can outlast a short life,
    // and then the key is made again with a longer one (the test proves nothing about a key already expired).
    let attempt: { client: Client; sockets: () => number; op: Awaited<ReturnType<typeof subscribeBalance>>; expiresAt: number } | null = null;
    for (let lifeMs = 2_000; attempt === null; lifeMs *= 2) {
      expect(lifeMs, 'a key living long enough to see its subscription live').toBeLessThanOrEqual(16_000);
      const expiresAt = Date.now() + lifeMs;
      const { body } = await h.gql(
        `mutation ($id: ID!, $at: DateTime!) { createApiKey(accountId: $id, name: "short-lived", expiresAt: $at) { ... on CreatedApiKey { secret } } }`,
        { id: user.accountId, at: new Date(expiresAt).toISOString() },
      );
      const secret = body.data.createApiKey.secret as string;
      const { client, sockets } = connect({ authorization: `Bearer ${secret}` });
      const op = await subscribeBalance(client, user);
      if (op.run.results[0]?.data && Date.now() < expiresAt) attempt = { client, sockets, op, expiresAt };
      else await client.dispose();
    }
    const { client, sockets, op, expiresAt } = attempt;
    try {
      expect(op.run.error).toBeNull();
      expect(op.run.results[0]?.data).toMatchObject({ balanceChanged: { available: expect.any(Number) } });
      const endedAt = await within('the subscription to end at expiresAt', op.ended, expiresAt - Date.now() + DEADLINE_MS);
      expect(endedAt).toBeGreaterThanOrEqual(expiresAt);
      expectEndedUnauthenticated(op.run, /expired/);
      await expectSocketRefusesTheKey(client, user, /expired/);
      expect(sockets()).toBe(1);
    } finally {
      await client.dispose();
    }
  });
});

describe('rights narrowed mid-connection', () => {
  it('a role revoked: the account\'s live subscriptions end (authorized with the old roles) and are authorized anew when started again', async () => {
    const user = await h.openAccount({ roles: ['user', 'admin'], credits: 1_000_000_000 });
    const { client } = connect({ authorization: `Bearer ${user.key}` });
    try {
      const op = await liveBalance(client, user);
      const revoked = await h.gql(`mutation ($id: ID!) { revokeRole(accountId: $id, role: ADMIN) { __typename } }`, { id: user.accountId }, ADMIN_KEY);
      expect(revoked.body.errors).toBeUndefined();
      await within('the subscription to end after the role change', op.ended);
      expectEndedUnauthenticated(op.run, /lost the role admin/);
      // The key itself still works: started again, the subscription is authorized with the roles the account has now.
      const again = await liveBalance(client, user);
      expect(again.run.ended).toBe(false);
      expect(codesOf(await once(client, { query: '{ billingAudit { ok } }' }))).toEqual(['FORBIDDEN']);
    } finally {
      await client.dispose();
    }
  });
});

describe('credentials of an operation', () => {
  it('GraphiQL-shaped: a socket opened without credentials runs a subscription and a query whose subscribe message carries extensions.headers', async () => {
    const user = await h.openAccount();
    const { client } = connect();
    try {
      const headers = { headers: { Authorization: `Bearer ${user.key}` } };
      const op = await liveBalance(client, user, headers);
      expect((await once(client, { query: '{ me { id } }', extensions: headers })).results[0]?.data).toEqual({ me: { id: user.accountId } });
      // Without the headers the same socket is anonymous again.
      expect(codesOf(await once(client, { query: '{ me { id } }' }))).toEqual(['UNAUTHENTICATED']);
      expect(op.run.ended).toBe(false);
    } finally {
      await client.dispose();
    }
  });

  it("a subscribe message's headers win over the connection's credentials", async () => {
    const [first, second] = [await h.openAccount(), await h.openAccount()];
    const { client } = connect({ authorization: `Bearer ${first.key}` });
    try {
      expect((await once(client, { query: '{ me { id } }' })).results[0]?.data).toEqual({ me: { id: first.accountId } });
      const run = await once(client, { query: '{ me { id } }', extensions: { headers: { authorization: `Bearer ${second.key}` } } });
      expect(run.results[0]?.data).toEqual({ me: { id: second.accountId } });
      const bad = await once(client, { query: '{ me { id } }', extensions: { headers: { Authorization: 'Bearer sk-sy-v1-nope' } } });
      expect(codesOf(bad)).toEqual(['UNAUTHENTICATED']);
    } finally {
      await client.dispose();
    }
  });

  it('a subscription without credentials is UNAUTHENTICATED (not INTERNAL); public queries still work on that socket', async () => {
    const { client } = connect();
    try {
      for (const query of [BALANCE_CHANGED, 'subscription { apiKeyChanged { id } }', 'subscription { generation(id: "gen-x") { type } }']) {
        const run = await once(client, { query });
        expect(codesOf(run), query).toEqual(['UNAUTHENTICATED']);
      }
      const models = await once(client, { query: '{ models(first: 1) { edges { node { id } } } }' });
      expect(models.results[0]?.errors).toBeUndefined();
      expect(models.results[0]?.data).toMatchObject({ models: { edges: [{ node: { id: expect.any(String) } }] } });
    } finally {
      await client.dispose();
    }
  });

  it('a bad key at connect time is refused with 4403 and the reason', async () => {
    const user = await h.openAccount();
    await h.gql(`mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: user.keyId }, ADMIN_KEY);
    for (const [key, reason] of [
      ['sk-sy-v1-nope', 'Forbidden: Invalid API key'],
      [user.key, 'Forbidden: API key has been revoked'],
    ] as const) {
      const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${key}` } });
      const run = await once(client, { query: '{ models(first: 1) { edges { node { id } } } }' });
      expect(run.results).toEqual([]);
      expect(run.error).toMatchObject({ code: 4403, reason });
      await client.dispose();
    }
  });
});

describe('subscriptions over SSE', () => {
  it('end with UNAUTHENTICATED when their key is revoked', async () => {
    const user = await h.openAccount();
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${user.key}` },
      body: JSON.stringify({ query: BALANCE_CHANGED }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const read = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += value;
      }
    })();
    for (const deadline = Date.now() + DEADLINE_MS; !text.includes('balanceChanged') && Date.now() < deadline; ) {
      await h.grant(user.accountId, 1);
      await sleep(50);
    }
    expect(text).toContain('balanceChanged');
    await h.gql(`mutation ($id: ID!) { revokeApiKey(id: $id) { __typename } }`, { id: user.keyId }, ADMIN_KEY);
    await within('the stream to end after the revocation', read);
    expect(text).toMatch(/"code":"UNAUTHENTICATED"/);
    expect(text).toMatch(/revoked/);
  });
});

describe('operations per connection', () => {
  it('one socket runs at most 100 operations at once: the next is RATE_LIMITED, and a slot freed takes another', async () => {
    const user = await h.openAccount();
    const { client } = connect({ authorization: `Bearer ${user.key}` });
    const subscription = { query: 'subscription { balanceChanged { available } }' };
    const stops: (() => void)[] = [];
    for (let i = 0; i < 100; i++) stops.push(client.subscribe(subscription, { next: () => undefined, error: () => undefined, complete: () => undefined }));
    // The 101st and 102nd, a query as a subscription: refused, however fast the hundred were asked for.
    expect(codesOf(await once(client, { query: '{ __typename }' }))).toEqual(['RATE_LIMITED']);
    expect(codesOf(await once(client, subscription))).toEqual(['RATE_LIMITED']);
    stops.pop()!();
    await expect.poll(async () => codesOf(await once(client, { query: '{ me { name } }' }))).toEqual([]);
    await client.dispose();
  });

  /** A raw graphql-transport-ws socket, acknowledged, with the close it gets (code and reason). */
  const rawSocket = async (key: string) => {
    const socket = new WebSocket(`ws://127.0.0.1:${h.port}/graphql`, 'graphql-transport-ws');
    const closed = new Promise<[number, string]>((resolve) => socket.once('close', (code, reason) => resolve([code, String(reason)])));
    const acked = new Promise<void>((resolve) => socket.on('message', (data) => (JSON.parse(String(data)) as { type: string }).type === 'connection_ack' && resolve()));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } }));
    await within('the connection to be acknowledged', acked);
    return { socket, closed };
  };

  // QA s40 #1: `complete` frees an id in graphql-ws while its operation is still being prepared, so a `subscribe` on it
  // ran a second operation under the same id: the first was counted nowhere and reached by neither `complete` nor the
  // socket's close (10 rounds of 100 ids left 950 live subscriptions, still running after the socket closed).
  it('subscribe, complete, subscribe on one id closes the socket with 4409 (the protocol\'s "already exists"), and nothing it started outlives the socket', async () => {
    const user = await h.openAccount();
    const { socket, closed } = await rawSocket(user.key);
    const payload = { query: BALANCE_CHANGED };
    for (let i = 0; i < 100; i++) {
      socket.send(JSON.stringify({ id: `op${i}`, type: 'subscribe', payload }));
      socket.send(JSON.stringify({ id: `op${i}`, type: 'complete' }));
      socket.send(JSON.stringify({ id: `op${i}`, type: 'subscribe', payload }));
    }
    expect(await within('the socket to be closed', closed)).toEqual([4409, 'Subscriber for op0 already exists']);
    await eventually('no balanceChanged subscription of the account left running', () => !h.running.core.watched('balanceChanged', user.accountId));
  });

  it('every operation a socket started ends when it closes, those still being prepared included', async () => {
    const user = await h.openAccount();
    const { socket, closed } = await rawSocket(user.key);
    for (let i = 0; i < 100; i++) socket.send(JSON.stringify({ id: `op${i}`, type: 'subscribe', payload: { query: BALANCE_CHANGED } }));
    await eventually('the subscriptions to run', () => h.running.core.watched('balanceChanged', user.accountId));
    socket.terminate();
    await closed;
    await eventually('no balanceChanged subscription of the account left running', () => !h.running.core.watched('balanceChanged', user.accountId));
  });
});

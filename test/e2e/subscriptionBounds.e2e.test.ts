/**
 * What one account may hold of the server with GraphQL subscriptions (QA s45 res #1): 10,000 balanceChanged
 * subscriptions of one key over 100 sockets took another user's chat p99 to 6 s, and hundreds of replays of one large
 * feed or run stalled the server for 5–21 s. An account has at most GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT open at once,
 * across all its sockets and keys and over SSE too, and GRAPHQL_MAX_SOCKETS_PER_ACCOUNT graphql-ws connections used
 * with its keys (opened with one, or opened without and then running an operation with one); the server at most
 * GRAPHQL_MAX_KEYLESS_SOCKETS that are no account's (initialised without a key, not yet used with one); replays of a large
 * generation feed or run reach every subscriber whole and in order, and a run's subscriber that stops reading is ended
 * once 10,000 items behind.
 */
import type { ExecutionResult, GraphQLFormattedError } from 'graphql';
import { createClient, type Client, type SubscribePayload } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually, within } from '../support/eventually.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const BALANCE_CHANGED = 'subscription { balanceChanged { available } }';
const clients: Client[] = [];

const connect = (h: GatewayHarness, key?: string) => {
  const client = createClient({
    url: `ws://127.0.0.1:${h.port}/graphql`,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => undefined,
    ...(key ? { connectionParams: { authorization: `Bearer ${key}` } } : {}),
  });
  clients.push(client);
  return client;
};

interface Run {
  readonly results: ExecutionResult[];
  /** What the sink's error received: GraphQL errors (an `error` message) or a close event. */
  error: unknown;
  ended: boolean;
  stop: () => void;
}

const start = (client: Client, payload: SubscribePayload): Run => {
  const run: Run = { results: [], error: null, ended: false, stop: () => undefined };
  run.stop = client.subscribe(payload, {
    next: (result) => void run.results.push(result as ExecutionResult),
    error: (error) => {
      run.error = error;
      run.ended = true;
    },
    complete: () => void (run.ended = true),
  });
  return run;
};

/** The errors an operation got as graphql-ws `error` messages. */
const errorsOf = (run: Run): GraphQLFormattedError[] => (Array.isArray(run.error) ? (run.error as GraphQLFormattedError[]) : []);

const TOO_MANY = (limit: number) => ({
  message: `Too many subscriptions for this account: at most ${limit} at once, across all its connections; complete some first`,
  extensions: { code: 'RATE_LIMITED', reason: 'too_many_subscriptions', limit },
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.dispose()));
});

/** Every raw socket opened, to close after each test of the keyless bound. */
const rawSockets: { socket: WebSocket; closed: Promise<unknown> }[] = [];
/** A raw graphql-transport-ws socket: acknowledged, or the close it got; `run` sends an operation and resolves with its first answer. */
const rawSocket = async (h: GatewayHarness, key?: string) => {
  const socket = new WebSocket(`ws://127.0.0.1:${h.port}/graphql`, 'graphql-transport-ws');
  const closed = new Promise<[number, string]>((resolve) => socket.once('close', (code, reason) => resolve([code, String(reason)])));
  rawSockets.push({ socket, closed });
  const messages: { type: string; id?: string; payload?: unknown }[] = [];
  const heard: (() => void)[] = [];
  socket.on('message', (data) => {
    messages.push(JSON.parse(String(data)) as { type: string });
    for (const wake of heard.splice(0)) wake();
  });
  const next = async (match: (m: { type: string; id?: string }) => boolean) => {
    for (;;) {
      const found = messages.find(match);
      if (found) return found;
      await within('a message', Promise.race([new Promise<void>((resolve) => heard.push(resolve)), closed]));
      if (socket.readyState !== WebSocket.OPEN && !messages.some(match)) throw new Error('closed');
    }
  };
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: key ? { authorization: `Bearer ${key}` } : {} }));
  const outcome = await within('the connection to be acknowledged or closed', Promise.race([next((m) => m.type === 'connection_ack').then(() => 'acked' as const, () => closed), closed]));
  let ids = 0;
  const run = async (query: string, headers?: Record<string, string>) => {
    const id = String(++ids);
    socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, ...(headers && { extensions: { headers } }) } }));
    return next((m) => m.id === id && (m.type === 'next' || m.type === 'error'));
  };
  return { socket, closed, outcome, run, messages };
};

describe('subscriptions and sockets per account', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness({ GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT: '3', GRAPHQL_MAX_SOCKETS_PER_ACCOUNT: '2' });
  });
  afterAll(async () => {
    await h.stop();
  });

  /** Until each of `runs` is live: it has received a balance change of the account (or ended). */
  const live = async (account: Account, runs: Run[]) =>
    eventually('the subscriptions to be live', async () => {
      await h.grant(account.accountId, 1);
      return runs.every((run) => run.results.length > 0 || run.ended);
    });

  /** Subscribe to balanceChanged until one is accepted (a slot given back is free once the server has seen its end). */
  const takeFreedSlot = async (account: Account, client: Client): Promise<Run> =>
    eventually('a freed slot to be taken', async () => {
      const run = start(client, { query: BALANCE_CHANGED });
      await live(account, [run]);
      if (run.results.length > 0) return run;
      expect(errorsOf(run)).toEqual([TOO_MANY(3)]);
      return null;
    });

  it('the subscription past the bound, on any of the account’s sockets and with any of its keys, is refused RATE_LIMITED; one that ends frees its slot', async () => {
    const account = await h.openAccount();
    const other = await h.openAccount();
    const second = await h.gqlOk('mutation { createApiKey(name: "second") { ... on CreatedApiKey { secret } } }', {}, account.key);
    const first = connect(h, account.key);
    const next = connect(h, second.createApiKey.secret as string);
    const held = [start(first, { query: BALANCE_CHANGED }), start(first, { query: BALANCE_CHANGED }), start(next, { query: BALANCE_CHANGED })];
    await live(account, held);
    expect(held.map((run) => run.error)).toEqual([null, null, null]);

    // The fourth, on either socket: an `error` message, typed; the others go on.
    for (const client of [first, next]) {
      const refused = start(client, { query: BALANCE_CHANGED });
      await eventually('the refusal', () => refused.ended);
      expect(errorsOf(refused)).toEqual([TOO_MANY(3)]);
      expect(refused.results).toEqual([]);
    }
    // Queries and mutations are not subscriptions; another account has its own slots.
    const query = start(next, { query: '{ me { id } }' });
    await eventually('the query', () => query.ended);
    expect(query.results).toEqual([{ data: { me: { id: account.accountId } } }]);
    const others = [start(connect(h, other.key), { query: BALANCE_CHANGED })];
    await live(other, others);
    expect(others[0]!.error).toBeNull();

    // Completing one frees its slot, for any socket of the account.
    held[0]!.stop();
    held[0] = await takeFreedSlot(account, next);
    // A closed socket frees all it held.
    await next.dispose();
    await takeFreedSlot(account, first);
    await takeFreedSlot(account, connect(h, account.key));
  });

  it('a subscription its field refuses (NOT_FOUND) holds no slot', async () => {
    const account = await h.openAccount();
    const client = connect(h, account.key);
    const held = [start(client, { query: BALANCE_CHANGED }), start(client, { query: BALANCE_CHANGED })];
    await live(account, held);
    for (let i = 0; i < 5; i++) {
      const missing = start(client, { query: 'subscription { workflowRun(id: "run_missing") { type } }' });
      await eventually('the refusal', () => missing.ended);
      expect(missing.results.flatMap((result) => result.errors ?? []).map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
    }
    const third = start(client, { query: BALANCE_CHANGED });
    await live(account, [third]);
    expect(third.error).toBeNull();
    const fourth = start(client, { query: BALANCE_CHANGED });
    await eventually('the refusal', () => fourth.ended);
    expect(errorsOf(fourth)).toEqual([TOO_MANY(3)]);
  });

  it('subscriptions over SSE count too, and a closed SSE request frees its slot', async () => {
    const account = await h.openAccount();
    const sse = (signal?: AbortSignal) =>
      fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${account.key}` },
        body: JSON.stringify({ query: BALANCE_CHANGED }),
        ...(signal && { signal }),
      });
    const abort = new AbortController();
    const held = await sse(abort.signal);
    expect(held.status).toBe(200);
    const reader = held.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    void (async () => {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return;
        text += value;
      }
    })();
    await eventually('the SSE subscription to be live', async () => {
      await h.grant(account.accountId, 1);
      return text.includes('balanceChanged');
    });
    const client = connect(h, account.key);
    const ws = [start(client, { query: BALANCE_CHANGED }), start(client, { query: BALANCE_CHANGED })];
    await live(account, ws);

    const refused = start(client, { query: BALANCE_CHANGED });
    await eventually('the refusal', () => refused.ended);
    expect(errorsOf(refused)).toEqual([TOO_MANY(3)]);
    // Over SSE: the same error, and the stream ends.
    const overSse = await sse();
    const body = await overSse.text();
    expect(body).toContain('"code":"RATE_LIMITED"');
    expect(body).toContain('"reason":"too_many_subscriptions"');
    expect(body).toMatch(/event: complete/);

    abort.abort();
    await takeFreedSlot(account, client);
  });

  it('the socket past the bound opened with an account’s key is closed 1013 (try again later); one closing frees its place; a socket without a key runs subscriptions within the same bound', async () => {
    const account = await h.openAccount();
    const one = await rawSocket(h, account.key);
    const two = await rawSocket(h, account.key);
    expect([one.outcome, two.outcome]).toEqual(['acked', 'acked']);
    expect((await rawSocket(h, account.key)).outcome).toEqual([1013, 'Too many connections for this account: at most 2 at once']);
    // Another account's, and one without a key, are not this account's.
    expect((await rawSocket(h, (await h.openAccount()).key)).outcome).toBe('acked');
    expect((await rawSocket(h)).outcome).toBe('acked');

    one.socket.close();
    await one.closed;
    expect(await eventually('a place to free', async () => {
      const again = await rawSocket(h, account.key);
      return again.outcome === 'acked' && again.outcome;
    })).toBe('acked');

    // A socket opened without a key, its subscriptions naming another account's key (as GraphiQL sends them): counted
    // against that account all the same.
    const user = await h.openAccount();
    const keyed = connect(h, user.key);
    const held = [0, 1, 2].map(() => start(keyed, { query: BALANCE_CHANGED }));
    await live(user, held);
    const anonymous = connect(h);
    const withKey = { query: BALANCE_CHANGED, extensions: { headers: { authorization: `Bearer ${user.key}` } } };
    const refused = start(anonymous, withKey);
    await eventually('the refusal', () => refused.ended);
    expect(errorsOf(refused)).toEqual([TOO_MANY(3)]);
    held[0]!.stop();
    await eventually('a freed slot to be taken', async () => {
      const run = start(anonymous, withKey);
      await live(user, [run]);
      return run.results.length > 0;
    });
  });

  it('a socket opened without a key counts against the account of its first operation with a key: one past the bound is closed 1013, its operation not run; one closing frees its place', async () => {
    const account = await h.openAccount();
    const me = { query: '{ me { id } }', extensions: { headers: { authorization: `Bearer ${account.key}` } } };
    const answered = async (client: Client, payload: SubscribePayload = me) => {
      const run = start(client, payload);
      await eventually('the answer', () => run.ended);
      return run;
    };
    const ME = [{ data: { me: { id: account.accountId } } }];
    const TRY_LATER = { code: 1013, reason: 'Too many connections for this account: at most 2 at once' };
    const closeOf = (run: Run) => {
      const { code, reason } = run.error as { code: number; reason: string };
      return { code, reason };
    };

    // Two sockets without a key, each running the account's queries (as GraphiQL sends its Headers tab): its two places.
    const first = connect(h);
    const second = connect(h);
    for (const client of [first, second]) expect((await answered(client)).results).toEqual(ME);
    // A socket is counted once, whatever it runs after.
    expect((await answered(first)).results).toEqual(ME);
    const subscribed = start(first, { ...me, query: BALANCE_CHANGED });
    await live(account, [subscribed]);
    expect(subscribed.error).toBeNull();

    // The third, at its first operation with the key: closed 1013, the operation not answered.
    const third = await answered(connect(h));
    expect(third.results).toEqual([]);
    expect(closeOf(third)).toEqual(TRY_LATER);
    // A socket opened with the key is one too many as well.
    const keyed = await answered(connect(h, account.key), { query: '{ me { id } }' });
    expect(keyed.results).toEqual([]);
    expect(closeOf(keyed)).toEqual(TRY_LATER);
    // A socket without a key that runs nothing with one is no account's; another account has its own places.
    expect((await answered(connect(h), { query: '{ __typename }' })).results).toEqual([{ data: { __typename: 'Query' } }]);
    const other = await h.openAccount();
    expect((await answered(connect(h), { query: '{ me { id } }', extensions: { headers: { authorization: `Bearer ${other.key}` } } })).results).toEqual([{ data: { me: { id: other.accountId } } }]);

    // One closing frees its place, for a socket with or without a key.
    await second.dispose();
    await eventually('a place to free', async () => {
      const again = await answered(connect(h));
      return again.results.length > 0 && again.results;
    });
  });

  it('a key refused gives back at once the places of the sockets counted under it: revoking a leaked key frees the owner’s places; a socket uncounted so counts again at its next operation with an accepted key', async () => {
    const account = await h.openAccount();
    const created = await h.gqlOk('mutation { createApiKey(name: "leaked") { ... on CreatedApiKey { secret key { id } } } }', {}, account.key);
    const leaked = created.createApiKey as { secret: string; key: { id: string } };
    const as = (key: string) => ({ query: '{ me { id } }', extensions: { headers: { authorization: `Bearer ${key}` } } });
    const answered = async (client: Client, payload: SubscribePayload) => {
      const run = start(client, payload);
      await eventually('the answer', () => run.ended);
      return run;
    };
    const ME = [{ data: { me: { id: account.accountId } } }];
    const closeCode = (run: Run) => (run.error as { code?: number } | null)?.code;

    // Whoever holds the leaked key takes both places: one socket opened with it, one without whose operation names it;
    // the first holds a subscription too.
    const keyed = connect(h, leaked.secret);
    expect((await answered(keyed, { query: '{ me { id } }' })).results).toEqual(ME);
    const subscription = start(keyed, { query: BALANCE_CHANGED });
    await live(account, [subscription]);
    const keyless = connect(h);
    expect((await answered(keyless, as(leaked.secret))).results).toEqual(ME);
    const locked = await answered(connect(h, account.key), { query: '{ me { id } }' });
    expect(locked.results).toEqual([]);
    expect(closeCode(locked)).toBe(1013);

    await h.gqlOk('mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: leaked.key.id }, account.key);
    await eventually('the subscription to end', () => subscription.ended);
    expect(errorsOf(subscription)).toEqual([]);
    expect(subscription.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // The leaked key's sockets are open, refused everything, and hold no place: the owner's socket is accepted.
    const refused = await answered(keyless, as(leaked.secret));
    expect(refused.results.length > 0 ? refused.results[0]?.errors?.[0]?.extensions?.code : errorsOf(refused)[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const owners = await eventually('the owner’s socket to be accepted', async () => {
      const run = await answered(connect(h, account.key), { query: '{ me { id } }' });
      return run.results.length > 0 && run;
    });
    expect(owners.results).toEqual(ME);
    // A socket uncounted so counts again at its next operation with an accepted key: the second place, the third is
    // one too many.
    expect((await answered(keyed, as(account.key))).results).toEqual(ME);
    const third = await answered(connect(h), as(account.key));
    expect(third.results).toEqual([]);
    expect(closeCode(third)).toBe(1013);
  });
});

describe('sockets that are no account’s', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness({ GRAPHQL_MAX_KEYLESS_SOCKETS: '2', GRAPHQL_MAX_SOCKETS_PER_ACCOUNT: '2' });
  });
  afterEach(async () => {
    await Promise.all(
      rawSockets.splice(0).map(async ({ socket, closed }) => {
        socket.close();
        await closed;
      }),
    );
  });
  afterAll(async () => {
    await h.stop();
  });

  const TRY_LATER = [1013, 'Too many connections without a key: at most 2 at once; connect with a key'];

  it('one initialised without a key past GRAPHQL_MAX_KEYLESS_SOCKETS is closed 1013; sockets with a key are not held back by them; one that closes, or runs an operation with a key (then its account’s), frees its place', async () => {
    const account = await h.openAccount();
    const first = await rawSocket(h);
    const second = await rawSocket(h);
    expect([first.outcome, second.outcome]).toEqual(['acked', 'acked']);
    expect((await rawSocket(h)).outcome).toEqual(TRY_LATER);
    // What needs no key still runs on the keyless sockets held.
    expect(await first.run('{ __typename }')).toMatchObject({ type: 'next', payload: { data: { __typename: 'Query' } } });

    // Opened with a key: the account's, not a keyless one.
    const keyed = await rawSocket(h, account.key);
    expect(keyed.outcome).toBe('acked');
    expect(await keyed.run('{ me { id } }')).toMatchObject({ type: 'next', payload: { data: { me: { id: account.accountId } } } });

    // A keyless socket whose operation names a key becomes that account's (its second place): a keyless place frees.
    expect(await second.run('{ me { id } }', { authorization: `Bearer ${account.key}` })).toMatchObject({ type: 'next', payload: { data: { me: { id: account.accountId } } } });
    const third = await rawSocket(h);
    expect(third.outcome).toBe('acked');
    expect((await rawSocket(h)).outcome).toEqual(TRY_LATER);

    // One closing frees its place.
    first.socket.close();
    await first.closed;
    expect(await eventually('a keyless place to free', async () => {
      const again = await rawSocket(h);
      return again.outcome === 'acked' && again.outcome;
    })).toBe('acked');
  });

  it('a socket whose key is refused counts among the keyless ones; with none free it is closed 1013 once its subscriptions’ UNAUTHENTICATED has reached it', async () => {
    const account = await h.openAccount();
    const newKey = async (name: string) =>
      (await h.gqlOk(`mutation { createApiKey(name: "${name}") { ... on CreatedApiKey { secret key { id } } } }`, {}, account.key)).createApiKey as { secret: string; key: { id: string } };
    const revoke = (key: { key: { id: string } }) => h.gqlOk('mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', { id: key.key.id }, account.key);
    const leaked = await newKey('leaked');
    // A subscription on a socket opened with the key, live.
    const keyed = await rawSocket(h, leaked.secret);
    expect(keyed.outcome).toBe('acked');
    keyed.socket.send(JSON.stringify({ id: 'balance', type: 'subscribe', payload: { query: BALANCE_CHANGED } }));
    await eventually('the subscription to be live', async () => {
      await h.grant(account.accountId, 1);
      return keyed.messages.some((m) => m.id === 'balance' && m.type === 'next');
    });
    // Every keyless place taken (those of the test before are given back as their sockets' closes are handled).
    const held = [
      await eventually('a keyless place', async () => {
        const socket = await rawSocket(h);
        return socket.outcome === 'acked' && socket;
      }),
      await rawSocket(h),
    ];
    expect(held[1]!.outcome).toBe('acked');

    await revoke(leaked);
    expect(await keyed.closed).toEqual(TRY_LATER);
    // Before the close: the subscription's UNAUTHENTICATED, then its end.
    const balance = keyed.messages.filter((m) => m.id === 'balance') as { type: string; payload?: { errors?: { extensions?: { code?: string } }[] } }[];
    expect(balance.at(-1)?.type).toBe('complete');
    expect(balance.at(-2)?.payload?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    // With a keyless place free, the socket stays open, a keyless one: it runs what needs no key, and the next keyless socket is one too many.
    held[0]!.socket.close();
    await held[0]!.closed;
    const another = await newKey('another');
    const stays = await eventually('a socket opened with the key', async () => {
      const socket = await rawSocket(h, another.secret);
      return socket.outcome === 'acked' && socket;
    });
    const opened = await eventually('a keyless place to free', async () => {
      const socket = await rawSocket(h);
      if (socket.outcome !== 'acked') return false;
      socket.socket.close();
      await socket.closed;
      return true;
    });
    expect(opened).toBe(true);
    await revoke(another);
    // Past the moment a refused socket without a keyless place is closed: this one is open, refused what it runs with
    // the revoked key, and the keyless place it took makes the next keyless socket one too many.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(stays.socket.readyState).toBe(WebSocket.OPEN);
    expect(await stays.run('{ me { id } }')).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
    expect((await rawSocket(h)).outcome).toEqual(TRY_LATER);
    // Its next operation with an accepted key makes it the account's again: its keyless place frees.
    expect(await stays.run('{ me { id } }', { authorization: `Bearer ${account.key}` })).toMatchObject({ type: 'next', payload: { data: { me: { id: account.accountId } } } });
    expect((await rawSocket(h)).outcome).toBe('acked');
  });
});

describe('replays to several subscribers at once', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness();
  });
  afterAll(async () => {
    await h.stop();
  });

  /** Every result of one subscription on its own socket, until it completes. */
  const collect = async (key: string, payload: SubscribePayload): Promise<ExecutionResult[]> => {
    const client = connect(h, key);
    const results: ExecutionResult[] = [];
    try {
      for await (const result of client.iterate(payload)) results.push(result as ExecutionResult);
    } finally {
      await client.dispose();
    }
    return results;
  };

  it('a generation’s feed of 5,000 tokens reaches each of 8 subscribers whole and in order, then its end', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'wordy', model: 'wordy/words', prices: { prompt: 1, completion: 1 }, maxOutput: 10_000 });
    const text = Array.from({ length: 5_000 }, (_, i) => `w${String(i).padStart(5, '0')} `).join('');
    fake.script({ text });
    const data = await h.gqlOk('mutation { startGeneration(input: { model: "wordy/words", prompt: "talk" }) { ... on StartedGeneration { generationId } ... on DomainError { message } } }', {}, user.key);
    const id = data.startGeneration.generationId as string;
    // Replayed once it is whole: every subscriber gets it from the feed the server keeps.
    await h.generation(user.key, id);
    const query = { query: 'subscription ($id: ID!) { generation(id: $id) { type content status } }', variables: { id } };
    const replays = await Promise.all(Array.from({ length: 8 }, () => collect(user.key, query)));
    for (const results of replays) {
      expect(results.flatMap((result) => result.errors ?? [])).toEqual([]);
      const events = results.map((result) => (result.data as { generation: { type: string; content: string | null; status: string | null } }).generation);
      expect(events.filter((event) => event.type === 'TOKEN').map((event) => event.content).join('')).toBe(text);
      expect(events.at(-1)).toMatchObject({ type: 'DONE', status: 'COMPLETED' });
    }
  });

  it('a finished run of 4 MB in 62 events reaches each of 8 subscribers whole and in order, then completes', async () => {
    const designer = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
    const steps = Array.from({ length: 30 }, (_, i) => ({ key: `s${i}`, type: 'action.transform', input: { expression: `=$pad("", 130000, "${i % 10}")` } }));
    const created = await h.gqlOk('mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message } } }', { d: { name: 'Big', trigger: { type: 'manual' }, steps } }, designer.key);
    const started = await h.gqlOk('mutation ($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id } ... on DomainError { code message } } }', { id: created.createWorkflow.id }, designer.key);
    const runId = started.runWorkflow.id as string;
    await eventually('the run to end', async () => (await h.gqlOk('query ($id: ID!) { workflowRun(id: $id) { status } }', { id: runId }, designer.key)).workflowRun.status === 'SUCCEEDED');
    const query = {
      query: `subscription ($id: ID!) { workflowRun(id: $id) { type
        ... on WorkflowStepSucceededEvent { revision key output }
        ... on WorkflowStepStartedEvent { revision key }
        ... on WorkflowRunStartedEvent { revision }
        ... on WorkflowRunEndedEvent { revision status } } }`,
      variables: { id: runId },
    };
    const replays = await Promise.all(Array.from({ length: 8 }, () => collect(designer.key, query)));
    for (const results of replays) {
      expect(results.flatMap((result) => result.errors ?? [])).toEqual([]);
      const events = results.map((result) => (result.data as { workflowRun: { type: string; revision: number; key?: string; output?: unknown; status?: string } }).workflowRun);
      expect(events.map((event) => event.revision)).toEqual(Array.from({ length: 2 + 2 * steps.length }, (_, i) => i));
      const outputs = events.filter((event) => event.type === 'STEP_SUCCEEDED');
      expect(outputs.map((event) => event.key)).toEqual(steps.map((step) => step.key));
      outputs.forEach((event, i) => expect(event.output).toBe(String(i % 10).repeat(130_000)));
      expect(events.at(-1)).toMatchObject({ type: 'RUN_ENDED', status: 'SUCCEEDED' });
    }
  });
});

describe('a run subscriber that stops reading', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness();
  });
  afterAll(async () => {
    await h.stop();
  });

  it('replaying a large run while its model step streams 12,000 tokens, it is ended UNAVAILABLE once 10,000 items behind, not held until its socket closes', async () => {
    const designer = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
    const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'chatty', model: 'chatty/words', prices: { prompt: 1, completion: 1 }, contextLength: 100_000, maxOutput: 50_000 });
    let release = () => undefined as void;
    const words = 12_000;
    fake.script({ text: Array.from({ length: words }, (_, i) => `w${i} `).join(''), holdUntil: new Promise<void>((resolve) => (release = resolve)) });
    // 14.4 MB stored before the model step: more than the socket buffers between the server and a client that does not
    // read hold, so its replay waits for it.
    const steps = [
      ...Array.from({ length: 36 }, (_, i) => ({ key: `s${i}`, type: 'action.transform', input: { expression: `=$pad("", 400000, "${i % 10}")` } })),
      { key: 'talk', type: 'action.model', input: { model: 'chatty/words', prompt: 'talk', maxTokens: 40_000 } },
    ];
    const created = await h.gqlOk('mutation ($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message } } }', { d: { name: 'Big then chatty', trigger: { type: 'manual' }, steps } }, designer.key);
    const started = await h.gqlOk('mutation ($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id } ... on DomainError { code message } } }', { id: created.createWorkflow.id }, designer.key);
    const runId = started.runWorkflow.id as string;
    await eventually('the model call to be held', () => fake.requests.length === 1);

    // A real graphql-ws client whose socket stops being read after its first message.
    let socket: WebSocket | undefined;
    class Captured extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        socket = this;
      }
    }
    const client = createClient({ url: `ws://127.0.0.1:${h.port}/graphql`, webSocketImpl: Captured, lazy: false, retryAttempts: 0, onNonLazyError: () => undefined, connectionParams: { authorization: `Bearer ${designer.key}` } });
    clients.push(client);
    const sub = start(client, {
      query: `subscription ($id: ID!) { workflowRun(id: $id) { type
        ... on WorkflowStepSucceededEvent { revision key output }
        ... on WorkflowStepStartedEvent { revision key }
        ... on WorkflowRunStartedEvent { revision }
        ... on WorkflowStepTokenEvent { content }
        ... on WorkflowRunEndedEvent { revision status } } }`,
      variables: { id: runId },
    });
    await eventually('the first event', () => sub.results.length > 0 || sub.ended);
    socket!.pause();

    release();
    await eventually('the run to end', async () => (await h.gqlOk('query ($id: ID!) { workflowRun(id: $id) { status } }', { id: runId }, designer.key)).workflowRun.status === 'SUCCEEDED');
    socket!.resume();
    await eventually('the subscription to end', () => sub.ended);

    const errors = [...sub.results.flatMap((result) => result.errors ?? []), ...errorsOf(sub)];
    expect(errors.map((error) => [error.message, error.extensions?.code])).toEqual([
      ['The subscription fell 10000 items behind: read faster, or subscribe again (stored progress is replayed)', 'UNAVAILABLE'],
    ]);
    // What it got before: the run's first events in order, never its end.
    const events = sub.results.filter((result) => result.data?.workflowRun).map((result) => (result.data as { workflowRun: { type: string; revision?: number } }).workflowRun);
    const stored = events.filter((event) => event.type !== 'TOKEN');
    expect(stored.map((event) => event.revision)).toEqual(stored.map((_, i) => i));
    expect(stored.some((event) => event.type === 'RUN_ENDED')).toBe(false);
  });
});

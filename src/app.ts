import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { getOperationAST, GraphQLError, NoSchemaIntrospectionCustomRule, type GraphQLFormattedError } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, type GraphiQLOptions, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Core } from './core.js';
import { ConfigError, httpRequestTimeoutMs } from './config.js';
import { SharedCancellation } from './cancellation.js';
import { asStorageError, DomainError, ForbiddenError, UnauthenticatedError, UnavailableError } from './errors.js';
import type { FollowStatus } from './eventStore/followStatus.js';
import { isGraphQLError, operationError, queryLimits, requestError, useClientErrors } from './graphql/clientErrors.js';
import type { GraphQLContext } from './graphql/context.js';
import { endWhenKeyRefused } from './graphql/plugins/endWhenKeyRefused.js';
import { boundWrites } from './graphql/plugins/writeBudget.js';
import { boundSubscriptions, createAccountSlots, tooManySubscriptions, type Release } from './graphql/plugins/subscriptionSlots.js';
import { schema } from './graphql/schema.js';
import { consoleDistDir } from './console/paths.js';
import { createConsoleAssets, isConsolePath } from './http/consoleAssets.js';
import { createGraphiqlPage } from './http/graphiqlPage.js';
import { bearerOf, createRouter, errorBody, isValidHost, notUtf8, parseRequestTarget, readRequestBody, requestIdOf, sendError, sendJson, type Route } from './http/rest.js';
import type { Principal } from './modules/auth/principal.js';

export interface App {
  /** Listen; resolves with the bound port (pass 0 for any free port). */
  start(port: number, host?: string): Promise<number>;
  /**
   * Drain, then close (see `drain` below): requests in flight get `graceMs` to finish (default 0: cut at once, with
   * their error answers). Called again while draining, with a shorter grace, it cuts sooner (a second SIGTERM).
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  readonly server: ReturnType<typeof createServer>;
  /** The REST routes it serves (method and path pattern), for tools and tests that walk them all. */
  readonly routes: readonly Pick<Route, 'method' | 'path'>[];
}

interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** Set by the WebSocket handler, which authenticates each operation itself. */
  principal?: Principal | null;
  requestId?: string;
}

/** The bearer secret in a headers-like object (`connectionParams`, a subscribe message's `extensions.headers`), any case. */
const bearerIn = (headers: unknown): string | null => {
  if (typeof headers !== 'object' || headers === null) return null;
  const value = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  if (typeof value !== 'string') return null;
  return value.replace(/^Bearer\s+/i, '').trim() || null;
};

/** Turn a domain error into a typed GraphQL error; mask everything unexpected and log it with the request id. */
const toGraphQLError = (core: Core) => (error: unknown, message: string): Error => {
  const wrapper = isGraphQLError(error) ? error : null;
  const original = asStorageError(wrapper?.originalError ?? error);
  if (original instanceof DomainError) {
    return new GraphQLError(original.message, {
      nodes: wrapper?.nodes,
      path: wrapper?.path,
      extensions: { code: original.code, ...original.metadata, ...(original.status === 401 ? { http: { status: 401 } } : {}) },
    });
  }
  // Raised by GraphQL or yoga about the request, not thrown by our code: shown, with a code (clientErrors.ts).
  if (wrapper && !wrapper.originalError) return requestError(wrapper);
  const errorId = randomUUID();
  core.logger.error({ err: original, errorId }, 'unexpected error in GraphQL');
  return new GraphQLError(message, { extensions: { code: 'INTERNAL', errorId } });
};

/**
 * GraphiQL bundled for offline use is large (about 80 MiB of resident memory once loaded): load it on the first
 * request for the GraphiQL page, not at start-up.
 */
const require = createRequire(import.meta.url);
let graphiql: ((options?: GraphiQLOptions) => string) | undefined;
const renderGraphiQL = (options?: GraphiQLOptions): string => {
  graphiql ??= (require('@graphql-yoga/render-graphiql') as typeof import('@graphql-yoga/render-graphiql')).renderGraphiQL;
  return graphiql(options);
};

const noIntrospection: Plugin = {
  onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
};

/** The in-memory views that follow the event log, by name (for /health and /metrics). */
/** Operations one graphql-ws connection may run at once (each subscription holds memory until it completes). */
const MAX_OPERATIONS_PER_SOCKET = 100;
/**
 * What one graphql-ws connection holds: the secret it was opened with, and its operations from their `subscribe`
 * message until they end, by id (a subscription's stream once it has one).
 */
type SocketState = {
  secret?: string | null;
  operations?: Map<string, AsyncIterator<unknown> | null>;
  /** The account slots its subscriptions hold, by id (GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT). */
  slots?: Map<string, Release>;
  /** Its place among the sockets of the account it counts against (GRAPHQL_MAX_SOCKETS_PER_ACCOUNT), once it has one. */
  place?: Release;
  /** Its place among the sockets that are no account's (GRAPHQL_MAX_KEYLESS_SOCKETS), from its init without a key until it has an account's. */
  keyless?: Release;
  closed?: boolean;
};

const isStream = (result: unknown): result is AsyncIterator<unknown> & { return: () => unknown } =>
  typeof result === 'object' && result !== null && Symbol.asyncIterator in result && typeof (result as { return?: unknown }).return === 'function';

/** End every stream a closed socket started: sends to a closed socket succeed silently, so nothing else would. */
const endOperations = (state: SocketState) => {
  state.closed = true;
  for (const stream of state.operations?.values() ?? []) void Promise.resolve(stream?.return?.()).catch(() => undefined);
  state.operations?.clear();
  releaseSlot(state);
  state.place?.();
  state.keyless?.();
};

/** Give back the account slot of one subscription of the socket (all of them without an id). */
const releaseSlot = (state: SocketState, id?: string) => {
  for (const [held, release] of state.slots ?? []) {
    if (id !== undefined && held !== id) continue;
    release();
    state.slots?.delete(held);
  }
};

const hasHttpExtension = (error: GraphQLError): boolean => error.extensions?.http !== undefined;

/** An error as graphql-ws sends it, without `extensions.http`. */
const withoutHttp = (error: GraphQLError): GraphQLFormattedError => {
  const formatted = error.toJSON();
  if (!formatted.extensions || !('http' in formatted.extensions)) return formatted;
  const { http: _http, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
};

/** A WebSocket close reason holds at most 123 bytes (ws throws past that). */
const closeReason = (reason: string, whenTooLong: string): string => (Buffer.byteLength(reason) > 123 ? whenTooLong : reason);

/** After the grace period: how long the calls then cut have to write their error answers before their sockets close. */
const CUT_MS = 1_000;

/** WebSocket close code 1001: the server is going away (graphql-ws names none for it). */
const GOING_AWAY = 1001;
/** WebSocket close code 1013: try again later (graphql-ws clients retry it). */
const TRY_AGAIN_LATER = 1013;
/**
 * A socket whose key was refused, for which no keyless place is free, is closed this long after: its subscriptions'
 * UNAUTHENTICATED, sent as the refusal ends them, reach its client first.
 */
const REFUSED_KEY_CLOSE_MS = 1_000;

/** Node's default time for a request's headers: kept, unless the whole request's deadline is shorter. */
const HEADERS_TIMEOUT_MS = 60_000;

export const followerStatuses = (core: Pick<Core, 'directory' | 'gateway' | 'ledger'>): Record<string, FollowStatus> => {
  // The ledger follows other processes' writes only when it is not the store's sole process.
  const ledger = core.ledger.status();
  return { authDirectory: core.directory.status(), catalog: core.gateway.catalog.status(), presets: core.gateway.presets.status(), ...(ledger && { ledger }) };
};

/**
 * What a page of another origin may read of a REST answer beyond the basics: every header of its own that the REST API
 * answers with (README names each), the one list.
 */
const EXPOSED_HEADERS = [
  'x-generation-id',
  'x-request-id',
  // Anthropic's name for it, on /api/v1/messages.
  'request-id',
  'retry-after',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'idempotent-replayed',
  'x-should-retry',
  // The workflow webhook's run (a sync answer, or 202 while it runs).
  'x-switchyard-run-id',
].join(', ');

/**
 * Why the server could not listen, said of the variable to change (PORT or HOST), for the one line main.ts prints: a
 * port in use is this machine's state (UNAVAILABLE), a host or port that can never work is the configuration's
 * (ConfigError, exit 78). Anything else is returned as it is.
 */
const listenError = (error: Error & { code?: string }, port: number, host: string): Error => {
  switch (error.code) {
    case 'EADDRINUSE':
      return new UnavailableError(`PORT ${port} on HOST ${host} is in use by another process`);
    case 'EACCES':
      return new ConfigError(`PORT ${port} on HOST ${host} needs privileges this process does not have (EACCES): choose a port above 1023`);
    case 'EADDRNOTAVAIL':
      return new ConfigError(`HOST ${host} is not an address of this machine (EADDRNOTAVAIL)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return new ConfigError(`HOST ${host} does not resolve to an address (${error.code})`);
    default:
      return error;
  }
};

export const buildApp = (
  core: Core,
  extraRoutes: readonly Route[] = [],
  /** Told each response as it closes, with its route pattern (the metrics' request counter). */
  options: {
    onResponse?: (method: string, route: string, status: number) => void;
    /** The workflow engine's lease (for /health: which process drives workflow runs). */
    workflowEngine?: () => unknown;
    /** Aborted by `stop` when the grace period ends: the gateway routes cut their calls on it (GatewayRouteDeps.shutdown). */
    shutdown?: SharedCancellation;
  } = {},
): App => {
  const { config, logger } = core;
  const shutdown = options.shutdown ?? new SharedCancellation();
  /** Set by `stop`: new requests are refused (503), the ones in flight finish. */
  let draining = false;

  const authenticate = (secret: string | null): Principal | null => (secret ? core.directory.authenticate(secret) : null);
  // One account may not hold the server's memory and event loop with subscriptions or sockets (QA s45 res #1: 10,000
  // subscriptions of one key over 100 sockets took other users' chat p99 to 6 s).
  const subscriptionSlots = createAccountSlots(config.GRAPHQL_MAX_SUBSCRIPTIONS_PER_ACCOUNT);
  /** The slot graphql-ws took for an operation before running it, by its context (adopted by boundSubscriptions). */
  const wsSlots = new WeakMap<object, Release>();
  /** graphql-ws connections open per account (GRAPHQL_MAX_SOCKETS_PER_ACCOUNT). */
  const socketPlaces = createAccountSlots(config.GRAPHQL_MAX_SOCKETS_PER_ACCOUNT);
  /** graphql-ws connections initialised without a key and not yet any account's (GRAPHQL_MAX_KEYLESS_SOCKETS), under one name. */
  const keylessPlaces = createAccountSlots(config.GRAPHQL_MAX_KEYLESS_SOCKETS);
  /**
   * Count a socket that is no account's among the keyless ones until it closes or counts against an account
   * (takePlace): one initialised without a key, and one whose key was refused since (takePlace's watch). One too many
   * is closed with 1013: at its init, before it runs anything; after its key's refusal, once what that refusal ended
   * has reached it (REFUSED_KEY_CLOSE_MS), unless it has taken a place meanwhile. A socket that never sends its init
   * is closed by graphql-ws after its wait (4408). So no socket is held uncounted for long. False when none was free.
   */
  const takeKeylessPlace = (extra: SocketState & { socket: { close(code: number, reason: string): void } }, closeAfterMs = 0): boolean => {
    const place = keylessPlaces.take('');
    if (!place) {
      const close = () => {
        if (extra.closed || extra.place || extra.keyless) return;
        extra.socket.close(TRY_AGAIN_LATER, closeReason(`Too many connections without a key: at most ${keylessPlaces.limit} at once; connect with a key`, 'Too many connections without a key'));
      };
      if (closeAfterMs > 0) setTimeout(close, closeAfterMs).unref();
      else close();
      return false;
    }
    extra.keyless = () => {
      place();
      extra.keyless = undefined;
    };
    return true;
  };
  /**
   * Count an open socket against the account of `principal` until it closes (endOperations gives its place back). An idle socket is
   * cheap but not free, and every socket that acts for an account is that account's: one opened with its key (the
   * connection_init's or the upgrade request's) from then, one opened without a key from its first operation with one
   * (in the operation's `extensions.headers`, as GraphiQL sends them). One too many is closed 1013, try again later:
   * graphql-ws clients retry it, with backoff, as a place frees when another closes. False then.
   * The place lasts only while the key it was taken with is accepted: when that key is revoked, disabled or expires, or
   * its account loses a role (what ends its subscriptions with UNAUTHENTICATED), the place is given back at once and the
   * socket stays open, counted among the keyless ones (takeKeylessPlace): whoever holds a leaked key cannot keep the owner's places
   * once it is revoked (QA s45 regress2 #1), and the socket's next operation with an accepted key counts it again (a key
   * enabled again, an operation authorized anew after a role change), closing it 1013 if the account has no place left.
   * Not closed at once (when no keyless place is free, REFUSED_KEY_CLOSE_MS later): its subscriptions' UNAUTHENTICATED
   * must reach the client first, and the same socket may go on.
   */
  const takePlace = (extra: SocketState & { socket: { close(code: number, reason: string): void } }, principal: Principal): boolean => {
    const place = socketPlaces.take(principal.accountId);
    if (!place) {
      extra.socket.close(TRY_AGAIN_LATER, closeReason(`Too many connections for this account: at most ${socketPlaces.limit} at once`, 'Too many connections for this account'));
      return false;
    }
    let unwatch = (): void => undefined;
    const release = () => {
      unwatch();
      place();
      if (extra.place === release) extra.place = undefined;
    };
    extra.place = release;
    // Its key refused: no longer the account's, a keyless one (closed later if none is free).
    unwatch = core.directory.watch(principal, () => {
      release();
      if (!extra.closed) takeKeylessPlace(extra, REFUSED_KEY_CLOSE_MS);
    });
    // The account's from now on, no longer a keyless one.
    extra.keyless?.();
    return true;
  };

  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    batching: false,
    logging: false,
    // The server handler serves GraphiQL itself, compressed and cached (see graphiqlPage.ts).
    graphiql: false,
    maskedErrors: { maskError: toGraphQLError(core) },
    context: ({ request, req, principal, requestId }): GraphQLContext => {
      const id = requestId ?? request.headers.get('x-request-id') ?? randomUUID();
      const clientAddress = req?.socket.remoteAddress ?? null;
      const header = principal === undefined ? request.headers.get('authorization') : null;
      const caller = principal !== undefined ? principal : authenticate(header ? header.replace(/^Bearer\s+/i, '').trim() : null);
      return { principal: caller, requestId: id, openedAccounts: new Set(), clientAddress, ...core.modules };
    },
    plugins: [
      ...queryLimits(),
      // Introspection and "Did you mean" suggestions can be switched off in production (GRAPHQL_INTROSPECTION=false).
      ...(config.GRAPHQL_INTROSPECTION ? [] : [noIntrospection]),
      useClientErrors({ suggestions: config.GRAPHQL_INTROSPECTION }),
      endWhenKeyRefused(core.directory),
      boundSubscriptions(subscriptionSlots, (context) => wsSlots.get(context)),
      boundWrites(core.writes),
      // Answers are a key's own records (GET /graphql?query=… too): no browser or proxy keeps a copy.
      { onResponse: ({ response }) => response.headers.set('cache-control', 'no-store') },
    ],
  });

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/health',
      handler: async ({ res }) => {
        const [eventStore, readStore] = await Promise.all([core.eventStore.health(), core.readStore.health()]);
        const head = eventStore.ok ? await core.eventStore.headPosition() : null;
        const followers = followerStatuses(core);
        const runner = core.runner.status();
        const failing = [runner, ...Object.values(followers)].some((status) => status.state === 'retrying');
        const ok = eventStore.ok && readStore.ok && !failing;
        // Lag in events is head - position only where positions count events (the embedded store's row ids);
        // EventStoreDB's are byte offsets, so there lag is null and `behind` says whether the head is ahead at all.
        // A follower sees only its own categories, so its position trails the head while it is healthy: a live one
        // counts as caught up. The runner sees every event, so its lag is exact.
        const countsEvents = core.eventStore.kind === 'embedded';
        const lag = (position: number, live: boolean) =>
          head === null ? { lag: null, behind: null } : live ? { lag: 0, behind: false } : { lag: countsEvents ? Math.max(0, head - position) : null, behind: head > position };
        const followerLag = (status: FollowStatus) => lag(status.position, status.state === 'live');
        sendJson(res, ok ? 200 : 503, {
          status: ok ? 'ok' : 'degraded',
          eventStore,
          readStore,
          // `lease.held`: this process writes the read models; the others follow its progress (one writer per read store).
          projections: { ...runner, head, ...lag(runner.position, false), lease: core.runner.lease() },
          followers: Object.fromEntries(Object.entries(followers).map(([name, status]) => [name, { ...status, ...followerLag(status) }])),
          ...(options.workflowEngine && { workflows: options.workflowEngine() }),
          // Time the event loop was not waiting for I/O since start (ms): `npm run bench:gateway` reports it per request.
          eventLoop: { busyMs: Math.round(performance.eventLoopUtilization().active) },
        });
      },
    },
    ...extraRoutes,
  ];
  const router = createRouter(routes);

  const graphiqlPage = createGraphiqlPage(() => renderGraphiQL({ title: 'Switchyard GraphQL', subscriptionsProtocol: 'WS' }));
  const consoleAssets = createConsoleAssets(consoleDistDir);

  /**
   * A browser's CORS preflight on the REST API: every method a route has, and the headers the page asked to send
   * (clients such as the openai SDK add their own), when they are plain header names.
   */
  const preflight = (req: IncomingMessage, res: ServerResponse) => {
    const asked = req.headers['access-control-request-headers'];
    res.statusCode = 204;
    res.setHeader('access-control-allow-methods', 'GET, POST, PATCH, DELETE');
    if (asked && asked.length <= 2_000 && /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/.test(asked.trim())) res.setHeader('access-control-allow-headers', asked.trim());
    res.setHeader('access-control-max-age', '600');
    res.end();
  };

  /** The route a response answered, by pattern (for onResponse): set as the request is dispatched. */
  const routeOf = new WeakMap<ServerResponse, string>();

  /** Everything about a request, its target, headers and body included, is read in here: what throws is answered. */
  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const url = parseRequestTarget(req.url);
    if (!url) throw new DomainError('BAD_REQUEST', 'The request target is not a valid URL path', 400);
    if (req.headers.host === undefined ? req.httpVersion === '1.1' : !isValidHost(req.headers.host)) throw new DomainError('BAD_REQUEST', 'The Host header is missing or not a valid host[:port]', 400);
    if (url.pathname === '/graphql' || url.pathname === '/graphql/') {
      routeOf.set(res, '/graphql');
      if ((req.method === 'GET' || req.method === 'HEAD') && req.headers.accept?.includes('text/html')) return graphiqlPage(req, res);
      // Read here, bounded, so a chunked body is cut at the limit like on every route; yoga takes a body already
      // read from `req.body` (as under Express's body parsers) instead of reading the stream itself.
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const body = await readRequestBody(req, config.MAX_BODY_BYTES);
        // Yoga would decode invalid UTF-8 into U+FFFD, altering what it runs: refused as on every REST route.
        if (!isUtf8(body)) throw notUtf8(body);
        // A leading byte-order mark is read past, as on every REST route (parseJsonBody); yoga would read it as a token.
        (req as IncomingMessage & { body?: Buffer }).body = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
      }
      // Yoga builds its request URL from the Host header and `req.url`: hand it the target in origin-form.
      req.url = `${url.pathname}${url.search}`;
      await yoga.handle(req, res, { requestId });
      return;
    }
    // The web console: its page at / and its hashed assets (src/console/).
    if (isConsolePath(url.pathname)) {
      routeOf.set(res, 'console');
      return consoleAssets(req, res, url.pathname);
    }
    // The REST API authenticates with a bearer key, never a cookie, so a page of any origin may call it (as OpenRouter's
    // may): a browser app exchanges its sign-in code and calls models itself.
    if (url.pathname.startsWith('/api/')) {
      res.setHeader('access-control-allow-origin', '*');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) return preflight(req, res);
      res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    }
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (found && 'route' in found) routeOf.set(res, found.route.path);
    if (!found) throw new DomainError('NOT_FOUND', `No route for ${req.method} ${url.pathname}`, 404);
    if ('allowed' in found) {
      res.setHeader('allow', found.allowed.join(', '));
      const error = new DomainError('BAD_REQUEST', `Method ${req.method} not allowed on ${url.pathname}; allowed: ${found.allowed.join(', ')}`, 405, { allowed: found.allowed });
      if (found.renderError) return fail(res, error, requestId, found.renderError);
      throw error;
    }
    await found.route.handler({ req, res, url, requestId, params: found.params });
  };

  const fail = (res: ServerResponse, error: unknown, requestId: string, render?: Route['renderError']) => {
    try {
      sendError(res, error, requestId, logger, render);
    } catch (failure) {
      logger.error({ err: failure, requestId }, 'could not answer a failed HTTP request');
      res.destroy();
    }
  };

  // A missing Host is refused in `handle` (node's own check would answer with no body). A request that has not
  // arrived whole within the deadline is answered 408 (clientError below): node checks its connections every
  // `connectionsCheckingInterval`, so that is a tenth of the deadline (at most node's 30 s), and the headers get at most
  // node's 60 s (never more than the whole request).
  const requestTimeout = httpRequestTimeoutMs(config);
  const server = createServer({
    requireHostHeader: false,
    requestTimeout,
    headersTimeout: Math.min(requestTimeout, HEADERS_TIMEOUT_MS),
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestTimeout / 10))),
  }, (req, res) => {
    const requestId = requestIdOf(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    if (draining) return refuseWhileDraining(req, res, requestId);
    inFlight.add(res);
    // Pipelined behind an answer still being written: no socket yet (see queuedOn).
    const queue = res.socket === null ? queueOn(req.socket) : null;
    queue?.add(res);
    const { onResponse } = options;
    res.once('close', () => {
      inFlight.delete(res);
      queue?.delete(res);
      // Answered before its body arrived whole (a 401 before the body is read): node reads the rest on; should it not
      // come in time, the deadline's 408 would be a second answer to this request (clientError says nothing then).
      if (!req.complete) answeredEarly.set(req.socket, req);
      onResponse?.(req.method ?? 'GET', routeOf.get(res) ?? 'unmatched', res.statusCode);
      if (draining) drainProgress();
    });
    handle(req, res, requestId).catch((error: unknown) => fail(res, error, requestId));
  });

  // Graceful shutdown. `stop` keeps listening, so that a request that still reaches this process (a load balancer has
  // not taken it out yet) is answered 503 with Retry-After and `Connection: close`, not refused or reset; idle
  // keep-alive connections are closed at once, each busy one once its answer is out; graphql-ws sockets are closed
  // with 1001 (going away: graphql-ws clients reconnect). The requests in flight get the grace period to finish; then
  // `shutdown` is aborted (the gateway ends a stream with its error event and answers a JSON call 503, each charged as
  // when its client leaves) and, after CUT_MS for those answers, whatever is still open is closed.
  /** Every HTTP request being answered (from its arrival until its response closes). */
  const inFlight = new Set<ServerResponse>();
  /**
   * Per connection that pipelined, its responses queued behind the one being written (in order). Node writes only the
   * head of a pipeline; the rest wait for the socket. When the connection closes, node destroys the queued requests
   * but neither closes nor destroys their responses: they would stay in flight for ever (a drain waiting out its
   * grace for them) and not be seen as gone (a whole call recorded delivered that never was). The socket's close
   * closes them as node closes the head: destroyed, then 'close'. One listener per such socket; none on a
   * connection that does not pipeline.
   */
  const queuedOn = new WeakMap<Duplex, Set<ServerResponse>>();
  const queueOn = (socket: Duplex) => {
    let queue = queuedOn.get(socket);
    if (queue === undefined) {
      const responses = (queue = new Set());
      queuedOn.set(socket, responses);
      socket.once('close', () => {
        for (const res of [...responses]) {
          if (res.socket !== null || res.destroyed || res.writableFinished) continue;
          res.destroy();
          res.emit('close');
        }
      });
    }
    return queue;
  };
  /** Whether a response has a later one on its connection, still to be answered (pipelined behind it). */
  const answeredBehind = (res: ServerResponse) => {
    const queue = queuedOn.get(res.req.socket);
    if (queue === undefined) return false;
    if (!queue.has(res)) return queue.size > 0;
    let after = false;
    for (const queued of queue) {
      if (after) return true;
      after = queued === res;
    }
    return false;
  };
  /** Per connection, its last request answered before its body had arrived whole. */
  const answeredEarly = new WeakMap<Duplex, IncomingMessage>();
  /** Called as requests and sockets end while draining; resolves the wait once nothing is open. */
  let drainProgress = () => {};
  const refuseWhileDraining = (req: IncomingMessage, res: ServerResponse, requestId: string) => {
    res.shouldKeepAlive = false;
    // /health says `draining` (a load balancer takes the process out); everything else is Switchyard's own 503.
    if (parseRequestTarget(req.url)?.pathname === '/health') return sendJson(res, 503, { status: 'draining' });
    fail(res, new DomainError('UNAVAILABLE', 'Switchyard is shutting down: retry the request', 503), requestId);
  };
  /** Answer a socket no response object owns (a CONNECT, what node's parser refused) with a JSON error, and close it. */
  const endSocket = (socket: Duplex, error: DomainError, requestId: string) => {
    const body = JSON.stringify(errorBody(error, requestId));
    socket.on('error', () => socket.destroy());
    // The request id is safe to echo: requestIdOf lets through only short tokens of safe characters.
    socket.end(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\nconnection: close\r\nx-request-id: ${requestId}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };
  // CONNECT is no route here; node would otherwise drop the socket without an answer.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => endSocket(socket, new DomainError('BAD_REQUEST', 'CONNECT is not supported', 405), requestIdOf(req.headers['x-request-id'])));

  // What node's HTTP parser refuses (headers too large, broken chunking, a body longer than its Content-Length, bytes
  // after a `Connection: close` request, a request that did not arrive in time): answered in the API's JSON error
  // shape, as node would answer it but with a body, and the connection closed. Never over an answer: node's own
  // handler writes its error as soon as the answer in flight has sent no headers yet, so a request still being answered
  // (a model call) lost its answer to the 400 and was charged all the same. The requests that arrived whole before the
  // refused bytes are answered first, in order; then the refused request gets its error, unless it was answered
  // already (before its body came: see answeredEarly) or its connection is closing anyway.
  /** Sockets whose parser refused something: the parser repeats its error on every later read, answered once. */
  const refused = new WeakSet<Duplex>();
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    if (refused.has(socket)) return;
    refused.add(socket);
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const [status, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'The request headers are too large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'The request did not arrive in time']
          : [400, `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`];
    const onSocket = [...inFlight].filter((res) => res.req.socket === socket);
    // The refused request, when its headers came and it is still being answered: the one whose body had not arrived
    // whole (it can only be the last); or the connection's last request answered before its body came.
    const cutShort = onSocket.find((res) => !res.req.complete);
    const early = answeredEarly.get(socket);
    const answer = () => {
      if (socket.destroyed) return;
      const answered = cutShort !== undefined ? cutShort.headersSent : early !== undefined && !early.complete;
      const begun = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true;
      // Nothing more can be said on it: the connection closes once what it holds is written.
      if (!socket.writable || answered || begun) return void (socket as Socket).destroySoon();
      endSocket(socket, new DomainError('BAD_REQUEST', message, status), requestIdOf(undefined));
    };
    const waits = onSocket.filter((res) => res.req.complete).map((res) => new Promise((resolve) => res.once('close', resolve)));
    if (waits.length === 0) answer();
    else void Promise.all(waits).then(answer);
  });

  // maxPayload: ws refuses a larger message from its frame header, before reading it, and closes with 1009.
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: config.MAX_BODY_BYTES });
  // The connection keeps the secret, not the principal: every operation is authenticated when it runs, so a key
  // revoked, disabled or expired mid-connection is refused at once (and its subscriptions end: endWhenKeyRefused).
  /** An operation a graphql-ws client asked for, authenticated, parsed and validated: its execution args, or its errors. */
  const prepareOperation = async (ctx: { extra: { request: IncomingMessage; secret?: string | null } }, params: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null; extensions?: Record<string, unknown> | null }) => {
    // GraphiQL sends its Headers tab with each operation: those win over the connection's credentials.
    const secret = bearerIn(params.extensions?.headers) ?? ctx.extra.secret ?? null;
    let principal: Principal | null;
    try {
      principal = authenticate(secret);
    } catch (error) {
      if (!(error instanceof UnauthenticatedError || error instanceof ForbiddenError)) throw error;
      return [new GraphQLError(error.message, { extensions: { code: error.code } })];
    }
    const { schema: envelopedSchema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
      req: ctx.extra.request,
      principal,
      requestId: randomUUID(),
    });
    let document;
    try {
      document = parse(params.query);
    } catch (error) {
      return [error as GraphQLError];
    }
    const args = {
      schema: envelopedSchema,
      operationName: params.operationName,
      document,
      variableValues: params.variables,
      contextValue: await contextFactory(),
      rootValue: { execute, subscribe },
    };
    const errors = validate(args.schema, args.document);
    if (errors.length) return errors;
    const unknown = operationError(document, params.operationName);
    return unknown ? [unknown] : args;
  };

  useServer<Record<string, unknown>, SocketState>(
    {
      execute: (args) => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args) as never,
      onConnect: (ctx) => {
        const secret = bearerIn(ctx.connectionParams) ?? bearerOf(ctx.extra.request);
        let principal: Principal | null;
        try {
          principal = authenticate(secret);
        } catch (error) {
          if (!(error instanceof UnauthenticatedError || error instanceof ForbiddenError)) throw error;
          // A bad key is refused at once, with the reason; graphql-ws's own close that follows is then a no-op.
          ctx.extra.socket.close(CloseCode.Forbidden, `Forbidden: ${error.message}`);
          return false;
        }
        if (principal ? !takePlace(ctx.extra, principal) : !takeKeylessPlace(ctx.extra)) return false;
        ctx.extra.secret = secret;
        ctx.extra.operations = new Map();
        ctx.extra.slots = new Map();
        ctx.extra.socket.once('close', () => endOperations(ctx.extra));
        return true;
      },
      onSubscribe: async (ctx, id, params) => {
        const open = (ctx.extra.operations ??= new Map());
        // graphql-ws forgets an id at its `complete` while the operation may still be being prepared (below), so it
        // lets a second `subscribe` on that id start a second operation, which neither `complete` nor the socket's
        // close would then reach. An id counts here until its operation has ended: refused as graphql-ws refuses a
        // live one.
        if (open.has(id)) {
          ctx.extra.socket.close(CloseCode.SubscriberAlreadyExists, closeReason(`Subscriber for ${id} already exists`, 'Subscriber already exists'));
          // The socket is closing: graphql-ws sends nothing more on it.
          return [new GraphQLError(`Subscriber for ${id} already exists`, { extensions: { code: 'VALIDATION' } })];
        }
        // Each operation holds server memory until it completes: one socket may not hold more than a browser tab needs.
        // Counted from the moment it is asked for (the checks below wait), and uncounted if it is refused.
        if (open.size >= MAX_OPERATIONS_PER_SOCKET) {
          return [new GraphQLError(`Too many operations on this connection: at most ${MAX_OPERATIONS_PER_SOCKET} at once; complete some, or open another connection`, { extensions: { code: 'RATE_LIMITED' } })];
        }
        open.set(id, null);
        const prepared = await prepareOperation(ctx, params);
        if (Array.isArray(prepared)) {
          open.delete(id);
          return prepared;
        }
        const { principal } = prepared.contextValue;
        // A socket opened without a key becomes the account's at its first operation with a key (takePlace); one too
        // many is closing, and sends nothing more.
        if (principal && !ctx.extra.place && !ctx.extra.closed && !takePlace(ctx.extra, principal)) {
          open.delete(id);
          return [new GraphQLError(`Too many connections for this account: at most ${socketPlaces.limit} at once`, { extensions: { code: 'RATE_LIMITED', reason: 'too_many_connections', limit: socketPlaces.limit } })];
        }
        // A subscription takes its account's slot here, so that one too many is refused with an `error` message; the
        // slot is given back when it ends (boundSubscriptions), completes or its socket closes (whichever is first).
        if (principal && !ctx.extra.closed && getOperationAST(prepared.document, prepared.operationName)?.operation === 'subscription') {
          const release = subscriptionSlots.take(principal.accountId);
          if (!release) {
            open.delete(id);
            return [tooManySubscriptions(subscriptionSlots.limit)];
          }
          (ctx.extra.slots ??= new Map()).set(id, release);
          wsSlots.set(prepared.contextValue, release);
        }
        return prepared;
      },
      onOperation: (ctx, id, _payload, _args, result) => {
        if (!isStream(result)) return;
        // A socket that closed while this operation was being prepared: it has no one to send to.
        if (ctx.extra.closed) void Promise.resolve(result.return()).catch(() => undefined);
        else ctx.extra.operations?.set(id, result);
      },
      onComplete: (ctx, id) => {
        ctx.extra.operations?.delete(id);
        releaseSlot(ctx.extra, id);
      },
      // Errors are made for both transports; `extensions.http` (a status for the HTTP answer) is HTTP's, which yoga
      // strips there.
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors?.some(hasHttpExtension) ? { ...result, errors: result.errors.map(withoutHttp) } : undefined),
      onError: (_ctx, _id, _payload, errors) => (errors.some(hasHttpExtension) ? errors.map(withoutHttp) : undefined),
    },
    wss,
  );
  // A socket error is the peer's doing (a frame over maxPayload, a bad frame): ws has already closed the socket with
  // the right code. graphql-ws would print each to stderr with console.error, which lets any client flood the log.
  wss.on('connection', (socket) => {
    socket.removeAllListeners('error');
    socket.on('error', (error) => logger.debug({ err: error }, 'WebSocket closed on a protocol error'));
  });
  // ws passes the HTTP server's errors on to the WebSocket server, where graphql-ws prints them as "Internal error
  // emitted on the WebSocket server. Please check your implementation." with a stack: a port in use at start would
  // read as a bug. Before listening, `start` reports them; after, they are logged.
  wss.removeAllListeners('error');
  wss.on('error', (error) => {
    if (server.listening) logger.error({ err: error }, 'the HTTP server failed');
  });

  let stopping: { done: Promise<void>; hurry: (graceMs: number) => void } | null = null;
  const drain = (graceMs: number) => {
    draining = true;
    const startedAt = Date.now();
    let cutAt = startedAt + graceMs;
    let cut!: () => void;
    const graceOver = new Promise<void>((resolve) => (cut = resolve));
    let timer = setTimeout(cut, graceMs);
    const hurry = (sooner: number) => {
      if (startedAt + sooner >= cutAt) return;
      cutAt = startedAt + sooner;
      clearTimeout(timer);
      timer = setTimeout(cut, Math.max(0, cutAt - Date.now()));
    };
    /** Resolves once no request is in flight and no WebSocket is open (or at once if none is). */
    const idle = new Promise<void>((resolve) => {
      drainProgress = () => {
        // A connection whose answer just went out is idle now: closed (at the next turn, once node has let go of it).
        setImmediate(() => server.closeIdleConnections());
        if (inFlight.size === 0 && wss.clients.size === 0) resolve();
      };
    });
    const done = (async () => {
      server.closeIdleConnections();
      // An answer not begun yet says `Connection: close`, a stream's too (one begun says keep-alive: closed once idle, above).
      // Not one with requests pipelined behind it: node would close the connection after it and never answer those
      // (answered and charged, never sent); the last one on the connection says it.
      for (const res of inFlight) if (!res.headersSent && !answeredBehind(res)) res.shouldKeepAlive = false;
      // No more upgrades (a request for one is refused like any other); the open sockets are told to go away.
      wss.close();
      for (const client of wss.clients) {
        client.once('close', () => drainProgress());
        client.close(GOING_AWAY, 'Switchyard is shutting down');
      }
      logger.info({ inFlight: inFlight.size, webSockets: wss.clients.size, graceMs }, 'draining: new requests are refused; those in flight may finish');
      drainProgress();
      await Promise.race([idle, graceOver]);
      if (inFlight.size > 0) {
        logger.warn({ inFlight: inFlight.size }, 'the shutdown grace period is over: cutting the requests still running');
        shutdown.abort(new Error('the server is shutting down'));
        await Promise.race([idle, new Promise((resolve) => setTimeout(resolve, CUT_MS))]);
      }
      clearTimeout(timer);
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return { done, hurry };
  };

  return {
    server,
    routes: routes.map(({ method, path }) => ({ method, path })),
    start: (port, host = config.HOST) =>
      new Promise((resolve, reject) => {
        server.once('error', (error) => reject(listenError(error, port, host)));
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    stop: (stopOptions = {}) => {
      const graceMs = stopOptions.graceMs ?? 0;
      if (stopping) {
        stopping.hurry(graceMs);
        return stopping.done;
      }
      stopping = drain(graceMs);
      return stopping.done;
    },
  };
};

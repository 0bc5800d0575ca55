import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLError, NoSchemaIntrospectionCustomRule } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, type GraphiQLOptions, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Core } from './core.js';
import { DomainError, UnauthenticatedError } from './errors.js';
import type { GraphQLContext } from './graphql/context.js';
import { schema } from './graphql/schema.js';
import { createGraphiqlPage } from './http/graphiqlPage.js';
import { bearerOf, createRouter, isValidHost, parseRequestTarget, readRequestBody, requestIdOf, sendError, sendJson, type Route } from './http/rest.js';
import type { Principal } from './modules/auth/principal.js';

export interface App {
  /** Listen; resolves with the bound port (pass 0 for any free port). */
  start(port: number, host?: string): Promise<number>;
  stop(): Promise<void>;
  readonly server: ReturnType<typeof createServer>;
}

interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** Set by the WebSocket handler, which authenticates once per connection. */
  principal?: Principal | null;
  requestId?: string;
}

/** Duck-typed on purpose: graphql may be loaded twice (ESM and CJS builds), which breaks `instanceof GraphQLError`. */
const isGraphQLError = (error: unknown): error is GraphQLError =>
  error instanceof Error && error.name === 'GraphQLError' && 'extensions' in error && 'path' in error;

/** Turn a domain error into a typed GraphQL error; mask everything unexpected and log it with the request id. */
const toGraphQLError = (core: Core) => (error: unknown, message: string): Error => {
  const wrapper = isGraphQLError(error) ? error : null;
  const original = wrapper?.originalError ?? error;
  if (original instanceof DomainError) {
    return new GraphQLError(original.message, {
      nodes: wrapper?.nodes,
      path: wrapper?.path,
      extensions: { code: original.code, ...original.metadata, ...(original.status === 401 ? { http: { status: 401 } } : {}) },
    });
  }
  if (isGraphQLError(original)) return original;
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

export const buildApp = (core: Core, extraRoutes: readonly Route[] = []): App => {
  const { config, logger } = core;

  const authenticate = (secret: string | null): Principal | null => (secret ? core.directory.authenticate(secret) : null);

  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    batching: false,
    logging: false,
    // The server handler serves GraphiQL itself, compressed and cached (see graphiqlPage.ts).
    graphiql: false,
    maskedErrors: { maskError: toGraphQLError(core) },
    context: ({ request, principal, requestId }): GraphQLContext => {
      const id = requestId ?? request.headers.get('x-request-id') ?? randomUUID();
      if (principal !== undefined) return { principal, core, requestId: id };
      const header = request.headers.get('authorization');
      const secret = header ? header.replace(/^Bearer\s+/i, '').trim() : null;
      return { principal: authenticate(secret), core, requestId: id };
    },
    plugins: [
      // Query-shape limits (OWASP): rejected at validation, before any resolver runs.
      maxTokensPlugin({ n: 5_000 }),
      maxDepthPlugin({ n: 12, flattenFragments: true }),
      maxAliasesPlugin({ n: 30 }),
      maxDirectivesPlugin({ n: 30 }),
      costLimitPlugin({ maxCost: 5_000 }),
      // Introspection and field suggestions can be switched off in production (GRAPHQL_INTROSPECTION=false).
      ...(config.GRAPHQL_INTROSPECTION ? [] : [noIntrospection, blockFieldSuggestionsPlugin()]),
    ],
  });

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/health',
      handler: async ({ res }) => {
        const [eventStore, readStore] = await Promise.all([core.eventStore.health(), core.readStore.health()]);
        const head = eventStore.ok ? await core.eventStore.headPosition() : null;
        const ok = eventStore.ok && readStore.ok;
        sendJson(res, ok ? 200 : 503, {
          status: ok ? 'ok' : 'degraded',
          eventStore,
          readStore,
          projections: { position: core.runner.position, head, lag: head === null ? null : head - core.runner.position },
        });
      },
    },
    ...extraRoutes,
  ];
  const router = createRouter(routes);

  const graphiqlPage = createGraphiqlPage(() => renderGraphiQL({ title: 'Switchyard GraphQL', subscriptionsProtocol: 'WS' }));

  /** Everything about a request, its target, headers and body included, is read in here: what throws is answered. */
  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const url = parseRequestTarget(req.url);
    if (!url) throw new DomainError('BAD_REQUEST', 'The request target is not a valid URL path', 400);
    if (req.headers.host && !isValidHost(req.headers.host)) throw new DomainError('BAD_REQUEST', 'The Host header is not a valid host[:port]', 400);
    if (url.pathname === '/graphql' || url.pathname === '/graphql/') {
      if ((req.method === 'GET' || req.method === 'HEAD') && req.headers.accept?.includes('text/html')) return graphiqlPage(req, res);
      // Read here, bounded, so a chunked body is cut at the limit like on every route; yoga takes a body already
      // read from `req.body` (as under Express's body parsers) instead of reading the stream itself.
      if (req.method !== 'GET' && req.method !== 'HEAD') (req as IncomingMessage & { body?: Buffer }).body = await readRequestBody(req, config.MAX_BODY_BYTES);
      // Yoga builds its request URL from the Host header and `req.url`: hand it the target in origin-form.
      req.url = `${url.pathname}${url.search}`;
      await yoga.handle(req, res, { requestId });
      return;
    }
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (!found) throw new DomainError('NOT_FOUND', `No route for ${req.method} ${url.pathname}`, 404);
    if ('allowed' in found) {
      res.setHeader('allow', found.allowed.join(', '));
      throw new DomainError('BAD_REQUEST', `Method ${req.method} not allowed on ${url.pathname}`, 405);
    }
    await found.route.handler({ req, res, url, requestId, params: found.params });
  };

  const fail = (res: ServerResponse, error: unknown, requestId: string) => {
    try {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof DomainError) return sendError(res, error, requestId);
      logger.error({ err: error, requestId }, 'unexpected error in an HTTP request');
      sendError(res, new DomainError('INTERNAL', 'Internal error', 500), requestId);
    } catch (failure) {
      logger.error({ err: failure, requestId }, 'could not answer a failed HTTP request');
      res.destroy();
    }
  };

  const server = createServer((req, res) => {
    const requestId = requestIdOf(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    handle(req, res, requestId).catch((error: unknown) => fail(res, error, requestId));
  });
  // CONNECT is no route here; node would otherwise drop the socket without an answer.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const body = JSON.stringify({ error: { code: 405, message: 'CONNECT is not supported', metadata: { error_type: 'BAD_REQUEST' } } });
    socket.on('error', () => socket.destroy());
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });

  // maxPayload: ws refuses a larger message from its frame header, before reading it, and closes with 1009.
  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: config.MAX_BODY_BYTES });
  useServer<Record<string, unknown>, { principal?: Principal | null }>(
    {
      execute: (args) => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args) as never,
      onConnect: (ctx) => {
        const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        try {
          ctx.extra.principal = authenticate(typeof raw === 'string' ? raw.replace(/^Bearer\s+/i, '').trim() : bearerOf(ctx.extra.request));
          return true;
        } catch (error) {
          if (error instanceof UnauthenticatedError) return false;
          throw error;
        }
      },
      onSubscribe: async (ctx, _id, params) => {
        const { schema: envelopedSchema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          req: ctx.extra.request,
          principal: ctx.extra.principal ?? null,
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
        return errors.length ? errors : args;
      },
    },
    wss,
  );

  return {
    server,
    start: (port, host = config.HOST) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

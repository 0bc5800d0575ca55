import { createClient, type Client } from 'graphql-ws';

/** The API key lives in this tab's session storage only: never in the URL, never logged. */
const KEY = 'switchyard.apiKey';

export const storedKey = (): string | null => sessionStorage.getItem(KEY);
export const storeKey = (key: string): void => sessionStorage.setItem(KEY, key);
export const forgetKey = (): void => {
  sessionStorage.removeItem(KEY);
  ws?.dispose();
  ws = null;
};

/** A GraphQL error or a DomainError result, with its code (UNAUTHENTICATED, VALIDATION, ...). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

/** The field a refused request names (a DomainError's `details.field`), where a form marks and focuses the error. */
export const fieldOf = (error: unknown): unknown => (error instanceof ApiError ? (error.details as { field?: unknown } | null)?.field : undefined);

interface GraphQLResponse<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Called when the server refuses the key (revoked, expired): the app goes back to sign-in. */
let onUnauthenticated: () => void = () => undefined;
export const setUnauthenticatedHandler = (handler: () => void): void => {
  onUnauthenticated = handler;
};

/** The code of an answer that is not the GraphQL API's: no answer at all, or a proxy's HTML page (a 502 while restarting). */
export const UNREACHABLE = 'UNREACHABLE';
const unreachable = () => new ApiError('The server cannot be reached', UNREACHABLE);

/** The code of a key the console refuses before sending it: no API key holds such a character. */
export const BAD_KEY = 'BAD_KEY';

/**
 * A pasted key as the server reads it: every key it accepts is printable ASCII (`sk-sy-v1-` and base62; ADMIN_API_KEY
 * is checked so at boot), and it trims the header's whitespace. Copying from a chat or a document often brings
 * invisible characters along (a zero-width space, a BOM, a bidi mark): those are dropped with the whitespace around
 * the key. Any other character outside printable ASCII is refused, naming it: sent, fetch would throw (an HTTP header
 * carries no such character) or the server would answer "invalid key", and neither says what is wrong.
 */
export const cleanKey = (pasted: string): string => {
  const key = pasted.replace(/[\p{Cf}\u115F\u1160\u3164\uFFA0]/gu, '').trim();
  const bad = /[^\x20-\x7e]/u.exec(key)?.[0];
  if (bad !== undefined) {
    const code = `U+${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
    throw new ApiError(`This key holds a character no API key has (${code}, at position ${key.indexOf(bad) + 1}); an HTTP header cannot carry it. Copy the key again from where it was shown.`, BAD_KEY);
  }
  return key;
};

export const gql = async <T>(query: string, variables: Record<string, unknown> = {}, key = storedKey()): Promise<T> => {
  // Checked before fetch, which would throw a TypeError for such a header that reads as a network failure.
  if (key) cleanKey(key);
  let res: Response;
  let body: GraphQLResponse<T>;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    body = (await res.json()) as GraphQLResponse<T>;
  } catch {
    // A network failure, or a body that is not JSON: the parser's words ("Unexpected token '<'") would tell nobody anything.
    throw unreachable();
  }
  const error = body.errors?.[0];
  if (error) {
    const code = error.extensions?.code ?? 'ERROR';
    if (code === 'UNAUTHENTICATED' && key === storedKey()) onUnauthenticated();
    throw new ApiError(error.message, code);
  }
  if (!body.data) throw res.status >= 500 ? unreachable() : new ApiError(`The server answered ${res.status} without data`, 'ERROR');
  return body.data;
};

/** 128 random bits in hex: `crypto.randomUUID` exists only in secure contexts (https, localhost), and a console can be reached over plain http on a LAN address. */
const randomKey = (): string => Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');

/** Codes of a request whose outcome is not known: no answer came, or the server could not say what it did. */
const UNDECIDED = new Set([UNREACHABLE, 'UNAVAILABLE', 'INTERNAL', 'ERROR']);
const pendingKeys = new Map<string, string>();

/**
 * Send a money mutation (a purchase, a grant, a refund) under an idempotency key that stays the same until the server
 * has decided it: sent again (a second click, a click again after an answer that never came) it is applied once.
 * `what` names the operation as filled in (what, which account, how much, how paid); an answer (done, or refused)
 * ends its key, so the next such operation gets its own; an undecided outcome keeps it for the retry.
 */
export const withIdempotencyKey = async <T>(what: string, send: (key: string) => Promise<T>): Promise<T> => {
  let key = pendingKeys.get(what);
  if (key === undefined) pendingKeys.set(what, (key = randomKey()));
  try {
    const result = await send(key);
    pendingKeys.delete(what);
    return result;
  } catch (error) {
    if (!(error instanceof ApiError && UNDECIDED.has(error.code))) pendingKeys.delete(what);
    throw error;
  }
};

/** A relay connection as the console reads it. */
export interface Connection<T> {
  readonly edges: readonly { readonly node: T }[];
  readonly pageInfo: { readonly hasNextPage: boolean; readonly endCursor: string | null };
}

/**
 * Every node of a connection, page after page (the server gives at most 100 a page), up to `max`: `complete` is false
 * when more were left unread, for the page to say so.
 */
export const allPages = async <T>(page: (after: string | null) => Promise<Connection<T>>, max: number): Promise<{ nodes: T[]; complete: boolean }> => {
  const nodes: T[] = [];
  let after: string | null = null;
  for (;;) {
    const { edges, pageInfo }: Connection<T> = await page(after);
    nodes.push(...edges.map((e) => e.node));
    if (!pageInfo.hasNextPage || !pageInfo.endCursor) return { nodes, complete: true };
    if (nodes.length >= max) return { nodes, complete: false };
    after = pageInfo.endCursor;
  }
};

/** A mutation's result union: the value, or its DomainError thrown as an ApiError. */
export type Result<T> = (T & { __typename: string }) | { __typename: 'DomainError'; code: string; message: string; details: unknown };
export const DOMAIN_ERROR = '... on DomainError { code message details }';
export const unwrap = <T>(result: Result<T>): T => {
  if (result.__typename === 'DomainError') {
    const error = result as { code: string; message: string; details: unknown };
    throw new ApiError(error.message, error.code, error.details);
  }
  return result as T;
};

let ws: Client | null = null;
const wsClient = (): Client => {
  ws ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: () => ({ authorization: `Bearer ${storedKey() ?? ''}` }),
    lazy: true,
  });
  return ws;
};

/** Subscribe; `next` gets each result's data. Returns the function that ends the subscription. */
export const subscribe = <T>(query: string, variables: Record<string, unknown>, sink: { next: (data: T) => void; error: (error: ApiError) => void; complete?: () => void }): (() => void) =>
  wsClient().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        const error = result.errors?.[0];
        if (error) sink.error(new ApiError(error.message, String(error.extensions?.code ?? 'ERROR')));
        else if (result.data) sink.next(result.data as T);
      },
      error: (error) => sink.error(new ApiError(error instanceof Error ? error.message : 'The subscription ended with an error', 'SUBSCRIPTION')),
      complete: () => sink.complete?.(),
    },
  );

import type { IncomingMessage, ServerResponse } from 'node:http';
import { DomainError } from '../errors.js';
import { readBody } from './readBody.js';
import type { Principal } from '../modules/auth/principal.js';

/** OpenRouter's error shape: `{ error: { code, message, metadata } }` with the HTTP status as `code`. */
export const sendError = (res: ServerResponse, error: DomainError, requestId?: string) => {
  sendJson(res, error.status, {
    error: { code: error.status, message: error.message, metadata: { error_type: error.code, ...error.metadata, ...(requestId ? { request_id: requestId } : {}) } },
  });
};

export const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
};

export const bearerOf = (req: IncomingMessage): string | null => {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(.+)$/i.exec(header);
  return match ? match[1]!.trim() : header.trim();
};

export interface RestRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly requestId: string;
  readonly params: Record<string, string>;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path with `:name` segments, e.g. `/api/v1/models/:author/:slug/endpoints`. */
  readonly path: string;
  readonly handler: (request: RestRequest) => Promise<void> | void;
}

interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

/** A small exact router: few routes, matched in order; unknown paths are 404 and wrong methods 405 with Allow. */
export const createRouter = (routes: readonly Route[]) => {
  const compiled: CompiledRoute[] = routes.map((route) => {
    const names: string[] = [];
    const source = route.path.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    return { ...route, pattern: new RegExp(`^${source}/?$`), names };
  });
  return {
    match(method: string, pathname: string): { route: CompiledRoute; params: Record<string, string> } | { allowed: string[] } | null {
      const allowed: string[] = [];
      for (const route of compiled) {
        const m = route.pattern.exec(pathname);
        if (!m) continue;
        if (route.method !== method) {
          allowed.push(route.method);
          continue;
        }
        const params: Record<string, string> = {};
        route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
        return { route, params };
      }
      return allowed.length ? { allowed } : null;
    },
  };
};

/** Read a JSON body, refusing more than `maxBytes` (413) and malformed JSON (400). */
export const readJsonBody = async (req: IncomingMessage, maxBytes: number): Promise<unknown> => {
  const tooLarge = () => new DomainError('PAYLOAD_TOO_LARGE', `Request body is larger than ${maxBytes} bytes`, 413, { limit: maxBytes });
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) throw tooLarge();
  const text = (await readBody(req, maxBytes, tooLarge)).toString('utf8');
  if (text.trim() === '') throw new DomainError('BAD_REQUEST', 'Request body is empty; send a JSON object', 400);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DomainError('BAD_REQUEST', `Malformed JSON: ${(error as Error).message}`, 400);
  }
};

/** The caller of a REST request, or a 401. */
export const requirePrincipal = (directory: { authenticate(secret: string | null): Principal }, req: IncomingMessage): Principal => directory.authenticate(bearerOf(req));

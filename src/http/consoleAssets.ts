import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { DomainError } from '../errors.js';
import { negotiateEncoding } from './graphiqlPage.js';

/**
 * The console's page and assets (built by src/console/build.ts into dist/console/), served from memory: the page is
 * revalidated on every load (no-cache), the content-hashed assets are cached for a year (immutable). Every answer
 * carries a Content-Security-Policy that allows only this origin's script, style and connections (the page has no
 * inline script or style), and forbids framing.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // The page's icon is an empty data: URL, so the browser asks for no /favicon.ico.
  "img-src 'self' data:",
  // fetch to /graphql and the graphql-ws WebSocket on the same host ('self' covers ws: and wss: in CSP 3).
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

type Encoding = 'br' | 'gzip';
const compressors: Record<Encoding, (body: Buffer) => Promise<Buffer>> = {
  br: (body) => promisify(brotliCompress)(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
  gzip: (body) => promisify(gzip)(body, { level: 9 }),
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  readonly cacheControl: string;
  readonly encoded: Map<Encoding, Promise<Buffer>>;
}

const asset = (body: Buffer, type: string, cacheControl: string): Asset => ({
  body,
  type,
  cacheControl,
  etag: `W/"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  encoded: new Map(),
});

/** The bundle's files by URL path, or null when it was not built. */
const load = (dir: string): Map<string, Asset> | null => {
  let index: Buffer;
  try {
    index = readFileSync(join(dir, 'index.html'));
  } catch {
    return null;
  }
  // The page at / and at /auth (where an app sends a user to sign in with Switchyard: src/console/app/pages/authorize.tsx).
  const page = asset(index, CONTENT_TYPES['.html'] ?? 'text/html', 'no-cache');
  const files = new Map<string, Asset>([
    ['/', page],
    ['/auth', page],
  ]);
  for (const name of readdirSync(join(dir, 'assets'))) {
    files.set(`/assets/${name}`, asset(readFileSync(join(dir, 'assets', name)), CONTENT_TYPES[extname(name)] ?? 'application/octet-stream', 'public, max-age=31536000, immutable'));
  }
  return files;
};

const matches = (header: string | undefined, etag: string): boolean =>
  header !== undefined && header.split(',').some((tag) => tag.trim() === '*' || tag.trim().replace(/^W\//, '') === etag.replace(/^W\//, ''));

export const isConsolePath = (pathname: string): boolean => pathname === '/' || pathname === '/auth' || pathname.startsWith('/assets/');

export const createConsoleAssets = (dir: string) => {
  // Read on the first request, not at start-up; a missing bundle is looked for again on the next request.
  let files: Map<string, Asset> | null = null;
  const encoded = (file: Asset, encoding: Encoding): Promise<Buffer> => {
    let done = file.encoded.get(encoding);
    if (!done) {
      done = compressors[encoding](file.body).catch((error: unknown) => {
        file.encoded.delete(encoding);
        throw error;
      });
      file.encoded.set(encoding, done);
    }
    return done;
  };

  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> => {
    files ??= load(dir);
    if (!files) throw new DomainError('NOT_FOUND', 'The console is not built: run `npm run build` (`npm start` and `npm test` build it when missing)', 404);
    const file = files.get(pathname);
    if (!file) throw new DomainError('NOT_FOUND', `No console asset ${pathname}`, 404);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new DomainError('BAD_REQUEST', `Method ${req.method} not allowed on ${pathname}; allowed: GET, HEAD`, 405, { allowed: ['GET', 'HEAD'] });
    }
    const headers = { ...SECURITY_HEADERS, 'content-type': file.type, 'cache-control': file.cacheControl, etag: file.etag, vary: 'Accept-Encoding' };
    if (matches(req.headers['if-none-match'], file.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const encoding = negotiateEncoding(req.headers['accept-encoding']);
    const body = encoding ? await encoded(file, encoding) : file.body;
    res.writeHead(200, { ...headers, ...(encoding && { 'content-encoding': encoding }), 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
};

/**
 * One error vocabulary on every REST route: whatever goes wrong (no key, a wrong key, a wrong method, a body over the
 * limit, an unknown path), the answer is OpenRouter's `{error:{code, message, metadata}}` with the HTTP status as
 * `code`, a lowercase `error_type` from OpenRouter's list, and the request id.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';

/** OpenRouter's documented `error.metadata.error_type` values (errors-and-debugging reference). */
const OPENROUTER_ERROR_TYPES = new Set([
  'context_length_exceeded', 'max_tokens_exceeded', 'token_limit_exceeded', 'string_too_long', 'authentication', 'permission_denied',
  'payment_required', 'rate_limit_exceeded', 'provider_overloaded', 'provider_unavailable', 'invalid_request', 'invalid_prompt',
  'not_found', 'precondition_failed', 'payload_too_large', 'unprocessable', 'content_policy_violation', 'refusal', 'invalid_image',
  'image_too_large', 'image_too_small', 'unsupported_image_format', 'image_not_found', 'image_download_failed', 'server', 'timeout', 'unmapped',
]);

/** Routes that serve only a caller with a key. */
const KEYED = ['GET /api/v1/credits', 'GET /api/v1/key', 'GET /api/v1/auth/key', 'POST /api/v1/chat/completions', 'POST /api/v1/completions', 'POST /api/v1/responses', 'GET /api/v1/generation', 'POST /api/v1/messages', 'POST /api/v1/keys', 'GET /api/v1/activity'];
/** The Responses skin answers in OpenAI's shape (a string `code` such as invalid_prompt), with the same metadata. */
const OPENAI_SHAPED = new Set(['/api/v1/responses']);

/**
 * A skin answers in its own API's error shape (Anthropic's `{type:"error", error:{type, message}, request_id}`):
 * its error types, read here as the OpenRouter type they stand for.
 */
const SKINS: Record<string, Record<string, string>> = {
  '/api/v1/messages': { invalid_request_error: 'invalid_request', authentication_error: 'authentication', request_too_large: 'payload_too_large', not_found_error: 'not_found' },
};

const LIMIT = 4096;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
let h: Harness;
let routes: readonly { method: string; path: string }[];
let sent = 0;
/** The key management routes answer only a management key (any other key is a 403 before the body is read). */
let managementKey: string;
const keyFor = (path: string) => (path.startsWith('/api/v1/keys') || path.startsWith('/api/v1/activity') ? managementKey : ADMIN_KEY);

beforeAll(async () => {
  h = await startHarness({ MAX_BODY_BYTES: String(LIMIT) });
  routes = h.running.routes;
  managementKey = (await h.gql('mutation { createApiKey(name: "m", kind: MANAGEMENT) { ... on CreatedApiKey { secret } } }')).body.data.createApiKey.secret;
});
afterAll(async () => {
  await h.stop();
});

/** A concrete path for a route pattern (`:author` → `acme`). */
const concrete = (path: string) => path.replace(/:[a-zA-Z]+/g, 'acme');

interface Answer {
  readonly status: number;
  readonly errorType: string | null;
  readonly allow: string | null;
}

/** Send one request; when it fails, check the one shape and vocabulary and give back the error type. */
const call = async (method: string, path: string, options: { key?: string; body?: string | Blob; headers?: Record<string, string> } = {}): Promise<Answer> => {
  const requestId = `walk-${++sent}`;
  const res = await fetch(`${h.url}${path}`, {
    method,
    headers: {
      'x-request-id': requestId,
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const what = `${method} ${path} (${options.key ? 'with a key' : 'no key'})`;
  const text = await res.text();
  if (res.status < 400) return { status: res.status, errorType: null, allow: null };
  expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
  // A skin's path answers every method in its API's shape, a wrong one's 405 included.
  const skin = SKINS[path];
  if (skin !== undefined && res.status !== 404) {
    const body = JSON.parse(text) as { type: unknown; error: { type: unknown; message: unknown }; request_id: unknown };
    expect(body.type, what).toBe('error');
    expect(typeof body.error.message === 'string' && body.error.message.length > 0, `${what}: a message`).toBe(true);
    expect(body.request_id, what).toBe(requestId);
    const errorType = skin[String(body.error.type)];
    expect(errorType, `${what}: error type ${String(body.error.type)}`).toBeDefined();
    return { status: res.status, errorType: errorType!, allow: res.headers.get('allow') };
  }
  const body = JSON.parse(text) as { error: { code: unknown; message: unknown; metadata: { error_type: unknown; request_id: unknown } } };
  if (OPENAI_SHAPED.has(path)) expect(typeof body.error.code, what).toBe('string');
  else expect(body.error.code, what).toBe(res.status);
  expect(typeof body.error.message === 'string' && body.error.message.length > 0, `${what}: a message`).toBe(true);
  expect(OPENROUTER_ERROR_TYPES.has(String(body.error.metadata.error_type)), `${what}: error_type ${String(body.error.metadata.error_type)}`).toBe(true);
  expect(body.error.metadata.request_id, what).toBe(requestId);
  return { status: res.status, errorType: String(body.error.metadata.error_type), allow: res.headers.get('allow') };
};

describe('every REST route answers in OpenRouter error vocabulary', () => {
  it('walks the route table (it has the account, catalog and gateway routes)', () => {
    const names = routes.map((r) => `${r.method} ${r.path}`);
    for (const keyed of KEYED) expect(names).toContain(keyed);
    expect(names).toContain('GET /api/v1/models');
  });

  it('no key or an unknown key: a keyed route is 401 authentication, a public one answers or errs in the vocabulary', async () => {
    for (const route of routes) {
      const keyed = KEYED.includes(`${route.method} ${route.path}`);
      for (const key of [undefined, 'sk-sy-v1-not-a-real-key']) {
        const answer = await call(route.method, concrete(route.path), { key, ...(route.method === 'POST' ? { body: '{}' } : {}) });
        if (keyed) expect(answer, `${route.method} ${route.path}`).toMatchObject({ status: 401, errorType: 'authentication' });
      }
    }
  });

  it('a wrong method is 405 invalid_request with the Allow header, on every route', async () => {
    const byPath = new Map<string, string[]>();
    for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route.method]);
    for (const [path, allowed] of byPath) {
      for (const method of METHODS.filter((m) => !allowed.includes(m))) {
        const answer = await call(method, concrete(path), { key: ADMIN_KEY });
        // HEAD is answered wherever GET is, so the Allow header names it too.
        expect(answer, `${method} ${path}`).toEqual({ status: 405, errorType: 'invalid_request', allow: [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ') });
      }
    }
  });

  it('a body over the limit is 413 payload_too_large on every route that takes one, and on /graphql', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(LIMIT) });
    // DELETE takes no body (DELETE /api/v1/keys/{hash} reads none).
    const posts = routes.filter((r) => r.method !== 'GET' && r.method !== 'DELETE');
    expect(posts.length).toBeGreaterThan(0);
    for (const route of posts) {
      expect(await call(route.method, concrete(route.path), { key: keyFor(route.path), body: big }), route.path).toMatchObject({ status: 413, errorType: 'payload_too_large' });
    }
    expect(await call('POST', '/graphql', { key: ADMIN_KEY, body: big })).toMatchObject({ status: 413, errorType: 'payload_too_large' });
  });

  it('a compressed body (Content-Encoding) is 415 invalid_request on every route that takes one, and on /graphql', async () => {
    const gzipped = new Blob([gzipSync(JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] }))]);
    const posts = routes.filter((r) => r.method !== 'GET' && r.method !== 'DELETE');
    for (const route of posts) {
      for (const encoding of ['gzip', 'br', 'identity, deflate']) {
        const answer = await call(route.method, concrete(route.path), { key: keyFor(route.path), body: gzipped, headers: { 'content-encoding': encoding } });
        expect(answer, `${route.method} ${route.path} ${encoding}`).toMatchObject({ status: 415, errorType: 'invalid_request' });
      }
    }
    expect(await call('POST', '/graphql', { key: ADMIN_KEY, body: gzipped, headers: { 'content-encoding': 'gzip' } })).toMatchObject({ status: 415, errorType: 'invalid_request' });
  });

  it('the 415 names the encoding, echoes none of the body, and says which coding is accepted; identity is read as none', async () => {
    const gzipped = gzipSync(JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] }));
    const res = await fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipped,
    });
    expect(res.status).toBe(415);
    expect(res.headers.get('accept-encoding')).toBe('identity');
    const { error } = (await res.json()) as { error: { code: number; message: string; metadata: Record<string, unknown> } };
    expect(error).toMatchObject({ code: 415, metadata: { error_type: 'invalid_request', content_encoding: 'gzip' } });
    expect(error.message).toBe('Content-Encoding "gzip" is not supported: send the JSON body uncompressed (no Content-Encoding, or identity)');
    // Not refused for its coding: identity is no coding (this body then fails for what it is, a chat without credits or not).
    const plain = await fetch(`${h.url}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', 'content-encoding': 'identity' },
      body: JSON.stringify({ model: 'switchyard/demo', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(plain.status).not.toBe(415);
    expect(plain.status).toBeLessThan(500);
  });

  it('a body that is not valid UTF-8 is 400 invalid_request, and a charset other than UTF-8 415, on every route that takes one, and on /graphql', async () => {
    const chat = (name: string) => Buffer.concat([Buffer.from('{"model":"switchyard/demo","max_tokens":2,"messages":[{"role":"user","content":"'), Buffer.from(name, 'latin1'), Buffer.from('"}]}')]);
    const notUtf8 = new Blob([new Uint8Array(chat('Zo\xeb'))]);
    const posts = routes.filter((r) => r.method !== 'GET' && r.method !== 'DELETE');
    // Every shape (OpenRouter's, OpenAI's, Anthropic's) has the message at error.message.
    const messageOf = async (method: string, path: string, body: Blob, headers: Record<string, string> = {}) => {
      const res = await fetch(`${h.url}${path}`, { method, headers: { authorization: `Bearer ${keyFor(path)}`, 'content-type': 'application/json', ...headers }, body });
      return ((await res.json()) as { error: { message: string } }).error.message;
    };
    for (const route of posts) {
      const path = concrete(route.path);
      const answer = await call(route.method, path, { key: keyFor(route.path), body: notUtf8 });
      // The webhook of a workflow that does not exist answers 404 before it parses the body (the secret is checked first).
      if (route.path.endsWith('/webhook')) expect(answer, route.path).toMatchObject({ status: 404 });
      else {
        expect(answer, `${route.method} ${route.path}`).toMatchObject({ status: 400, errorType: 'invalid_request' });
        expect(await messageOf(route.method, path, notUtf8), `${route.method} ${route.path}`).toMatch(/^The request body is not valid UTF-8/);
      }
      const utf16 = await call(route.method, path, { key: keyFor(route.path), body: '{}', headers: { 'content-type': 'application/json; charset=utf-16' } });
      expect(utf16, `${route.method} ${route.path}`).toMatchObject({ status: 415, errorType: 'invalid_request' });
    }
    expect(await call('POST', '/graphql', { key: ADMIN_KEY, body: new Blob([new Uint8Array(Buffer.concat([Buffer.from('{"query":"{ __typename } #'), Buffer.from([0xff]), Buffer.from('"}')]))]) })).toMatchObject({ status: 400, errorType: 'invalid_request' });
    expect(await call('POST', '/graphql', { key: ADMIN_KEY, body: '{"query":"{ __typename }"}', headers: { 'content-type': 'application/json; charset=latin1' } })).toMatchObject({ status: 415, errorType: 'invalid_request' });

    // The chat route's message names the problem and where; its 415 says nothing of content codings.
    const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: new Uint8Array(chat('Zo\xeb')) });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { message: string; metadata: Record<string, unknown> } };
    expect(error.message).toMatch(/^The request body is not valid UTF-8 \(a byte sequence at offset 82\)/);
    expect(error.metadata).toMatchObject({ offset: 82 });
    const latin1 = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json; charset=iso-8859-1' }, body: new Uint8Array(chat('Zo\xeb')) });
    expect(latin1.status).toBe(415);
    expect(latin1.headers.get('accept-encoding')).toBeNull();
    expect(((await latin1.json()) as { error: { message: string } }).error.message).toBe('Content-Type charset "iso-8859-1" is not supported: send the body in UTF-8 (charset=utf-8, or no charset)');
    // UTF-8 with a byte-order mark is read past it: the call goes on (and answers, credits or not, below 500).
    const bom = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json; charset=utf-8' }, body: new Uint8Array(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(chat('Zo\xeb').toString('latin1'), 'utf8')])) });
    expect(bom.status, await bom.clone().text()).toBe(200);
  });

  it('a leading byte-order mark is read past on /graphql as on every REST route (JSON and form bodies)', async () => {
    const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
    const json = await fetch(`${h.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: new Uint8Array(Buffer.concat([BOM, Buffer.from('{"query":"{ currentKey { restricted } }"}')])) });
    expect(json.status, await json.clone().text()).toBe(200);
    expect(await json.json()).toEqual({ data: { currentKey: { restricted: false } } });
    const form = await fetch(`${h.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new Uint8Array(Buffer.concat([BOM, Buffer.from(`query=${encodeURIComponent('{ __typename }')}`)])) });
    expect(form.status, await form.clone().text()).toBe(200);
    expect(await form.json()).toEqual({ data: { __typename: 'Query' } });
    // Only a leading one: a BOM inside the text is a character like any other (here, where JSON allows none).
    const inner = await fetch(`${h.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: '{"query":\uFEFF"{ __typename }"}' });
    expect(inner.status).toBe(400);
    expect(await inner.json()).toMatchObject({ errors: [{ message: 'POST body sent invalid JSON.' }] });
  });

  it('the Content-Type is parsed as a media type: a quoted parameter holding ";charset=" is no charset, on REST and /graphql alike', async () => {
    const chatBody = JSON.stringify({ model: 'switchyard/demo', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });
    const post = (path: string, contentType: string, body: string, key = ADMIN_KEY) =>
      fetch(`${h.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': contentType }, body });
    const utf8Forms = [
      'application/json; foo="a;charset=utf-16"',
      'application/json; foo="a\\";charset=utf-16"',
      'application/json; foo="x"; charset=utf-8',
      'application/json; charset=UTF-8',
      'application/json; charset="utf-8"',
      'application/json; charset = utf-8',
      'application/json;charset=utf-8',
      'application/json; CHARSET=UTF-8',
      'application/json; charset=utf8',
      'application/json; charset=US-ASCII',
    ];
    for (const type of utf8Forms) {
      const chat = await post('/api/v1/chat/completions', type, chatBody);
      expect(chat.status, `chat ${type}: ${await chat.clone().text()}`).toBe(200);
      const gql = await post('/graphql', type, '{"query":"{ __typename }"}');
      expect(gql.status, `graphql ${type}: ${await gql.clone().text()}`).toBe(200);
      const key = await post('/api/v1/keys', type, JSON.stringify({ name: 'media type' }), managementKey);
      expect(key.status, `keys ${type}: ${await key.clone().text()}`).toBe(201);
    }
    // A charset that is not UTF-8 is still one, quoted, after a quoted parameter holding a ";", or in capitals.
    for (const type of ['application/json; charset="utf-16"', 'application/json; foo="a;b"; charset=latin1', 'application/json; CHARSET=ISO-8859-1']) {
      const chat = await post('/api/v1/chat/completions', type, chatBody);
      expect(chat.status, `chat ${type}`).toBe(415);
      expect(((await chat.json()) as { error: { message: string } }).error.message).toMatch(/^Content-Type charset "(utf-16|latin1|iso-8859-1)" is not supported/);
      expect((await post('/graphql', type, '{"query":"{ __typename }"}')).status, `graphql ${type}`).toBe(415);
    }
  });

  it('an unknown path is 404 not_found, next to every route and elsewhere', async () => {
    // `/` is the web console's page (test/e2e/console.e2e.test.ts).
    // `/api/v1/models/extra` and `/api/v1/models/acme/extra` name models (GET /models/{id}, the id's slash encoded
    // or not): a GET of them is a 404 for the unknown model, any other method a 405.
    // `/api/v1/keys/extra` names a key the same way (GET /keys/{hash}).
    const modelPaths = new Set(['/api/v1/models', '/api/v1/models/count', '/api/v1/models/:id', '/api/v1/keys']);
    const paths = ['/api', '/api/v1', '/api/v1/nothing-here', '/API/V1/CREDITS', ...routes.filter((r) => !modelPaths.has(r.path)).map((r) => `${concrete(r.path)}/extra`)];
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        expect(await call(method, path, { key: keyFor(path), ...(method === 'POST' ? { body: '{}' } : {}) }), `${method} ${path}`).toMatchObject({ status: 404, errorType: 'not_found' });
      }
    }
  });

  it('bad input to a route is 400 invalid_request whether the app, an account route or the gateway refuses it', async () => {
    expect(await call('POST', '/api/v1/chat/completions', { key: ADMIN_KEY, body: '{"model":' })).toMatchObject({ status: 400, errorType: 'invalid_request' });
    expect(await call('POST', '/api/v1/chat/completions', { key: ADMIN_KEY, body: '' })).toMatchObject({ status: 400, errorType: 'invalid_request' });
    expect(await call('GET', '/api/v1/model/%zz/x')).toMatchObject({ status: 400, errorType: 'invalid_request' });
    expect(await call('GET', '/api/v1/models?sort=nonsense')).toMatchObject({ status: 400, errorType: 'invalid_request' });
  });
});

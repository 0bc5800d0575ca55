/**
 * Bad input gets a typed 4xx in OpenRouter's error shape, and costs nothing: no reservation, no charge, no event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let user: Account;

beforeAll(async () => {
  h = await startGatewayHarness({ MAX_BODY_BYTES: '65536' });
  user = await h.openAccount({ credits: 1_000_000_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'small', model: 'test/small-context', prices: { prompt: 100, completion: 100 }, contextLength: 1_000, maxOutput: 200, quantization: 'fp8' });
});
afterAll(async () => {
  await h.stop();
});

const hi = [{ role: 'user', content: 'hi' }];

/** `{"a":{"a":…1…}}`, `depth` objects deep. */
function nest(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

const CASES: { name: string; body: unknown; status: number; errorType: string; message: RegExp }[] = [
  { name: 'an unknown model', body: { model: 'acme/unknown', messages: hi }, status: 400, errorType: 'invalid_request', message: /acme\/unknown is not a valid model ID/ },
  { name: 'no model', body: { messages: hi }, status: 400, errorType: 'invalid_request', message: /model is required/ },
  { name: 'empty messages', body: { model: 'switchyard/demo', messages: [] }, status: 400, errorType: 'invalid_request', message: /messages must be a non-empty list/ },
  { name: 'an invalid role', body: { model: 'switchyard/demo', messages: [{ role: 'wizard', content: 'hi' }] }, status: 400, errorType: 'invalid_request', message: /role must be one of/ },
  { name: 'a tool message without tool_call_id', body: { model: 'switchyard/demo', messages: [{ role: 'tool', content: 'x' }] }, status: 400, errorType: 'invalid_request', message: /tool_call_id/ },
  {
    // (Context compression, on by default for this 1,000-token endpoint, would fit it: off here.)
    name: 'more tokens than the context, compression off',
    body: { model: 'test/small-context', messages: [{ role: 'user', content: 'x'.repeat(8_000) }], transforms: [] },
    status: 400,
    errorType: 'context_length_exceeded',
    message: /context length is 1000 tokens/,
  },
  { name: 'max_tokens beyond every endpoint', body: { model: 'test/small-context', messages: hi, max_tokens: 500 }, status: 400, errorType: 'max_tokens_exceeded', message: /max_tokens 500/ },
  { name: 'a temperature out of range', body: { model: 'switchyard/demo', messages: hi, temperature: 7 }, status: 400, errorType: 'invalid_request', message: /temperature must be a number between 0 and 2/ },
  { name: 'an invalid provider.sort', body: { model: 'switchyard/demo', messages: hi, provider: { sort: 'fastest' } }, status: 400, errorType: 'invalid_request', message: /provider.sort/ },
  { name: 'unknown quantizations', body: { model: 'switchyard/demo', messages: hi, provider: { quantizations: ['int3'] } }, status: 400, errorType: 'invalid_request', message: /int3/ },
  { name: 'provider.order that is not a list', body: { model: 'switchyard/demo', messages: hi, provider: { order: 'openai' } }, status: 400, errorType: 'invalid_request', message: /provider.order/ },
  { name: 'allow_fallbacks that is not a boolean', body: { model: 'switchyard/demo', messages: hi, provider: { allow_fallbacks: 'no' } }, status: 400, errorType: 'invalid_request', message: /allow_fallbacks/ },
  { name: 'a negative max_price', body: { model: 'switchyard/demo', messages: hi, provider: { max_price: { prompt: -1 } } }, status: 400, errorType: 'invalid_request', message: /max_price.prompt/ },
  { name: 'provider.only that excludes every endpoint', body: { model: 'test/small-context', messages: hi, provider: { only: ['nobody'] } }, status: 404, errorType: 'not_found', message: /provider restrictions/ },
  { name: 'quantizations that exclude every endpoint', body: { model: 'test/small-context', messages: hi, provider: { quantizations: ['fp16'] } }, status: 404, errorType: 'not_found', message: /provider restrictions/ },
  { name: 'an unsupported variant', body: { model: 'switchyard/demo:online', messages: hi }, status: 400, errorType: 'invalid_request', message: /:online variant/ },
  { name: 'a body that is not an object', body: [1, 2], status: 400, errorType: 'invalid_request', message: /JSON object/ },
  { name: 'the web plugin (no search backend)', body: { model: 'switchyard/demo', messages: hi, plugins: [{ id: 'web' }] }, status: 400, errorType: 'invalid_request', message: /web plugin \(web search\) is not supported/ },
  { name: 'an unknown plugin', body: { model: 'switchyard/demo', messages: hi, plugins: [{ id: 'telepathy' }] }, status: 400, errorType: 'invalid_request', message: /not a known plugin/ },
  { name: 'enforce_distillable_text', body: { model: 'switchyard/demo', messages: hi, provider: { enforce_distillable_text: true } }, status: 400, errorType: 'invalid_request', message: /enforce_distillable_text is not supported/ },
  {
    // At 3,000 levels (deeper than JSON.stringify walks) building the provider's request threw, taken for a connection
    // failure of the provider (a 502, and its circuit breaker opened by anyone's two requests).
    name: 'a response_format schema nested 1,000 levels deep',
    body: { model: 'test/small-context', messages: hi, response_format: { type: 'json_schema', json_schema: { name: 'n', schema: nest(1_000) } } },
    status: 400,
    errorType: 'invalid_request',
    message: /JSON nested more than 64 levels deep/,
  },
  { name: 'a provider name longer than 256 characters', body: { model: 'switchyard/demo', messages: hi, provider: { order: ['x'.repeat(257)] } }, status: 400, errorType: 'invalid_request', message: /provider.order holds a string longer than 256/ },
  { name: 'zdr with no provider stated to keep nothing', body: { model: 'test/small-context', messages: hi, provider: { zdr: true } }, status: 404, errorType: 'not_found', message: /meet your data policy/ },
];

const unchanged = async (run: () => Promise<void>) => {
  await h.running.core.gateway.idle();
  const head = await h.running.core.eventStore.headPosition();
  const before = await h.running.core.ledger.balance(user.accountId);
  await run();
  await h.running.core.gateway.idle();
  expect(await h.running.core.eventStore.headPosition()).toBe(head);
  expect(await h.running.core.ledger.balance(user.accountId)).toEqual(before);
};

describe('typed 4xx, no charge, nothing written', () => {
  it.each(CASES)('$name → $status $errorType', async ({ body, status, errorType, message }) => {
    await unchanged(async () => {
      const res = await h.chat(user.key, body as Record<string, unknown>);
      expect(res.status).toBe(status);
      const json = (await res.json()) as { error: { code: number; message: string; metadata: { error_type: string } } };
      expect(json.error.code).toBe(status);
      expect(json.error.metadata.error_type).toBe(errorType);
      expect(json.error.message).toMatch(message);
    });
  });

  it.each([
    ['top_p', 0, 'top_p must be a number greater than 0 and at most 1'],
    ['top_p', 1.01, 'top_p must be a number greater than 0 and at most 1'],
    ['top_k', 0, 'top_k must be an integer between 1 and 1000000'],
    ['repetition_penalty', 0, 'repetition_penalty must be a number greater than 0 and at most 2'],
    ['repetition_penalty', 2.5, 'repetition_penalty must be a number greater than 0 and at most 2'],
  ])("%s: %s is outside OpenRouter's range → 400 naming the param", async (param, value, message) => {
    await unchanged(async () => {
      const res = await h.chat(user.key, { model: 'switchyard/demo', messages: hi, [param]: value });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 400, message, metadata: { error_type: 'invalid_request', param } } });
    });
  });

  it('an unknown field inside provider, or an unknown route, is a 400 naming it; the body itself stays lenient', async () => {
    for (const [body, param, message] of [
      [{ provider: { orderr: ['small'] } }, 'provider.orderr', /^provider\.orderr is not a field of provider \(its fields: order, only, ignore, .*max_price\)$/],
      [{ provider: { sort: 'price', max_prices: { prompt: 1 } } }, 'provider.max_prices', /provider\.max_prices is not a field of provider/],
      [{ route: 'bogus' }, 'route', /^route must be "fallback"/],
    ] as const) {
      await unchanged(async () => {
        const res = await h.chat(user.key, { model: 'switchyard/demo', messages: hi, ...body });
        expect(res.status, JSON.stringify(body)).toBe(400);
        const { error } = (await res.json()) as { error: { message: string; metadata: { param: string; error_type: string } } };
        expect(error.metadata).toMatchObject({ error_type: 'invalid_request', param });
        expect(error.message).toMatch(message);
      });
    }
    // OpenAI SDKs send fields of their own at the top level: still accepted, as is OpenRouter's legacy route "fallback".
    for (const body of [{ route: 'fallback' }, { store: false, service_tier: 'auto', metadata: { a: 'b' } }]) {
      const res = await h.chat(user.key, { model: 'switchyard/demo', max_tokens: 5, messages: hi, ...body });
      expect(res.status, JSON.stringify(body)).toBe(200);
    }
  });

  it("the edges of OpenRouter's ranges are accepted (top_p 1, top_k 1, repetition_penalty 2, and just above 0)", async () => {
    for (const sampling of [{ top_p: 1, top_k: 1, repetition_penalty: 2 }, { top_p: 0.001, repetition_penalty: 0.001 }]) {
      const res = await h.chat(user.key, { model: 'switchyard/demo', max_tokens: 5, messages: hi, ...sampling });
      expect(res.status, JSON.stringify(sampling)).toBe(200);
    }
  });

  it('the web plugin is refused on the Responses and Messages routes too (they hand plugins to the chat parse)', async () => {
    await unchanged(async () => {
      const post = (path: string, body: unknown) =>
        fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${user.key}` }, body: JSON.stringify(body) });
      const responses = await post('/api/v1/responses', { model: 'switchyard/demo', input: 'hi', plugins: [{ id: 'web' }] });
      expect(responses.status).toBe(400);
      expect(JSON.stringify(await responses.json())).toContain('web plugin (web search) is not supported');
      const messages = await post('/api/v1/messages', { model: 'switchyard/demo', max_tokens: 10, messages: hi, plugins: [{ id: 'web' }] });
      expect(messages.status).toBe(400);
      expect(await messages.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('web plugin (web search) is not supported') } });
    });
  });

  it('an oversized body → 413 payload_too_large', async () => {
    await unchanged(async () => {
      const res = await h.chat(user.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('payload_too_large');
    });
  });

  it('an oversized body sent chunked (no Content-Length) → 413 too, on a connection that still answers', async () => {
    await unchanged(async () => {
      const chunk = JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'x'.repeat(20_000) }] });
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(new TextEncoder().encode(chunk));
          controller.close();
        },
      });
      const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${user.key}`, 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
      expect(res.headers.get('content-length')).not.toBeNull();
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('payload_too_large');
    });
  });

  it('malformed JSON → 400', async () => {
    await unchanged(async () => {
      const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${user.key}`, 'content-type': 'application/json' }, body: '{"model": ' });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Malformed JSON/);
    });
  });

  it('no key → 401 authentication', async () => {
    await unchanged(async () => {
      const res = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'switchyard/demo', messages: hi }) });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { metadata: { error_type: string } } }).error.metadata.error_type).toBe('authentication');
    });
  });

  it('GET /api/v1/models rejects an unknown sort and bad paging', async () => {
    expect((await fetch(`${h.url}/api/v1/models?sort=random`)).status).toBe(400);
    expect((await fetch(`${h.url}/api/v1/models?limit=5000`)).status).toBe(400);
    expect((await fetch(`${h.url}/api/v1/models/acme/unknown/endpoints`)).status).toBe(404);
  });
});

/**
 * provider.max_price over real HTTP: a bound in USD per million tokens (per request for `request`), applied exactly
 * to the catalog's integer nano-dollar prices however finely it is written, and a hard filter as on OpenRouter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const MESSAGES = [{ role: 'user', content: 'Say hello to the gateway' }];
const NO_ENDPOINT = 'No endpoints of test/fine match your provider restrictions (only, ignore, order, quantizations, max_price)';

let h: GatewayHarness;
let user: Account;

beforeAll(async () => {
  h = await startGatewayHarness();
  user = await h.openAccount({ credits: 10_000_000_000 });
  // $0.037 and $0.038 per million prompt tokens: 37 and 38 nano-dollars per token; $0.0375 is between them.
  for (const [slug, prompt, request] of [['fine37', 37, 2_000], ['fine38', 38, 1_000]] as const) {
    (await h.fakeEndpoint({ protocol: 'openai', slug, model: 'test/fine', prices: { prompt, completion: 100, request } })).setDefault({ usage: { promptTokens: 10, completionTokens: 10 } });
  }
});
afterAll(async () => {
  await h.stop();
});

const chat = (maxPrice: Record<string, unknown>) => h.chat(user.key, { model: 'test/fine', messages: MESSAGES, max_tokens: 5, provider: { order: ['fine38'], max_price: maxPrice } });
const servedBy = async (maxPrice: Record<string, unknown>): Promise<string> => {
  const res = await chat(maxPrice);
  expect(res.status).toBe(200);
  return ((await res.json()) as { provider: string }).provider;
};

describe('provider.max_price', () => {
  it('takes a bound finer than a nano-dollar per token (0.0375 per million = 37.5 per token) and routes within it', async () => {
    expect(await servedBy({ prompt: 0.0375 })).toBe('fine37');
    expect(await servedBy({ prompt: '0.0375', completion: 0.1 })).toBe('fine37');
    expect(await servedBy({ prompt: 0.0389999 })).toBe('fine38');
  });

  it('admits a price equal to the bound, and a request price finer than a nano-dollar', async () => {
    expect(await servedBy({ prompt: 0.038 })).toBe('fine38');
    // 0.0000019999 USD per request is 1,999.9 nano-dollars: fine38's 1,000 is within it, fine37's 2,000 is not.
    expect(await servedBy({ request: 0.0000019999 })).toBe('fine38');
  });

  it("refuses with OpenRouter's no-endpoint 404 when no endpoint is within the bound", async () => {
    // The last: each endpoint is within one of the bounds, neither within both.
    for (const maxPrice of [{ prompt: 0.0369 }, { completion: 0.0999 }, { prompt: 1e-12 }, { request: 0.0000009999 }, { prompt: 0.0375, request: 0.0000010001 }]) {
      const res = await chat(maxPrice);
      expect(res.status, JSON.stringify(maxPrice)).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 404, message: NO_ENDPOINT } });
    }
  });

  it('refuses an unknown field (a misspelt cap is no cap), naming it; takes image and audio caps, which no endpoint exceeds', async () => {
    for (const [maxPrice, param] of [
      [{ prompts: 0.01 }, 'provider.max_price.prompts'],
      [{ prompt: 1, completions: 1 }, 'provider.max_price.completions'],
    ] as const) {
      const res = await chat(maxPrice);
      expect(res.status, JSON.stringify(maxPrice)).toBe(400);
      const { error } = (await res.json()) as { error: { message: string; metadata: { param: string } } };
      expect(error.metadata.param).toBe(param);
      expect(error.message).toBe(`${param} is not a field of provider.max_price (its fields: prompt, completion, request, image, audio)`);
    }
    // Images and audio are billed as the prompt tokens they count as: no endpoint has a price of its own for them.
    expect(await servedBy({ image: 0, audio: '0' })).toBe('fine38');
    expect(await servedBy({ image: 0.01, prompt: 0.0375 })).toBe('fine37');
  });

  it('still refuses what is not a price, with a 400 naming the field', async () => {
    for (const [maxPrice, param] of [
      [{ image: -1 }, 'provider.max_price.image'],
      [{ audio: 'free' }, 'provider.max_price.audio'],
      [{ prompt: -0.0375 }, 'provider.max_price.prompt'],
      [{ completion: 'NaN' }, 'provider.max_price.completion'],
      [{ request: 'ten cents' }, 'provider.max_price.request'],
      [{ prompt: true }, 'provider.max_price.prompt'],
    ] as const) {
      const res = await chat(maxPrice);
      expect(res.status, JSON.stringify(maxPrice)).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 400, metadata: { param } } });
    }
  });
});

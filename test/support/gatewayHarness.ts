/**
 * The whole app with gateway helpers: accounts with keys and credits, providers registered on fake upstreams
 * through GraphQL, and exact reads of the ledger after every settlement has landed.
 */
import { expect } from 'vitest';
import type { Balance } from '../../src/modules/ledger/ledger.js';
import { ADMIN_KEY, startHarness, type Harness } from './appHarness.js';
import { readModelsCaughtUp } from './eventually.js';
import { startFakeProvider, type FakeProtocol, type FakeProvider } from './fakeProviders.js';

export const MASTER_KEY = 'test-master-key-0123456789abcdef0123456789';
export const FAKE_API_KEY = 'fake-upstream-key';

/**
 * Test defaults: no demo token delay, a breaker that stays out of the way unless a test wants it, and timeouts that a
 * loaded host never reaches in normal operation: a timed-out attempt is retried or falls back to another endpoint, so
 * a short default (it was 500 ms to the first token, 1 s between chunks) turned any pause of the host into a test
 * that counts upstream requests or names the endpoint that answered failing now and then. A test about a timeout sets
 * its own short one (gatewayTimeouts, streamFaults, gatewayFallbackMatrix's hangs, ledgerOverHttp's chaos). Backoff
 * stays short: it is a wait before a retry, which a pause only lengthens, never a deadline that a pause can pass.
 */
export const GATEWAY_TEST_ENV: Record<string, string> = {
  SWITCHYARD_MASTER_KEY: MASTER_KEY,
  DEMO_TOKEN_DELAY_MS: '0',
  GATEWAY_FIRST_TOKEN_TIMEOUT_MS: '30000',
  GATEWAY_STREAM_IDLE_TIMEOUT_MS: '30000',
  GATEWAY_KEEPALIVE_MS: '10000',
  GATEWAY_BACKOFF_BASE_MS: '10',
  GATEWAY_BREAKER_FAILURES: '1000',
};

export interface Account {
  readonly accountId: string;
  readonly key: string;
  readonly keyId: string;
}

export interface Prices {
  prompt: number;
  completion: number;
  request?: number;
  reasoning?: number;
  cacheRead?: number;
  cacheWrite?: number;
}

export interface GatewayHarness extends Harness {
  readonly fakes: FakeProvider[];
  /** A GraphQL call (as the admin by default) that must answer without errors: its `data`. */
  gqlOk(query: string, variables?: Record<string, unknown>, key?: string): Promise<any>;
  openAccount(options?: { roles?: string[]; credits?: number; name?: string }): Promise<Account>;
  grant(accountId: string, amount: number): Promise<void>;
  /** Start a fake upstream and register it as a provider (owned by `owner`, admin by default) publishing `model`. */
  fakeEndpoint(options: { protocol: FakeProtocol; slug: string; model: string; prices: Prices; contextLength?: number; maxOutput?: number; quantization?: string; owner?: string; variants?: string[]; supportedParameters?: string[]; reuse?: FakeProvider }): Promise<FakeProvider>;
  chat(key: string, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response>;
  /** Wait for every settlement and generation record, then read the balance. */
  settledBalance(accountId: string): Promise<Balance>;
  /** Wait for every generation record, then read one as `GET /api/v1/generation` answers it (its `data`), with `key`. */
  generation(key: string, id: string): Promise<any>;
}

export const startGatewayHarness = async (env: Record<string, string> = {}, options: Parameters<typeof startHarness>[2] = {}): Promise<GatewayHarness> => {
  const h = await startHarness({ ...GATEWAY_TEST_ENV, ...env }, undefined, options);
  const fakes: FakeProvider[] = [];
  const core = h.running.core;

  const gqlOk = async (query: string, variables: Record<string, unknown> = {}, key: string = ADMIN_KEY) => {
    const { body } = await h.gql(query, variables, key);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };

  const harness: GatewayHarness = {
    ...h,
    fakes,
    gqlOk,
    async openAccount(options = {}) {
      const data = await gqlOk(
        `mutation ($name: String!, $roles: [Role!]) { openAccount(name: $name, roles: $roles) { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } ... on DomainError { message } } }`,
        { name: options.name ?? 'tester', roles: (options.roles ?? ['user']).map((r) => r.toUpperCase()) },
      );
      const payload = data.openAccount;
      const account = { accountId: payload.account.id as string, key: payload.initialKey.secret as string, keyId: payload.initialKey.key.id as string };
      if (options.credits) await harness.grant(account.accountId, options.credits);
      return account;
    },
    async grant(accountId, amount) {
      await core.ledger.grant({ accountId, amount, reason: 'test', actor: 'test', correlationId: 'test' });
    },
    async fakeEndpoint(options) {
      const fake = options.reuse ?? (await startFakeProvider(options.protocol, { apiKey: FAKE_API_KEY }));
      if (!options.reuse) fakes.push(fake);
      const owner = options.owner ?? ADMIN_KEY;
      const registered = await gqlOk(
        `mutation ($slug: String!, $protocol: ProviderProtocol!, $baseUrl: String!, $apiKey: String) {
          registerProvider(slug: $slug, name: $slug, protocol: $protocol, baseUrl: $baseUrl, apiKey: $apiKey) { ... on Provider { slug } ... on DomainError { code message } } }`,
        { slug: options.slug, protocol: options.protocol.toUpperCase(), baseUrl: fake.baseUrl, apiKey: FAKE_API_KEY },
        owner,
      );
      expect(registered.registerProvider).toEqual({ slug: options.slug });
      const published = await gqlOk(
        `mutation ($provider: String!, $model: String!, $prices: PricesInput!, $ctx: Int!, $max: Int!, $q: String, $variants: [VariantTag!], $params: [String!]) {
          publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: $prices, contextLength: $ctx, maxOutput: $max, quantization: $q, variants: $variants, supportedParameters: $params) {
            ... on Endpoint { id } ... on DomainError { code message } } }`,
        {
          provider: options.slug,
          model: options.model,
          prices: options.prices,
          ctx: options.contextLength ?? 16_000,
          max: options.maxOutput ?? 1_000,
          q: options.quantization ?? null,
          variants: (options.variants ?? []).map((v) => v.toUpperCase()),
          params: options.supportedParameters ?? null,
        },
        owner,
      );
      expect(published.publishEndpoint).toEqual({ id: `${options.model}@${options.slug}` });
      return fake;
    },
    chat: (key, body, headers = {}) =>
      fetch(`${h.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
        body: JSON.stringify(body),
      }),
    async settledBalance(accountId) {
      await core.gateway.idle();
      return core.ledger.balance(accountId);
    },
    async generation(key, id) {
      await core.gateway.idle();
      // idle() waits at most 5 s for the read models to apply the records (then resolves all the same); under the whole
      // suite on two vCPUs they have taken longer, and the record read below was then missing or stale.
      await readModelsCaughtUp(core);
      const res = await fetch(`${h.url}/api/v1/generation?id=${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      return ((await res.json()) as { data: unknown }).data;
    },
    async stop(options) {
      await Promise.all(fakes.map((f) => f.close()));
      await h.stop(options);
    },
  };
  return harness;
};

/** The gateway's prompt estimate for plain-text messages: ceil((characters + 16 per message) / 4). */
export const promptEstimate = (messages: { content: string }[]): number => Math.ceil(messages.reduce((n, m) => n + m.content.length + 16, 0) / 4);

/** The most prompt tokens the gateway reserves for (maxPromptTokens): a token per UTF-8 byte, 4 per message, 8 for the reply. */
export const promptBound = (messages: { content: string }[]): number => messages.reduce((n, m) => n + Buffer.byteLength(m.content) + 4, 8);

export const costOf = (prices: Prices, promptTokens: number, completionTokens: number): number => promptTokens * prices.prompt + completionTokens * prices.completion + (prices.request ?? 0);

/** Read an SSE response to the end: data payloads (parsed), comments, and whether `[DONE]` came. */
export const readSseResponse = async (res: Response): Promise<{ events: any[]; comments: string[]; done: boolean; text: string }> => {
  const text = await res.text();
  const events: any[] = [];
  const comments: string[] = [];
  let done = false;
  for (const block of text.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('data: ')) {
        const data = line.slice(6);
        if (data === '[DONE]') done = true;
        else events.push(JSON.parse(data));
      }
    }
  }
  return { events, comments, done, text };
};

export const contentOf = (events: any[]): string => events.map((e) => e.choices?.[0]?.delta?.content ?? '').join('');

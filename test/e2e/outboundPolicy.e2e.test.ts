/**
 * The outbound address policy through the started app (issue 10, item 3): a provider account cannot point Switchyard
 * at loopback, private, link-local or metadata addresses, by literal or by name, at registration or later at
 * connection time; an admin's providers may use any address; OUTBOUND_ALLOW admits what the operator lists.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const REGISTER = `mutation ($slug: String!, $baseUrl: String!) {
  registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: "sk-own") { ... on Provider { slug } ... on DomainError { code message } } }`;
const PUBLISH = `mutation ($provider: String!, $model: String!) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: 1, completion: 1 }, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`;

type ChatError = { error: { code: number; message: string; metadata: { retryable: boolean; attempts: number; provider_slug: string } } };

const chat = (h: GatewayHarness, key: string, model: string) => h.chat(key, { model, messages: [{ role: 'user', content: 'hello' }] });

describe('with no OUTBOUND_ALLOW', () => {
  let h: GatewayHarness;
  let fake: FakeProvider;
  let provider: Account;
  let user: Account;

  beforeAll(async () => {
    h = await startGatewayHarness({ OUTBOUND_ALLOW: '' });
    fake = await startFakeProvider('openai');
    provider = await h.openAccount({ roles: ['provider'] });
    user = await h.openAccount({ credits: 1_000_000_000 });
  });
  afterAll(async () => {
    await fake.close();
    await h.stop();
  });

  const port = () => new URL(fake.url).port;
  const refused: [string, () => string, RegExp][] = [
    ['loopback IPv4', () => `http://127.0.0.1:${port()}/v1`, /127\.0\.0\.1 is a loopback address/],
    ['loopback IPv6', () => `http://[::1]:${port()}/v1`, /::1 is a loopback address/],
    ['the metadata service', () => 'http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a cloud metadata address/],
    ['the IPv6 metadata service', () => 'http://[fd00:ec2::254]/', /is a cloud metadata address/],
    ['IPv4-mapped loopback', () => `http://[::ffff:127.0.0.1]:${port()}/v1`, /\(127\.0\.0\.1\) is a loopback address/],
    ['loopback in hex shorthand', () => `http://0x7f.1:${port()}/v1`, /127\.0\.0\.1 is a loopback address/],
    ['a name resolving to loopback', () => `http://localhost:${port()}/v1`, /localhost resolves to .*, which is a loopback address/],
    ['a private address', () => 'http://10.0.0.1/v1', /10\.0\.0\.1 is a private address/],
    ['CGNAT', () => 'http://100.64.0.1/v1', /carrier-grade NAT/],
    ['a name that does not resolve', () => 'http://no-such-host.invalid/v1', /no-such-host\.invalid does not resolve/],
  ];

  it.each(refused)('a provider account registering %s is refused with a VALIDATION error naming the reason', async (_what, baseUrl, reason) => {
    const { body } = await h.gql(REGISTER, { slug: 'sneaky', baseUrl: baseUrl() }, provider.key);
    expect(body.data.registerProvider.code).toBe('VALIDATION');
    expect(body.data.registerProvider.message).toMatch(/^baseUrl refused: /);
    expect(body.data.registerProvider.message).toMatch(reason);
    expect(h.running.core.gateway.catalog.provider('sneaky')).toBeUndefined();
    expect(fake.requests).toHaveLength(0);
  });

  it("an admin's provider may use any address", async () => {
    const { body } = await h.gql(REGISTER, { slug: 'admins-local', baseUrl: fake.baseUrl }, ADMIN_KEY);
    expect(body.data.registerProvider).toEqual({ slug: 'admins-local' });
    expect((await h.gql(PUBLISH, { provider: 'admins-local', model: 'local/model' })).body.data.publishEndpoint).toEqual({ id: 'local/model@admins-local' });
    expect((await chat(h, user.key, 'local/model')).status).toBe(200);
    expect(fake.requests).toHaveLength(1);
  });
});

describe('at connection time, after OUTBOUND_ALLOW changed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-outbound-'));
  let fake: FakeProvider;
  let user: Account;

  beforeAll(async () => {
    fake = await startFakeProvider('openai');
    // The operator allowed the local upstream by address and by name; a provider account registers both ways.
    const h = await startGatewayHarness({ OUTBOUND_ALLOW: '127.0.0.1,localhost', DATA_DIR: dir });
    const provider = await h.openAccount({ roles: ['provider'] });
    user = await h.openAccount({ credits: 1_000_000_000 });
    const port = new URL(fake.url).port;
    for (const [slug, baseUrl] of [
      ['by-address', `http://127.0.0.1:${port}/v1`],
      ['by-name', `http://localhost:${port}/v1`],
    ] as const) {
      expect((await h.gql(REGISTER, { slug, baseUrl }, provider.key)).body.data.registerProvider).toEqual({ slug });
      expect((await h.gql(PUBLISH, { provider: slug, model: `${slug}/model` }, provider.key)).body.data.publishEndpoint).toEqual({ id: `${slug}/model@${slug}` });
      expect((await chat(h, user.key, `${slug}/model`)).status).toBe(200);
    }
    expect(fake.requests).toHaveLength(2);
    await h.stop({ keepData: true });
  });
  afterAll(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a provider whose address or name is no longer allowed is refused when connecting, without retries, and the server stays up', async () => {
    const h = await startGatewayHarness({ OUTBOUND_ALLOW: '', DATA_DIR: dir });
    try {
      for (const slug of ['by-address', 'by-name']) {
        const res = await chat(h, user.key, `${slug}/model`);
        expect(res.status).toBe(502);
        const body = (await res.json()) as ChatError;
        expect(body.error.metadata).toMatchObject({ provider_slug: slug, retryable: false, attempts: 1 });
      }
      expect(fake.requests).toHaveLength(2);
      expect((await fetch(`${h.url}/health`)).status).toBe(200);
    } finally {
      await h.stop({ keepData: true });
    }
  });
});

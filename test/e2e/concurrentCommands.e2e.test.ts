/**
 * Concurrent changes to one aggregate, through GraphQL and REST of the started app. A QA run (s44 liveops) sent 10
 * `publishEndpoint` to one provider at once: 2 to 5 of them failed with a raw WRONG_EXPECTED_VERSION ("Append to
 * provider-lvp expected revision 152 but the stream is at 153") and were dropped; 10 `setApiKeyLimit` on one key lost
 * 2. Within one process, commands on one stream now run one after another; a conflict with another process is decided
 * again after a jittered wait, and one that still cannot be applied is a retryable CONFLICT (REST: 409 with
 * Retry-After and x-should-retry), never a text naming revisions. 30 publishes at once passed
 * ENDPOINT_MAX_PER_ACCOUNT (10) by two: an account's publishes are now decided one at a time too.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyStream } from '../../src/modules/apiKeys/apiKey.events.js';
import { providerStream } from '../../src/modules/catalog/provider.events.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { FAKE_API_KEY, startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import { otherProcessAppendsFile, otherProcessRenamesKeyFile, renamesByOtherProcess, slowAppendsFile } from '../support/contendedEventStore.js';
import { tableStream } from '../../src/modules/tables/table.events.js';

const CAP = 20;
let h: GatewayHarness;
let upstream: FakeProvider;

const PUBLISH = `mutation ($provider: String!, $model: String!, $prompt: Money!) {
  publishEndpoint(provider: $provider, model: $model, upstreamModel: "fake-model", prices: { prompt: $prompt, completion: 1 }, contextLength: 16000, maxOutput: 1000) {
    __typename
    ... on Endpoint { id status }
    ... on DomainError { code message details } } }`;
const publish = async (key: string, provider: string, model: string, prompt = 1) => (await h.gqlOk(PUBLISH, { provider, model, prompt }, key)).publishEndpoint;

const SET_LIMIT = `mutation ($id: ID!, $limit: Money) {
  setApiKeyLimit(id: $id, limit: $limit, limitReset: DAILY) { __typename ... on ApiKey { limit } ... on DomainError { code message details } } }`;

const registerProvider = async (key: string, slug: string) =>
  h.gqlOk(
    `mutation ($slug: String!, $baseUrl: String!, $apiKey: String!) { registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: $baseUrl, apiKey: $apiKey) { ... on Provider { slug } } }`,
    { slug, baseUrl: upstream.baseUrl, apiKey: FAKE_API_KEY },
    key,
  );
const createKey = async (owner: Account, name: string): Promise<string> =>
  (await h.gqlOk('mutation ($name: String!) { createApiKey(name: $name) { ... on CreatedApiKey { key { id } } } }', { name }, owner.key)).createApiKey.key.id;

const countBy = (values: readonly string[]) => values.reduce<Record<string, number>>((counts, v) => ({ ...counts, [v]: (counts[v] ?? 0) + 1 }), {});

beforeAll(async () => {
  h = await startGatewayHarness(
    { OUTBOUND_ALLOW: '127.0.0.1', ENDPOINT_MAX_PER_ACCOUNT: String(CAP) },
    { eventStoreWrapper: new URL('../support/contendedEventStore.ts', import.meta.url).href },
  );
  upstream = await startFakeProvider('openai', { apiKey: FAKE_API_KEY });
  h.fakes.push(upstream);
});
afterAll(async () => {
  await h.stop();
});

describe('concurrent commands on one aggregate all apply, as if one after another', () => {
  it('20 publishEndpoint on one provider at once: 20 endpoints, each published once', async () => {
    const owner = await h.openAccount({ roles: ['provider'], name: 'busy' });
    await registerProvider(owner.key, 'busy');
    const models = Array.from({ length: 20 }, (_, i) => `busy/m${i}`);

    const answers = await Promise.all(models.map((model) => publish(owner.key, 'busy', model)));
    expect(answers).toEqual(models.map((model) => ({ __typename: 'Endpoint', id: `${model}@busy`, status: 'active' })));

    const published = (await h.running.core.eventStore.readStream(providerStream('busy'))).filter((e) => e.type === 'EndpointPublished');
    expect(published.map((e) => (e.data as { model: string }).model).sort()).toEqual([...models].sort());
    for (const model of models) {
      const listed = (await h.gqlOk('query ($id: ID!) { model(id: $id) { endpoints { id } } }', { id: model })).model;
      expect(listed).toEqual({ endpoints: [{ id: `${model}@busy` }] });
    }
  });

  it('20 changePrice on one provider’s endpoints at once (its owner and an admin): each applied once, the last one wins', async () => {
    const owner = await h.openAccount({ roles: ['provider'], name: 'pricey' });
    await registerProvider(owner.key, 'pricey');
    for (const model of ['pricey/a', 'pricey/b']) expect(await publish(owner.key, 'pricey', model)).toMatchObject({ __typename: 'Endpoint' });
    const changes = Array.from({ length: 20 }, (_, i) => ({ model: i % 2 ? 'pricey/a' : 'pricey/b', prompt: 100 + i, key: i % 4 < 2 ? owner.key : ADMIN_KEY }));

    writeFileSync(slowAppendsFile(h.dataDir), `${providerStream('pricey')} 20`);
    const answers = await Promise.all(
      changes.map(async ({ model, prompt, key }) =>
        (
          await h.gqlOk(
            `mutation ($model: String!, $prompt: Money!) { changePrice(provider: "pricey", model: $model, prices: { prompt: $prompt, completion: 1 }) { __typename ... on DomainError { code message } } }`,
            { model, prompt },
            key,
          )
        ).changePrice,
      ),
    );
    expect(countBy(answers.map((a) => a.code ?? a.__typename))).toEqual({ Endpoint: 20 });
    const changed = (await h.running.core.eventStore.readStream(providerStream('pricey'))).filter((e) => e.type === 'EndpointPriceChanged');
    const prompts = changed.map((e) => Number((e.data as { prices: { prompt: number } }).prices.prompt));
    expect([...prompts].sort((a, b) => a - b)).toEqual(changes.map((c) => c.prompt));
    for (const model of ['pricey/a', 'pricey/b']) {
      const last = changed.filter((e) => (e.data as { model: string }).model === model).at(-1)!.data as { prices: { prompt: number } };
      const listed = (await h.gqlOk('query ($id: ID!) { model(id: $id) { endpoints { prices { prompt } } } }', { id: model })).model;
      expect(listed.endpoints.map((e: { prices: { prompt: unknown } }) => Number(e.prices.prompt))).toEqual([Number(last.prices.prompt)]);
    }
  });

  it('20 setApiKeyLimit on one key at once (its owner and an admin alternating): 20 changes, each once, the key ends at the last', async () => {
    const owner = await h.openAccount({ name: 'limits' });
    const keyId = await createKey(owner, 'limited');
    const limits = Array.from({ length: 20 }, (_, i) => 1_000_000 * (i + 1));

    // Its appends take 20 ms, as on a busy disk: the commands sent at once are all decided before the first is written.
    writeFileSync(slowAppendsFile(h.dataDir), `${apiKeyStream(keyId)} 20`);
    const answers = await Promise.all(limits.map(async (limit, i) => (await h.gqlOk(SET_LIMIT, { id: keyId, limit }, i % 2 ? ADMIN_KEY : owner.key)).setApiKeyLimit)).finally(() => rmSync(slowAppendsFile(h.dataDir)));
    expect(countBy(answers.map((a) => a.code ?? a.__typename))).toEqual({ ApiKey: 20 });

    const changed = (await h.running.core.eventStore.readStream(apiKeyStream(keyId))).filter((e) => e.type === 'ApiKeyLimitChanged');
    const applied = changed.map((e) => (e.data as { limit: number }).limit);
    expect([...applied].sort((a, b) => a - b)).toEqual(limits);
    const { apiKey } = await h.gqlOk('query ($id: ID!) { apiKey(id: $id) { limit } }', { id: keyId }, owner.key);
    expect(Number(apiKey.limit)).toBe(applied.at(-1));
  });
});

describe('ENDPOINT_MAX_PER_ACCOUNT holds under concurrent publishes within a process', () => {
  it(`30 publishes at once over two providers of one account, cap ${CAP}: exactly ${CAP} held, the rest CONFLICT too_many_endpoints`, async () => {
    const owner = await h.openAccount({ roles: ['provider'], name: 'capped' });
    await registerProvider(owner.key, 'capped-one');
    await registerProvider(owner.key, 'capped-two');
    // A pending proposal counts too (a model outside the account's namespace).
    expect(await publish(owner.key, 'capped-one', 'openai/gpt-capped')).toMatchObject({ __typename: 'EndpointProposal' });

    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? publish(owner.key, 'capped-one', `capped-one/m${i}`) : publish(owner.key, 'capped-two', `capped-two/m${i}`))));
    expect(countBy(answers.map((a) => a.code ?? a.__typename))).toEqual({ Endpoint: CAP - 1, CONFLICT: 30 - (CAP - 1) });
    for (const refused of answers.filter((a) => a.code)) expect(refused.details).toEqual({ reason: 'too_many_endpoints', limit: CAP });
    expect(h.running.core.gateway.catalog.activeEndpointsOwnedBy(owner.accountId)).toBe(CAP - 1);
  });
});

describe('a conflict with another process', () => {
  it('is decided again on the other process’s write: the change applies and the other’s stays', async () => {
    const owner = await h.openAccount({ name: 'shared' });
    const keyId = await createKey(owner, 'shared key');
    writeFileSync(otherProcessRenamesKeyFile(h.dataDir), `${keyId} 4`);
    try {
      expect((await h.gqlOk(SET_LIMIT, { id: keyId, limit: 7_000_000 }, owner.key)).setApiKeyLimit).toEqual({ __typename: 'ApiKey', limit: 7_000_000 });
    } finally {
      rmSync(otherProcessRenamesKeyFile(h.dataDir));
    }
    expect(renamesByOtherProcess(h.dataDir, keyId)).toBe(4);
    const events = await h.running.core.eventStore.readStream(apiKeyStream(keyId));
    expect(events.map((e) => e.type)).toEqual(['ApiKeyCreated', 'ApiKeyRenamed', 'ApiKeyRenamed', 'ApiKeyRenamed', 'ApiKeyRenamed', 'ApiKeyLimitChanged']);
  });

  it('that never lets it through is a retryable CONFLICT naming no stream or revision (REST: 409, Retry-After, x-should-retry), and nothing is applied', async () => {
    const owner = await h.openAccount({ name: 'contended' });
    const keyId = await createKey(owner, 'contended key');
    const manager = (await h.gqlOk('mutation { createApiKey(name: "mgmt", kind: MANAGEMENT) { ... on CreatedApiKey { secret } } }', {}, owner.key)).createApiKey.secret as string;
    writeFileSync(otherProcessRenamesKeyFile(h.dataDir), `${keyId} always`);
    try {
      const refused = (await h.gqlOk(SET_LIMIT, { id: keyId, limit: 5_000_000 }, owner.key)).setApiKeyLimit;
      expect(refused).toEqual({
        __typename: 'DomainError',
        code: 'CONFLICT',
        message: 'Another request changed this at the same time, again on every try: nothing was changed; send it again',
        details: { reason: 'concurrent_change', retryable: true },
      });

      const res = await fetch(`${h.url}/api/v1/keys/${keyId}`, { method: 'PATCH', headers: { authorization: `Bearer ${manager}`, 'content-type': 'application/json' }, body: JSON.stringify({ limit: 5 }) });
      expect(res.status).toBe(409);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.headers.get('x-should-retry')).toBe('true');
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toBe('Another request changed this at the same time, again on every try: nothing was changed; send it again');
    } finally {
      rmSync(otherProcessRenamesKeyFile(h.dataDir));
    }
    const events = await h.running.core.eventStore.readStream(apiKeyStream(keyId));
    expect(events.filter((e) => e.type === 'ApiKeyLimitChanged')).toEqual([]);
  });

  it('on a table’s stream (its own writer, not handleCommand): decided again, then the same retryable CONFLICT, never a text naming revisions', async () => {
    const owner = await h.openAccount({ roles: ['designer'], name: 'tabled' });
    const created = (await h.gqlOk('mutation { createTable(name: "shared") { __typename } }', {}, owner.key)).createTable;
    expect(created).toEqual({ __typename: 'Table' });
    const stream = tableStream(owner.accountId, 'shared');
    const tableId = (await h.running.core.eventStore.readStream(stream))[0]!.data as { tableId: string };
    const elsewhere = (n: number) => ({
      type: 'EntryAdded',
      data: { tableId: tableId.tableId, accountId: owner.accountId, entryId: `elsewhere-${n}`, entry: { from: 'another process' }, at: new Date().toISOString() },
    });
    const INSERT = 'mutation ($e: JSON!) { insertEntry(table: "shared", entry: $e) { __typename ... on DomainError { code message details } } }';

    writeFileSync(otherProcessAppendsFile(h.dataDir), JSON.stringify({ stream, count: 4, event: elsewhere(1) }));
    try {
      expect((await h.gqlOk(INSERT, { e: { n: 1 } }, owner.key)).insertEntry).toEqual({ __typename: 'Entry' });
    } finally {
      rmSync(otherProcessAppendsFile(h.dataDir));
    }
    writeFileSync(otherProcessAppendsFile(h.dataDir), JSON.stringify({ stream, count: 'always', event: elsewhere(2) }));
    try {
      expect((await h.gqlOk(INSERT, { e: { n: 2 } }, owner.key)).insertEntry).toEqual({
        __typename: 'DomainError',
        code: 'CONFLICT',
        message: 'Another request changed this at the same time, again on every try: nothing was changed; send it again',
        details: { reason: 'concurrent_change', retryable: true },
      });
    } finally {
      rmSync(otherProcessAppendsFile(h.dataDir));
    }
    const added = (await h.running.core.eventStore.readStream(stream)).filter((e) => e.type === 'EntryAdded').map((e) => (e.data as { entry: unknown }).entry);
    expect(added.filter((entry) => JSON.stringify(entry) !== '{"from":"another process"}')).toEqual([{ n: 1 }]);
  });
});

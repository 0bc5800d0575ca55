/**
 * API keys of the reliability catalogue (shared/reference/reliability.md §6, T-KEY-1..3), through the started app:
 * what DATA_DIR holds of an issued secret, a revocation seen by another process's key directory on the same event
 * log, and a key whose checksum fails refused before its hash is looked up.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { createLogger } from '../../src/logger.js';
import { apiKeyStream } from '../../src/modules/apiKeys/apiKey.events.js';
import { hashSecret, hasValidChecksum } from '../../src/modules/apiKeys/keyFormat.js';
import { createAuthDirectory } from '../../src/modules/auth/authDirectory.js';
import { eventually } from '../support/eventually.js';
import { startGatewayHarness, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness();
});
afterAll(async () => {
  await h.stop();
});

const CREATE = `mutation ($name: String!, $kind: ApiKeyKind) { createApiKey(name: $name, kind: $kind) { ... on CreatedApiKey { secret key { id } } ... on DomainError { code message } } }`;
const ME = '{ me { id } }';

/** Every file under `dir`, as bytes (the event log and read models with their WAL, the content store, master.key). */
const filesUnder = (dir: string): { path: string; bytes: Buffer }[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [{ path, bytes: readFileSync(path) }];
  });

describe('T-KEY-1: DATA_DIR holds only SHA-256 hashes of issued secrets', () => {
  it('no file (events, read models, their WAL) contains any issued secret or its random part; each one’s hash is there', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const secrets = [user.key];
    const inference = (await h.gql(CREATE, { name: 'ci' }, user.key)).body.data.createApiKey;
    const management = (await h.gql(CREATE, { name: 'provisioning', kind: 'MANAGEMENT' }, user.key)).body.data.createApiKey;
    secrets.push(inference.secret, management.secret);
    // A key made through OpenRouter's provisioning API, then renamed, disabled and enabled: more events about it.
    const provisioned = await fetch(`${h.url}/api/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${management.secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'customer' }) });
    expect(provisioned.status).toBe(201);
    const { key: provisionedSecret, data } = (await provisioned.json()) as { key: string; data: { hash: string } };
    secrets.push(provisionedSecret);
    for (const disabled of [true, false]) {
      const patched = await fetch(`${h.url}/api/v1/keys/${data.hash}`, { method: 'PATCH', headers: { authorization: `Bearer ${management.secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'customer 2', disabled }) });
      expect(patched.status).toBe(200);
    }
    // Every key is used: on chat (a generation record, a ledger entry), GraphQL and the keys API.
    for (const secret of [user.key, inference.secret, provisionedSecret]) {
      const res = await h.chat(secret, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hello' }] });
      expect(res.status).toBe(200);
      expect((await h.gql(ME, {}, secret)).status).toBe(200);
    }
    await h.running.core.gateway.idle();
    expect(new Set(secrets).size).toBe(4);
    expect(secrets.every(hasValidChecksum)).toBe(true);

    const files = filesUnder(h.dataDir);
    expect(files.map((f) => f.path).join('\n')).toMatch(/events\.db/);
    for (const secret of secrets) {
      // The random part alone too (the prefix is public), and the hash: found, so these bytes are the ones that hold keys.
      const body = secret.slice('sk-sy-v1-'.length);
      for (const { path, bytes } of files) {
        expect(bytes.includes(secret), `${path} holds a secret`).toBe(false);
        expect(bytes.includes(body), `${path} holds a secret's random part`).toBe(false);
      }
      expect(files.some(({ bytes }) => bytes.includes(hashSecret(secret))), `the hash of ${secret.slice(0, 12)}…`).toBe(true);
    }
  });
});

describe('T-KEY-2: a revoked key is refused by every process', () => {
  it("another process's key directory on the same event log refuses a key disabled or revoked on this one", async () => {
    const user = await h.openAccount();
    const { secret, key } = (await h.gql(CREATE, { name: 'elsewhere' }, user.key)).body.data.createApiKey;
    // A second process's view of the keys: its own connection to the event log and its own directory following it.
    const eventStore = openSqliteEventStore({ dir: h.dataDir, synchronous: 'normal' });
    const other = createAuthDirectory({ eventStore, logger: createLogger('silent') });
    await other.start();
    try {
      await eventually('the other process to know the key', () => {
        try {
          return other.authenticate(secret).accountId === user.accountId;
        } catch {
          return false;
        }
      });
      const refusal = () => {
        try {
          other.authenticate(secret);
          return null;
        } catch (error) {
          return (error as Error).message;
        }
      };
      const change = async (mutation: string) => (await h.gql(`mutation ($id: ID!) { ${mutation}(id: $id) { __typename } }`, { id: key.id }, user.key)).body.data[mutation];
      expect(await change('disableApiKey')).toEqual({ __typename: 'ApiKey' });
      expect((await h.gql(ME, {}, secret)).status).toBe(401);
      expect(await eventually('the other process to refuse the disabled key', refusal)).toBe('API key is disabled');
      expect(await change('enableApiKey')).toEqual({ __typename: 'ApiKey' });
      await eventually('the other process to accept it again', () => refusal() === null);
      expect(await change('revokeApiKey')).toEqual({ __typename: 'ApiKey' });
      expect((await h.gql(ME, {}, secret)).status).toBe(401);
      expect(await eventually('the other process to refuse the revoked key', refusal)).toBe('API key has been revoked');
    } finally {
      await other.stop();
      await eventStore.close();
    }
  });
});

describe('T-KEY-3: a key whose checksum fails is refused before any lookup', () => {
  it('even a key stored under its very hash (a forged record) is refused by its checksum, on REST and GraphQL, with the same answer as an unknown key', async () => {
    const user = await h.openAccount({ credits: 1_000_000_000 });
    const last = user.key.at(-1) === 'a' ? 'b' : 'a';
    const forged = user.key.slice(0, -1) + last;
    expect(hasValidChecksum(forged)).toBe(false);
    // Put the forged secret's hash in the log as a key of the account: looked up first, it would be found.
    const at = new Date().toISOString();
    const { position } = await h.running.core.eventStore.append(apiKeyStream('key_forged0000000000'), [
      { type: 'ApiKeyCreated', data: { keyId: 'key_forged0000000000', accountId: user.accountId, name: 'forged', hash: hashSecret(forged), hint: 'sk-sy-v1-…', limit: null, limitReset: 'never', expiresAt: null, at } },
    ]);
    await h.running.core.directory.waitFor(position);
    const unknown = user.key.slice(0, -7) + 'x'.repeat(7);
    for (const secret of [forged, unknown]) {
      const graphql = await h.gql(ME, {}, secret);
      expect(graphql.status).toBe(401);
      expect(graphql.body.errors[0]).toMatchObject({ message: 'Invalid API key', extensions: { code: 'UNAUTHENTICATED' } });
      const chat = await h.chat(secret, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hello' }] });
      expect(chat.status).toBe(401);
      expect(await chat.json()).toMatchObject({ error: { code: 401, message: 'Invalid API key' } });
    }
    // The key itself still works: the refusal was of the forged secret, not of the account.
    expect((await h.gql(ME, {}, user.key)).status).toBe(200);
  });
});

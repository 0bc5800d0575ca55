import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { failSubscriptionsFlag } from '../support/flakyEventStore.js';
import { DEADLINE_MS } from '../support/eventually.js';

/**
 * The app started over an event store whose subscriptions break mid-stream while a flag file exists, on the request
 * thread (the auth directory, the routing catalog) and on the storage thread (the projection runner) alike.
 */
let h: Harness;
let dir: string;
const logs: Record<string, unknown>[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-flaky-app-'));
  const logger = createLogger('warn', new Writable({ write: (chunk, _enc, done) => (logs.push(JSON.parse(String(chunk))), done()) }));
  h = await startHarness({}, dir, { logger, eventStoreWrapper: new URL('../support/flakyEventStore.ts', import.meta.url).href });
});
afterAll(async () => {
  await h.stop();
  rmSync(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the JSON body of /health
const health = async (): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${h.url}/health`);
  return { status: res.status, body: await res.json() };
};
const until = async <T>(probe: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> => {
  for (const deadline = Date.now() + DEADLINE_MS; Date.now() < deadline; ) {
    const value = await probe();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const OPEN = `mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`;
const REGISTER = `mutation { registerProvider(slug: "flaky", name: "Flaky", protocol: OPENAI, baseUrl: "http://127.0.0.1:9/v1") { ... on Provider { slug } } }`;

describe('followers and the projection runner over a failing subscription', () => {
  it('/health lists each follower and the runner, all live with no lag', async () => {
    const { status, body } = await health();
    expect(status).toBe(200);
    const live = { state: 'live', failures: 0, lastError: null, lag: 0 };
    expect(body).toMatchObject({ status: 'ok', projections: live, followers: { authDirectory: live, catalog: live } });
    // The one process of embedded mode holds the projection lease: it writes the read models.
    expect(body.projections.lease).toMatchObject({ name: 'projections', held: true, epoch: expect.any(Number) });
    // And the workflows lease: this process drives the workflow runs and the triggers.
    expect(body.workflows).toMatchObject({ lease: 'workflows', held: true, epoch: expect.any(Number) });
    expect(body.followers).toMatchObject({ presets: live });
  });

  it('they log, retry and catch up with nothing lost; /health is degraded with the error meanwhile, then ok', async () => {
    writeFileSync(failSubscriptionsFlag(dir), '');
    // Mutations wait for the read side, which is failing: do not wait for them yet.
    const opened = h.gql(OPEN, { name: 'Flaky' });
    const registered = h.gql(REGISTER);
    // Awaited below; a failure before then must not surface as an unhandled rejection.
    for (const pending of [opened, registered]) pending.catch(() => undefined);

    const failing = await until(health, ({ body }) => ['authDirectory', 'catalog'].every((f) => body.followers[f].state === 'retrying') && body.projections.state === 'retrying', 'all three to fail');
    expect(failing.status).toBe(503);
    expect(failing.body.status).toBe('degraded');
    for (const status of [failing.body.projections, failing.body.followers.authDirectory, failing.body.followers.catalog]) {
      expect(status.lastError.message).toBe('injected: the subscription broke mid-stream');
      expect(status.failures).toBeGreaterThan(0);
      expect(status.lag).toBeGreaterThan(0);
    }
    const messages = logs.map((l) => l.msg);
    expect(messages).toContain('auth directory: following the event log failed; resubscribing from its last position');
    expect(messages).toContain('routing catalog: following the event log failed; resubscribing from its last position');
    expect(messages).toContain('projection runner: following the event log failed; resubscribing from its checkpoint');

    unlinkSync(failSubscriptionsFlag(dir));
    // Live again first, then applied up to the head (the read models are eventually consistent).
    const recovered = await until(health, ({ status, body }) => status === 200 && body.projections.lag === 0 && body.followers.authDirectory.lag === 0, '/health to recover');
    expect(recovered.body).toMatchObject({ status: 'ok', projections: { state: 'live', lag: 0 }, followers: { authDirectory: { state: 'live', lag: 0 }, catalog: { state: 'live' } } });
    // The last error stays visible after the recovery.
    expect(recovered.body.projections.lastError.message).toBe('injected: the subscription broke mid-stream');

    // Nothing was lost: the new key authenticates (auth directory), the account is in the read model (runner), and
    // the provider is routable (its availability is read from the routing catalog).
    const { body: openBody } = await opened;
    const { id, secret } = { id: openBody.data.openAccount.account.id as string, secret: openBody.data.openAccount.initialKey.secret as string };
    expect((await h.gql('{ me { id name } }', {}, secret)).body.data.me).toEqual({ id, name: 'Flaky' });
    expect((await h.gql('query($id: ID!) { account(id: $id) { id name } }', { id })).body.data.account).toEqual({ id, name: 'Flaky' });
    expect((await registered).body.data.registerProvider).toEqual({ slug: 'flaky' });
    const { body: providers } = await h.gql('{ providers { slug available } }');
    expect(providers.data.providers.filter((p: { slug: string }) => p.slug === 'flaky')).toEqual([{ slug: 'flaky', available: true }]);
  });
});

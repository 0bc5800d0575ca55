/**
 * An Idempotency-Key whose call died with its process (kill -9) before it was charged: nothing runs any more, nothing
 * was charged, no record will ever exist. The key is given back as for any call that charged nothing, so the same
 * request sent again is served (and charged) once, instead of a 409 "still running" naming a generation that is 404.
 */
import { describe, expect, it } from 'vitest';
import { ledgerStream } from '../../src/modules/ledger/ledger.events.js';
import { startHarness } from '../support/appHarness.js';
import { spawnedSwitchyards } from '../support/spawnedServer.js';

const USD = 1_000_000_000;
const switchyards = spawnedSwitchyards();
const BODY = { model: 'switchyard/demo-paid', messages: [{ role: 'user', content: 'hello' }], max_tokens: 100, stream: true };

describe('an Idempotency-Key whose call died uncharged with its process', () => {
  it('is given back at the next start: the same request is served once, then replayed', { timeout: 60_000 }, async () => {
    const dir = switchyards.dataDir('switchyard-idem-crash-');
    // A slow demo answer keeps the call in flight when the process is killed.
    const server = await switchyards.start(dir, { env: { DEMO_TOKEN_DELAY_MS: '5000' } });
    const opened = (await server.graphql(`mutation { openAccount(name: "Killed") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).body;
    const accountId = opened.data.openAccount.account.id as string;
    const key = opened.data.openAccount.initialKey.secret as string;
    await server.graphql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: ${5 * USD}, reason: "x") { __typename } }`, { id: accountId });
    const chat = (url: string) =>
      fetch(`${url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': 'c3-0' },
        body: JSON.stringify(BODY),
      });
    const cut = await chat(server.url);
    expect(cut.status).toBe(200);
    const died = cut.headers.get('x-generation-id')!;
    // The first streamed bytes go out only once the key is claimed and the reservation durable.
    const reader = cut.body!.getReader();
    await reader.read();
    await server.kill();
    await reader.cancel().catch(() => undefined);

    const h = await startHarness({ DEMO_TOKEN_DELAY_MS: '0' }, dir);
    try {
      const { eventStore } = h.running.core;
      expect((await eventStore.readStream(ledgerStream(accountId))).at(-1)).toMatchObject({ type: 'ReservationExpired', data: { generationId: died } });
      const again = await chat(h.url);
      const text = await again.text();
      expect(again.status, text).toBe(200);
      const served = again.headers.get('x-generation-id')!;
      expect(served).not.toBe(died);
      expect(text).toContain('[DONE]');
      // Now it holds the key for a call that answered: the same request gets that answer again, not a second call.
      const replayed = await chat(h.url);
      expect(replayed.headers.get('idempotent-replayed')).toBe('true');
      expect(replayed.headers.get('x-generation-id')).toBe(served);
      expect(await replayed.text()).toBe(text);
      await h.running.core.runner.waitFor(await eventStore.headPosition());
      const generations = await h.gql('{ generations(first: 10) { edges { node { id } } } }', {}, key);
      expect(generations.body.data.generations.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([served]);
    } finally {
      await h.stop({ keepData: true });
    }
  });
});

/**
 * Read your writes on the lists fed by the read models: as soon as a call has answered, the caller's GraphQL `usage`
 * and `generations` include it, as `balance` (the ledger's own state) already does, though the settlement and the
 * record are appended just after the answer and the read models apply them in batches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const USD = 1_000_000_000;
let h: GatewayHarness;
let user: Account;

beforeAll(async () => {
  h = await startGatewayHarness();
  await h.fakeEndpoint({ protocol: 'openai', slug: 'ryw', model: 'test/ryw', prices: { prompt: 1_000, completion: 3_000, request: 7 } });
  user = await h.openAccount({ credits: 10 * USD });
});
afterAll(async () => {
  await h.stop();
});

describe("a caller reads its own calls' usage and generations right after the answer", () => {
  it('each call is in usage(groupBy: MODEL) and generations the moment it has answered, and their cost is the settled balance', async () => {
    for (let i = 1; i <= 6; i++) {
      const res = await h.chat(user.key, { model: 'test/ryw', messages: [{ role: 'user', content: `call ${i}` }], stream: i % 2 === 0 });
      expect(res.status).toBe(200);
      await res.text();
      const [usage, generations, balance] = await Promise.all([
        h.gqlOk('{ usage(groupBy: MODEL) { group requests cost } }', {}, user.key),
        h.gqlOk('{ generations(first: 50) { edges { node { id } } } }', {}, user.key),
        h.gqlOk('{ balance { settled } }', {}, user.key),
      ]);
      expect(usage.usage).toEqual([{ group: 'test/ryw', requests: i, cost: balance.balance.settled }]);
      expect(generations.generations.edges).toHaveLength(i);
      expect(generations.generations.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(res.headers.get('x-generation-id'));
    }
  });
});

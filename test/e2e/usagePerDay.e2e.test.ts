import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/** The console's Activity chart reads usage split per day and per model, key, provider or workflow in one query. */
const USD = 1_000_000_000;
const USAGE = `query($g: UsageGroupBy!, $perDay: Boolean, $from: String, $to: String) {
  usage(groupBy: $g, perDay: $perDay, from: $from, to: $to) { day group requests cost completionTokens }
}`;

describe('usage per day and group', () => {
  let h: Harness;
  let key: string;
  const today = new Date().toISOString().slice(0, 10);

  beforeAll(async () => {
    h = await startHarness();
    const opened = (await h.gql('mutation { openAccount(name: "Grace") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }')).body.data.openAccount;
    key = opened.initialKey.secret;
    await h.gql('mutation($id: ID!, $a: Money!) { grantCredits(accountId: $id, amount: $a, reason: "test") { __typename } }', { id: opened.account.id, a: USD });
    for (const model of ['switchyard/demo-paid', 'switchyard/demo-paid', 'switchyard/demo']) {
      expect((await h.gql('mutation($m: String!) { sendPrompt(input: { model: $m, prompt: "hi", maxTokens: 20 }) { __typename } }', { m: model }, key)).body.data.sendPrompt.__typename).toBe('SendPromptResult');
    }
  });
  afterAll(() => h.stop());

  it('answers a row per day and model, in day order, with the day set; without perDay the day is null', async () => {
    await expect
      .poll(async () => (await h.gql(USAGE, { g: 'MODEL', perDay: true }, key)).body.data.usage, { timeout: 10_000 })
      .toEqual([
        { day: today, group: 'switchyard/demo', requests: 1, cost: 0, completionTokens: expect.any(Number) },
        { day: today, group: 'switchyard/demo-paid', requests: 2, cost: expect.any(Number), completionTokens: expect.any(Number) },
      ]);
    const perModel = (await h.gql(USAGE, { g: 'MODEL' }, key)).body.data.usage;
    expect(perModel.map((r: { day: string | null; group: string }) => [r.day, r.group])).toEqual([
      [null, 'switchyard/demo'],
      [null, 'switchyard/demo-paid'],
    ]);
    const perKey = (await h.gql(USAGE, { g: 'KEY', perDay: true, from: today, to: today }, key)).body.data.usage;
    expect(perKey).toHaveLength(1);
    expect(perKey[0]).toMatchObject({ day: today, requests: 3 });
    expect((await h.gql(USAGE, { g: 'PROVIDER', perDay: true, from: '2000-01-01', to: '2000-01-31' }, key)).body.data.usage).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * What the console's Activity page reads: usage split per day and per model, key, provider or workflow in one query,
 * and generations newest first with filters.
 */
const USD = 1_000_000_000;
const USAGE = `query($g: UsageGroupBy!, $perDay: Boolean, $from: String, $to: String) {
  usage(groupBy: $g, perDay: $perDay, from: $from, to: $to) { day group requests cost completionTokens }
}`;

describe('usage per day and group, generations newest first and filtered', () => {
  let h: Harness;
  let key: string;
  const sent: string[] = [];
  const today = new Date().toISOString().slice(0, 10);

  beforeAll(async () => {
    h = await startHarness();
    const opened = (await h.gql('mutation { openAccount(name: "Grace") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }')).body.data.openAccount;
    key = opened.initialKey.secret;
    await h.gql('mutation($id: ID!, $a: Money!) { grantCredits(accountId: $id, amount: $a, reason: "test") { __typename } }', { id: opened.account.id, a: USD });
    for (const model of ['switchyard/demo-paid', 'switchyard/demo-paid', 'switchyard/demo']) {
      const result = (await h.gql('mutation($m: String!) { sendPrompt(input: { model: $m, prompt: "hi", maxTokens: 20 }) { ... on SendPromptResult { generationId } } }', { m: model }, key)).body.data.sendPrompt;
      sent.push(result.generationId);
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

  it('lists generations newest first, paging towards older ones, and keeps only those matching the filter', async () => {
    const GENERATIONS = `query($first: Int, $after: String, $last: Int, $before: String, $newestFirst: Boolean, $filter: GenerationFilter) {
      generations(first: $first, after: $after, last: $last, before: $before, newestFirst: $newestFirst, filter: $filter) { edges { cursor node { id model status } } pageInfo { hasNextPage hasPreviousPage } }
    }`;
    const ids = async (variables: Record<string, unknown>) => {
      const { body } = await h.gql(GENERATIONS, variables, key);
      expect(body.errors).toBeUndefined();
      return body.data.generations as { edges: { cursor: string; node: { id: string } }[]; pageInfo: { hasNextPage: boolean } };
    };
    const [paid1, paid2, free] = sent;
    await expect.poll(async () => (await ids({ first: 10 })).edges.map((e) => e.node.id), { timeout: 10_000 }).toEqual([paid1, paid2, free]);
    const page1 = await ids({ first: 2, newestFirst: true });
    expect(page1.edges.map((e) => e.node.id)).toEqual([free, paid2]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await ids({ first: 2, after: page1.edges[1]?.cursor, newestFirst: true });
    expect(page2.edges.map((e) => e.node.id)).toEqual([paid1]);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    // A `last` page of a newest-first list is its oldest end, still newest first.
    expect((await ids({ last: 2, newestFirst: true })).edges.map((e) => e.node.id)).toEqual([paid2, paid1]);

    expect((await ids({ first: 10, newestFirst: true, filter: { model: 'switchyard/demo-paid' } })).edges.map((e) => e.node.id)).toEqual([paid2, paid1]);
    expect((await ids({ first: 10, filter: { provider: 'switchyard', status: 'COMPLETED' } })).edges).toHaveLength(3);
    expect((await ids({ first: 10, filter: { status: 'FAILED' } })).edges).toEqual([]);
    expect((await ids({ first: 10, filter: { keyId: 'key_other' } })).edges).toEqual([]);
    expect((await ids({ first: 10, filter: { from: '2000-01-01T00:00:00Z', to: '2000-01-02T00:00:00Z' } })).edges).toEqual([]);
    expect((await ids({ first: 10, filter: { from: `${today}T00:00:00Z` } })).edges).toHaveLength(3);
    const backwards = await h.gql(GENERATIONS, { first: 1, filter: { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' } }, key);
    expect(backwards.body.errors[0]).toMatchObject({ message: 'filter.from must not be after filter.to', extensions: { code: 'VALIDATION' } });
  });
});

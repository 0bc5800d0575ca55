import { getNamedType, getNullableType, isObjectType, type GraphQLField } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * Broken object-level authorization (BOLA): user A calls every query and mutation that takes an id with user B's
 * ids and must get an authorization error each time, and B's data must not change. The list of operations is
 * read from the schema, so a new field that takes an id fails this test until it is covered here.
 */
let h: Harness;
let a: { id: string; key: string; keyId: string };
let b: { id: string; key: string; keyId: string };
let bGeneration: string;

const open = async (name: string) => {
  const { body } = await h.gql(
    `mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } } }`,
    { name },
  );
  const p = body.data.openAccount;
  return { id: p.account.id, key: p.initialKey.secret, keyId: p.initialKey.key.id };
};

beforeAll(async () => {
  h = await startHarness();
  a = await open('Alice');
  b = await open('Bob');
  const { body } = await h.gql('mutation { sendPrompt(input: { model: "switchyard/demo", prompt: "Bob here" }) { ... on SendPromptResult { generationId } } }', {}, b.key);
  bGeneration = body.data.sendPrompt.generationId;
  await h.running.core.gateway.idle();
});
afterAll(async () => {
  await h.stop();
});

/** An operation per root field taking an id, called with B's ids. */
const attacks = (): Record<string, { query: string; variables: () => Record<string, unknown> }> => ({
  'Query.account': { query: 'query($id: ID!) { account(id: $id) { id name } }', variables: () => ({ id: b.id }) },
  'Query.apiKey': { query: 'query($id: ID!) { apiKey(id: $id) { id name } }', variables: () => ({ id: b.keyId }) },
  'Query.node(account)': { query: 'query($id: ID!) { node(id: $id) { id ... on Account { name } } }', variables: () => ({ id: b.id }) },
  'Query.node(apiKey)': { query: 'query($id: ID!) { node(id: $id) { id ... on ApiKey { name } } }', variables: () => ({ id: b.keyId }) },
  'Query.nodes': { query: 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', variables: () => ({ ids: [b.id, b.keyId] }) },
  'Query.apiKeys': { query: 'query($id: ID!) { apiKeys(accountId: $id) { edges { node { id } } } }', variables: () => ({ id: b.id }) },
  'Mutation.createApiKey': {
    query: 'mutation($id: ID!) { createApiKey(accountId: $id, name: "x") { __typename ... on CreatedApiKey { secret } } }',
    variables: () => ({ id: b.id }),
  },
  'Mutation.renameApiKey': { query: 'mutation($id: ID!) { renameApiKey(id: $id, name: "pwned") { __typename } }', variables: () => ({ id: b.keyId }) },
  'Mutation.setApiKeyLimit': {
    query: 'mutation($id: ID!) { setApiKeyLimit(id: $id, limit: 1, limitReset: DAILY) { __typename } }',
    variables: () => ({ id: b.keyId }),
  },
  'Mutation.disableApiKey': { query: 'mutation($id: ID!) { disableApiKey(id: $id) { __typename } }', variables: () => ({ id: b.keyId }) },
  'Mutation.enableApiKey': { query: 'mutation($id: ID!) { enableApiKey(id: $id) { __typename } }', variables: () => ({ id: b.keyId }) },
  'Mutation.revokeApiKey': { query: 'mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', variables: () => ({ id: b.keyId }) },
  'Mutation.grantRole': { query: 'mutation($id: ID!) { grantRole(accountId: $id, role: ADMIN) { __typename } }', variables: () => ({ id: b.id }) },
  'Mutation.revokeRole': { query: 'mutation($id: ID!) { revokeRole(accountId: $id, role: USER) { __typename } }', variables: () => ({ id: b.id }) },
  'Query.balance': { query: 'query($id: ID!) { balance(accountId: $id) { available } }', variables: () => ({ id: b.id }) },
  'Query.ledgerEntries': { query: 'query($id: ID!) { ledgerEntries(accountId: $id) { entries { id } } }', variables: () => ({ id: b.id }) },
  'Query.usage': { query: 'query($id: ID!) { usage(accountId: $id, groupBy: DAY) { group } }', variables: () => ({ id: b.id }) },
  'Query.billingAudit': { query: 'query($id: ID!) { billingAudit(accountId: $id) { ok } }', variables: () => ({ id: b.id }) },
  'Mutation.purchaseCredits': {
    query: 'mutation($id: ID!) { purchaseCredits(accountId: $id, amount: 1000000000, paymentMethod: "pm_card_visa") { __typename } }',
    variables: () => ({ id: b.id }),
  },
  'Mutation.grantCredits': { query: 'mutation($id: ID!) { grantCredits(accountId: $id, amount: 1, reason: "x") { __typename } }', variables: () => ({ id: b.id }) },
  'Mutation.refundCredits': { query: 'mutation($id: ID!) { refundCredits(accountId: $id, amount: 10000000, reason: "x") { __typename } }', variables: () => ({ id: b.id }) },
  'Query.generation': { query: 'query($id: ID!) { generation(id: $id) { id model } }', variables: () => ({ id: bGeneration }) },
  'Query.generations': { query: 'query($id: ID!) { generations(accountId: $id) { edges { node { id } } } }', variables: () => ({ id: b.id }) },
  'Mutation.changePlan': { query: 'mutation($id: ID!) { changePlan(accountId: $id, plan: "pro") { __typename } }', variables: () => ({ id: b.id }) },
});

/** Root fields that take an id of public data (the model catalog): nothing to protect. */
const PUBLIC_ID_FIELDS = new Set(['Query.model']);

const takesId = (field: GraphQLField<unknown, unknown>) =>
  field.args.some((arg) => {
    const named = getNamedType(arg.type);
    return named.name === 'ID' || getNullableType(arg.type).toString().includes('ID');
  });

describe('object-level authorization', () => {
  it('covers every root field that takes an id', () => {
    const fields = ['Query', 'Mutation'].flatMap((root) => {
      const type = schema.getType(root);
      if (!isObjectType(type)) return [];
      return Object.values(type.getFields())
        .filter(takesId)
        .map((field) => `${root}.${field.name}`)
        .filter((name) => !PUBLIC_ID_FIELDS.has(name));
    });
    const covered = new Set(Object.keys(attacks()).map((name) => name.replace(/\(.*\)$/, '')));
    expect(fields.filter((f) => !covered.has(f))).toEqual([]);
  });

  it("refuses every one of them with B's ids, and B's data is unchanged", async () => {
    const before = await h.gql('{ me { id name roles apiKeys(includeRevoked: true) { edges { node { id name status limit } } } } }', {}, b.key);
    const head = await h.running.core.eventStore.headPosition();
    for (const [name, attack] of Object.entries(attacks())) {
      const { body } = await h.gql(attack.query, attack.variables(), a.key);
      expect(body.errors?.[0]?.extensions?.code, name).toBe('FORBIDDEN');
      expect(JSON.stringify(body.data ?? null), name).not.toContain('Bob');
    }
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
    const after = await h.gql('{ me { id name roles apiKeys(includeRevoked: true) { edges { node { id name status limit } } } } }', {}, b.key);
    expect(after.body).toEqual(before.body);
  });

  it('lets each user reach its own objects with the same operations', async () => {
    const own = await h.gql('query($id: ID!) { apiKey(id: $id) { id } account: node(id: $id) { id } }', { id: a.keyId }, a.key);
    expect(own.body.errors).toBeUndefined();
    expect(own.body.data.apiKey.id).toBe(a.keyId);
  });
});

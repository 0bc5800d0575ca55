import { getNamedType, getNullableType, isObjectType, type GraphQLField } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

/**
 * Broken object-level authorization (BOLA): user A calls every query and mutation that takes an id with user B's
 * ids and must be refused each time, and B's data must not change. Where the id names an object (an account, a key,
 * a generation), the refusal is exactly the answer a missing id gets (NOT_FOUND), so it never tells A that B's id
 * exists; admin-only operations are FORBIDDEN whatever the id. The list of operations is read from the schema, so a
 * new field that takes an id fails this test until it is covered here.
 */
let h: Harness;
let a: { id: string; key: string; keyId: string };
let b: { id: string; key: string; keyId: string };
let bGeneration: string;
let bWorkflow: string;
let bRun: string;
let bEntry: string;

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
  await h.gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: b.id });
  const definition = { name: 'Bob flow', trigger: { type: 'webhook', respond: 'async' }, steps: [{ key: 'reply', type: 'action.respond', input: { status: 202 } }] };
  const created = await h.gql('mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } } }', { d: definition }, b.key);
  bWorkflow = created.body.data.createWorkflow.id;
  const run = await h.gql('mutation($id: ID!) { runWorkflow(id: $id, input: "Bob here") { ... on WorkflowRun { id } } }', { id: bWorkflow }, b.key);
  bRun = run.body.data.runWorkflow.id;
  await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, b.key);
  const entry = await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "Bob here" }) { ... on Entry { id } } }', {}, b.key);
  bEntry = entry.body.data.insertEntry.id;
  // Let the run end first: the attacks below must append nothing, and B's run must not be moving under them.
  await eventually('B\'s run to end', async () => (await h.gql('query($id: ID!) { workflowRun(id: $id) { status } }', { id: bRun }, b.key)).body.data.workflowRun.status === 'SUCCEEDED');
  await h.running.core.gateway.idle();
});
afterAll(async () => {
  await h.stop();
});

/** Ids of objects that do not exist, one per kind of B's ids. */
const MISSING = { account: 'acc_0mzzzzzzz0000000000000000', key: 'key_0mzzzzzzz0000000000000000', generation: 'gen-0mzzzzzzz0000000000000000', workflow: 'wf_0mzzzzzzz0000000000000000', run: 'run_0mzzzzzzz0000000000000000', entry: 'ent_0mzzzzzzz0000000000000000' };

/** B's ids, and what stands in their place in a missing object's answer. */
const theirs = () => ({ account: b.id, key: b.keyId, generation: bGeneration, workflow: bWorkflow, run: bRun, entry: bEntry });

/** Admin-only operations: refused for a user whatever the id says (FORBIDDEN tells nothing about the id). */
const ADMIN_ONLY = new Set(['Mutation.grantRole', 'Mutation.revokeRole', 'Query.billingAudit', 'Mutation.grantCredits', 'Mutation.refundCredits', 'Mutation.changePlan']);

/** An operation per root field taking an id, called with B's ids (or, with `ids` = MISSING, with missing ones). */
const attacks = (ids: () => { account: string; key: string; generation: string; workflow: string; run: string; entry: string } = theirs): Record<string, { query: string; variables: () => Record<string, unknown> }> => ({
  'Query.account': { query: 'query($id: ID!) { account(id: $id) { id name } }', variables: () => ({ id: ids().account }) },
  'Query.apiKey': { query: 'query($id: ID!) { apiKey(id: $id) { id name } }', variables: () => ({ id: ids().key }) },
  'Query.node(account)': { query: 'query($id: ID!) { node(id: $id) { id ... on Account { name } } }', variables: () => ({ id: ids().account }) },
  'Query.node(apiKey)': { query: 'query($id: ID!) { node(id: $id) { id ... on ApiKey { name } } }', variables: () => ({ id: ids().key }) },
  'Query.nodes': { query: 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', variables: () => ({ ids: [ids().account, ids().key] }) },
  'Query.apiKeys': { query: 'query($id: ID!) { apiKeys(accountId: $id) { edges { node { id } } } }', variables: () => ({ id: ids().account }) },
  'Mutation.createApiKey': {
    query: 'mutation($id: ID!) { createApiKey(accountId: $id, name: "x") { __typename ... on CreatedApiKey { secret } } }',
    variables: () => ({ id: ids().account }),
  },
  'Mutation.renameApiKey': { query: 'mutation($id: ID!) { renameApiKey(id: $id, name: "pwned") { __typename } }', variables: () => ({ id: ids().key }) },
  'Mutation.setApiKeyLimit': {
    query: 'mutation($id: ID!) { setApiKeyLimit(id: $id, limit: 1, limitReset: DAILY) { __typename } }',
    variables: () => ({ id: ids().key }),
  },
  'Mutation.setApiKeyByokInLimit': { query: 'mutation($id: ID!) { setApiKeyByokInLimit(id: $id, includeByokInLimit: true) { __typename } }', variables: () => ({ id: ids().key }) },
  'Mutation.setApiKeyExpiry': { query: 'mutation($id: ID!) { setApiKeyExpiry(id: $id, expiresAt: null) { __typename } }', variables: () => ({ id: ids().key }) },
  'Mutation.disableApiKey': { query: 'mutation($id: ID!) { disableApiKey(id: $id) { __typename } }', variables: () => ({ id: ids().key }) },
  'Mutation.enableApiKey': { query: 'mutation($id: ID!) { enableApiKey(id: $id) { __typename } }', variables: () => ({ id: ids().key }) },
  'Mutation.revokeApiKey': { query: 'mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }', variables: () => ({ id: ids().key }) },
  'Mutation.grantRole': { query: 'mutation($id: ID!) { grantRole(accountId: $id, role: ADMIN) { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.revokeRole': { query: 'mutation($id: ID!) { revokeRole(accountId: $id, role: USER) { __typename } }', variables: () => ({ id: ids().account }) },
  'Query.balance': { query: 'query($id: ID!) { balance(accountId: $id) { available } }', variables: () => ({ id: ids().account }) },
  'Query.ledgerEntries': { query: 'query($id: ID!) { ledgerEntries(accountId: $id) { edges { node { id } } } }', variables: () => ({ id: ids().account }) },
  'Query.usage': { query: 'query($id: ID!) { usage(accountId: $id, groupBy: DAY) { group } }', variables: () => ({ id: ids().account }) },
  'Query.billingAudit': { query: 'query($id: ID!) { billingAudit(accountId: $id) { ok } }', variables: () => ({ id: ids().account }) },
  'Mutation.purchaseCredits': {
    query: 'mutation($id: ID!) { purchaseCredits(accountId: $id, amount: 1000000000, paymentMethod: "pm_card_visa") { __typename } }',
    variables: () => ({ id: ids().account }),
  },
  'Mutation.grantCredits': { query: 'mutation($id: ID!) { grantCredits(accountId: $id, amount: 1, reason: "x") { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.refundCredits': { query: 'mutation($id: ID!) { refundCredits(accountId: $id, amount: 10000000, reason: "x") { __typename } }', variables: () => ({ id: ids().account }) },
  'Query.generation': { query: 'query($id: ID!) { generation(id: $id) { id model } }', variables: () => ({ id: ids().generation }) },
  'Query.generations': { query: 'query($id: ID!) { generations(accountId: $id) { edges { node { id } } } }', variables: () => ({ id: ids().account }) },
  'Mutation.changePlan': { query: 'mutation($id: ID!) { changePlan(accountId: $id, plan: "pro") { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.setContentLogging': { query: 'mutation($id: ID!) { setContentLogging(accountId: $id, enabled: true) { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.setDefaultModel': { query: 'mutation($id: ID!) { setDefaultModel(accountId: $id, model: "switchyard/demo") { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.setByokKey': { query: 'mutation($id: ID!) { setByokKey(accountId: $id, provider: "openai", apiKey: "sk-planted-by-another-account") { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.removeByokKey': { query: 'mutation($id: ID!) { removeByokKey(accountId: $id, provider: "openai") { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.setProviderPreferences': { query: 'mutation($id: ID!) { setProviderPreferences(accountId: $id, ignore: ["switchyard"]) { __typename } }', variables: () => ({ id: ids().account }) },
  'Mutation.deleteGenerationContent': { query: 'mutation($id: ID!) { deleteGenerationContent(accountId: $id) }', variables: () => ({ id: ids().account }) },
  'Query.workflow': { query: 'query($id: ID!) { workflow(id: $id) { id name } }', variables: () => ({ id: ids().workflow }) },
  'Query.workflows': { query: 'query($id: ID!) { workflows(accountId: $id) { edges { node { id name } } } }', variables: () => ({ id: ids().account }) },
  'Mutation.updateWorkflow': {
    query: 'mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename } }',
    variables: () => ({ id: ids().workflow, d: { name: 'pwned', trigger: { type: 'manual' }, steps: [{ key: 'x', type: 'action.transform', input: {} }] } }),
  },
  'Mutation.enableWorkflow': { query: 'mutation($id: ID!) { enableWorkflow(id: $id) { __typename } }', variables: () => ({ id: ids().workflow }) },
  'Mutation.disableWorkflow': { query: 'mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', variables: () => ({ id: ids().workflow }) },
  'Mutation.deleteWorkflow': { query: 'mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', variables: () => ({ id: ids().workflow }) },
  'Mutation.rotateWebhookSecret': { query: 'mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename } }', variables: () => ({ id: ids().workflow }) },
  'Mutation.runWorkflow': { query: 'mutation($id: ID!) { runWorkflow(id: $id, input: 1) { __typename } }', variables: () => ({ id: ids().workflow }) },
  'Mutation.cancelWorkflowRun': { query: 'mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename } }', variables: () => ({ id: ids().run }) },
  'Mutation.retryWorkflowRun': { query: 'mutation($id: ID!) { retryWorkflowRun(id: $id) { __typename } }', variables: () => ({ id: ids().run }) },
  'Query.workflowRun': { query: 'query($id: ID!) { workflowRun(id: $id) { id status output } }', variables: () => ({ id: ids().run }) },
  'Query.tables': { query: 'query($id: ID!) { tables(accountId: $id) { id name } }', variables: () => ({ id: ids().account }) },
  'Query.entries': { query: 'query($id: ID!) { entries(table: "inbox", accountId: $id) { edges { node { id data } } } }', variables: () => ({ id: ids().account }) },
  'Mutation.updateEntry': { query: 'mutation($id: ID!) { updateEntry(table: "inbox", id: $id, entry: { text: "pwned" }) { __typename } }', variables: () => ({ id: ids().entry }) },
  'Mutation.deleteEntry': { query: 'mutation($id: ID!) { deleteEntry(table: "inbox", id: $id) { __typename } }', variables: () => ({ id: ids().entry }) },
  'Query.workflowRuns': { query: 'query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id output } } } }', variables: () => ({ id: ids().workflow }) },
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
      expect(body.errors?.[0]?.extensions?.code, name).toBe(ADMIN_ONLY.has(name) ? 'FORBIDDEN' : 'NOT_FOUND');
      expect(JSON.stringify(body.data ?? null), name).not.toContain('Bob');
    }
    expect(await h.running.core.eventStore.headPosition()).toBe(head);
    const after = await h.gql('{ me { id name roles apiKeys(includeRevoked: true) { edges { node { id name status limit } } } } }', {}, b.key);
    expect(after.body).toEqual(before.body);
  });

  it("answers B's objects exactly as missing ones: same status, code, message and path", async () => {
    /** The answer with each id replaced by its kind, so B's and the missing ids compare. */
    const answer = async (query: string, variables: Record<string, unknown>, ids: Record<string, string>) => {
      const res = await h.gql(query, variables, a.key);
      let text = JSON.stringify(res);
      for (const [kind, id] of Object.entries(ids)) text = text.replaceAll(id, `<${kind}>`);
      return JSON.parse(text) as unknown;
    };
    const missing = attacks(() => MISSING);
    for (const [name, attack] of Object.entries(attacks())) {
      if (ADMIN_ONLY.has(name)) continue;
      const forTheirs = await answer(attack.query, attack.variables(), theirs());
      const forMissing = await answer(missing[name]!.query, missing[name]!.variables(), MISSING);
      expect(forTheirs, name).toEqual(forMissing);
    }
  });

  it('lets each user reach its own objects with the same operations', async () => {
    const own = await h.gql('query($id: ID!) { apiKey(id: $id) { id } account: node(id: $id) { id } }', { id: a.keyId }, a.key);
    expect(own.body.errors).toBeUndefined();
    expect(own.body.data.apiKey.id).toBe(a.keyId);
  });
});

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/** Workflow definitions through GraphQL on the started app: who may manage them, versions, bad input, the webhook secret. */
let h: Harness;
let designer: { id: string; key: string };
let member: { id: string; key: string };
let stranger: { id: string; key: string };

const example = () => JSON.parse(readFileSync(new URL('../fixtures/workflows/answerQuestions.json', import.meta.url), 'utf8')) as Record<string, unknown> & { steps: Record<string, unknown>[] };

const WORKFLOW = 'id name version status definition webhookUrl hasWebhookSecret createdAt updatedAt';
const ERROR = '... on DomainError { code message details }';

const open = async (name: string, role?: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  if (role) {
    const grant = await h.gql('mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename } }', { id: account.id, role });
    expect(grant.body.data.grantRole.__typename).toBe('Account');
  }
  return account;
};

const create = (definition: unknown, key: string) =>
  h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { ${WORKFLOW} } ${ERROR} } }`, { d: definition }, key);

beforeAll(async () => {
  h = await startHarness();
  designer = await open('Dana Designer', 'DESIGNER');
  // The table the definitions below store into or search (a table step must name one of the account's tables).
  expect((await h.gql(`mutation { createTable(name: "answers") { __typename } }`, {}, designer.key)).body.data.createTable.__typename).toBe('Table');
  member = await open('Mo Member');
  stranger = await open('Sam Stranger', 'DESIGNER');
});
afterAll(async () => {
  await h.stop();
});

describe('workflow definitions over GraphQL', () => {
  it("lets a designer create the brief's example as version 1, and read it back", async () => {
    const { body } = await create(example(), designer.key);
    const workflow = body.data.createWorkflow;
    expect(workflow).toMatchObject({ __typename: 'Workflow', name: 'Answer questions', version: 1, status: 'ENABLED', hasWebhookSecret: false });
    expect(workflow.webhookUrl).toBe(`/api/v1/workflows/${workflow.id}/webhook`);
    expect(workflow.definition.steps[1].input.model).toBe('=steps.pick.first.id');

    const read = await h.gql(`query($id: ID!) { workflow(id: $id) { ${WORKFLOW} } workflows { edges { node { id version } } } }`, { id: workflow.id }, designer.key);
    expect(read.body.errors).toBeUndefined();
    const { __typename: _typename, ...shown } = workflow;
    expect(read.body.data.workflow).toEqual(shown);
    expect(read.body.data.workflows.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([workflow.id]);
  });

  it('saves every change as the next version, and lets any key of the account read it', async () => {
    const { body } = await create(example(), designer.key);
    const id = body.data.createWorkflow.id;
    const changed = { ...example(), name: 'Answer questions, briefly' };
    const update = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ... on Workflow { name version } ${ERROR} } }`, { id, d: changed }, designer.key);
    expect(update.body.data.updateWorkflow).toEqual({ __typename: 'Workflow', name: 'Answer questions, briefly', version: 2 });
    const read = await h.gql('query($id: ID!) { workflow(id: $id) { version name } }', { id }, designer.key);
    expect(read.body.data.workflow).toEqual({ version: 2, name: 'Answer questions, briefly' });

    // A run pins its version: each version's definition stays readable.
    expect((await h.running.core.modules.workflows.definitionAt(id, 1))?.name).toBe('Answer questions');
    expect((await h.running.core.modules.workflows.definitionAt(id, 2))?.name).toBe('Answer questions, briefly');
    expect(await h.running.core.modules.workflows.definitionAt(id, 3)).toBeNull();

    const disable = await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { ... on Workflow { status version } } }', { id }, designer.key);
    expect(disable.body.data.disableWorkflow).toEqual({ status: 'DISABLED', version: 2 });
  });

  it('refuses a member without the designer role: FORBIDDEN to create or change, allowed to read', async () => {
    const own = (await create(example(), designer.key)).body.data.createWorkflow.id;
    // The member is of another account here; a member of the same account is covered by the decider's unit tests.
    const denied = await create(example(), member.key);
    expect(denied.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(denied.body.data).toBeNull();

    const admin = await h.gql('mutation($id: ID!) { revokeRole(accountId: $id, role: DESIGNER) { __typename } }', { id: designer.id });
    expect(admin.body.data.revokeRole.__typename).toBe('Account');
    try {
      const update = await h.gql('mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename } }', { id: own, d: example() }, designer.key);
      expect(update.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const read = await h.gql('query($id: ID!) { workflow(id: $id) { id version } }', { id: own }, designer.key);
      expect(read.body.data.workflow).toEqual({ id: own, version: 1 });
    } finally {
      await h.gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: designer.id });
    }
  });

  it("answers another account's workflow exactly as a missing one (NOT_FOUND)", async () => {
    const theirs = (await create(example(), designer.key)).body.data.createWorkflow.id as string;
    const missing = 'wf_0mzzzzzzz0000000000000000';
    for (const [query, variables] of [
      ['query($id: ID!) { workflow(id: $id) { id name } }', {}],
      ['mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename } }', { d: example() }],
      ['mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', {}],
      ['mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename } }', {}],
    ] as const) {
      const forTheirs = await h.gql(query, { id: theirs, ...variables }, stranger.key);
      const forMissing = await h.gql(query, { id: missing, ...variables }, stranger.key);
      expect(forTheirs.body.errors?.[0]?.extensions?.code, query).toBe('NOT_FOUND');
      expect(JSON.stringify(forTheirs.body).replaceAll(theirs, '<id>'), query).toBe(JSON.stringify(forMissing.body).replaceAll(missing, '<id>'));
    }
    const list = await h.gql('{ workflows { edges { node { id } } } }', {}, stranger.key);
    expect(list.body.data.workflows.edges).toEqual([]);
    const read = await h.gql('query($id: ID!) { workflow(id: $id) { version } }', { id: theirs }, designer.key);
    expect(read.body.data.workflow).toEqual({ version: 1 });
  });

  it("answers a bad definition with a DomainError whose details name the bad field's path", async () => {
    const bad = example();
    bad.steps[0] = { ...bad.steps[0], input: { sort: '=steps.answer.text' } };
    const { body } = await create(bad, designer.key);
    expect(body.data.createWorkflow).toMatchObject({
      __typename: 'DomainError',
      code: 'VALIDATION',
      details: { path: 'steps[0].input.sort', issues: [{ path: 'steps[0].input.sort', message: 'expression references step "answer", which does not run before this one' }] },
    });

    const unknownType = example();
    unknownType.steps[2] = { ...unknownType.steps[2], type: 'action.launch' };
    const second = await create(unknownType, designer.key);
    expect(second.body.data.createWorkflow).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: 'steps[2].type' } });

    // Past the definition's own limit (32 levels), within what any JSON value may nest (64): a VALIDATION at its path.
    const nestedIn = (depth: number) =>
      `{"query":"mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on DomainError { code details } } }","variables":{"d":{"name":"x","trigger":{"type":"manual"},"steps":[{"key":"a","type":"action.transform","input":{"v":${'['.repeat(depth)}1${']'.repeat(depth)}}}]}}}`;
    const post = (body: string) => fetch(`${h.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${designer.key}` }, body });
    const deepBody = (await (await post(nestedIn(40))).json()) as { data: { createWorkflow: { code: string; details: { path: string } } } };
    expect(deepBody.data.createWorkflow).toMatchObject({ code: 'VALIDATION', details: { path: expect.stringMatching(/^steps\[0\]\.input\.v\[0\]/) } });
    // 100,000 levels, sent as raw text (a client's JSON.stringify would overflow first): the JSON value itself is
    // refused, as a bad variable, before any resolver walks it.
    const deeper = (await (await post(nestedIn(100_000))).json()) as { data?: unknown; errors: { message: string; extensions: { code: string } }[] };
    expect(deeper.data).toBeUndefined();
    expect(deeper.errors[0]).toMatchObject({ message: expect.stringContaining('JSON nested more than 64 levels deep'), extensions: { code: 'BAD_USER_INPUT' } });

    const notAnObject = await create('hello', designer.key);
    expect(notAnObject.body.data.createWorkflow).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: '$' } });
  });

  it('refuses, at create and at update, step inputs that could never run: an unknown model, no prompt, a metadata URL', async () => {
    const withStep = (step: Record<string, unknown>) => ({ name: 'Never runs', trigger: { type: 'webhook', respond: 'async' }, steps: [step] });
    const cases = [
      [{ key: 'm', type: 'action.model', input: { model: 'nope/none', prompt: 'x' } }, 'steps[0].input.model', 'nope/none is not a valid model ID'],
      [{ key: 'm', type: 'action.model', input: { model: 'switchyard/demo', models: ['switchyard/demo-paid', 'nope/fallback'], prompt: 'x' } }, 'steps[0].input.models[1]', 'nope/fallback is not a valid model ID'],
      [{ key: 'm', type: 'action.model', input: { model: 'switchyard/demo:online', prompt: 'x' } }, 'steps[0].input.model', expect.stringContaining('The :online variant of switchyard/demo is not supported')],
      [{ key: 'm', type: 'action.model', input: { model: 'switchyard/demo' } }, 'steps[0].input.prompt', 'give prompt or messages (one of them)'],
      [{ key: 'h', type: 'action.http', input: { method: 'GET', url: 'http://169.254.169.254/latest' } }, 'steps[0].input.url', expect.stringContaining('is a cloud metadata address')],
      [{ key: 's', type: 'search.http', input: { url: 'file:///etc/passwd' } }, 'steps[0].input.url', 'file: URLs are not allowed (http or https only)'],
      [{ key: 's', type: 'search.entries', input: { table: 'answers', limit: 1000 } }, 'steps[0].input.limit', expect.stringContaining('100')],
      [{ key: 'st', type: 'action.storeEntry', input: { table: 'BAD NAME', entry: { a: 1 } } }, 'steps[0].input.table', 'must be a table name: 1 to 63 lowercase letters, digits and _, starting with a letter'],
      [{ key: 'r', type: 'action.respond', input: { status: 999, body: { ok: true } } }, 'steps[0].input.status', 'status must be an HTTP status from 200 to 599'],
    ] as const;
    const saved = (await create(withStep({ key: 'm', type: 'action.model', input: { model: 'switchyard/demo', prompt: 'x' } }), designer.key)).body.data.createWorkflow;
    expect(saved).toMatchObject({ __typename: 'Workflow', version: 1 });
    for (const [step, path, message] of cases) {
      const refusal = { __typename: 'DomainError', code: 'VALIDATION', details: { path, issues: [{ path, message }] } };
      expect((await create(withStep(step), designer.key)).body.data.createWorkflow, path).toMatchObject(refusal);
      const update = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ... on Workflow { version } ${ERROR} } }`, { id: saved.id, d: withStep(step) }, designer.key);
      expect(update.body.data.updateWorkflow, path).toMatchObject(refusal);
    }
    const read = await h.gql('query($id: ID!) { workflow(id: $id) { version } }', { id: saved.id }, designer.key);
    expect(read.body.data.workflow).toEqual({ version: 1 });

    // Every problem of a definition at once, each at its path (the console lists them all).
    const several = { ...withStep(cases[0][0]), steps: [cases[0][0], { ...cases[3][0], key: 'n' }, cases[4][0]] };
    const all = (await create(several, designer.key)).body.data.createWorkflow;
    expect(all.details.issues.map((issue: { path: string }) => issue.path)).toEqual(['steps[0].input.model', 'steps[1].input.prompt', 'steps[2].input.url']);
  });

  it('saves step inputs whose expressions could make them run: only what no value could fix is refused', async () => {
    const steps = [
      { key: 'm', type: 'action.model', input: { model: '=trigger.body.model', prompt: '=trigger.body.q' } },
      { key: 'f', type: 'action.model', input: { models: ['=trigger.body.model', 'switchyard/demo'], messages: '=trigger.body.messages', maxTokens: '=trigger.body.max' } },
      // A preset named by an expression is looked up when the step runs.
      { key: 'p', type: 'action.model', input: { model: '="@preset/" & trigger.body.preset', prompt: 'x' } },
      { key: 'a', type: 'action.model', input: { model: 'openrouter/auto', prompt: 'x' } },
      { key: 'h', type: 'action.http', input: { method: '=trigger.body.method', url: '=trigger.body.url', body: { q: '=trigger.body.q' } } },
      { key: 's', type: 'search.http', input: { url: 'https://api.example.com/items', headers: '=trigger.body.headers' } },
      { key: 'l', type: 'action.http', input: { url: 'http://127.0.0.1:9/hook' } },
      { key: 'e', type: 'action.storeEntry', input: { table: 'answers', entry: '=trigger.body' } },
      { key: 't', type: 'action.storeEntry', input: { table: '=trigger.body.table', entry: { a: 1 } } },
      { key: 'x', type: 'action.emit', input: { event: 'custom.answered', data: { text: '=steps.m.text' } } },
    ];
    const { body } = await create({ name: 'Runs with its expressions', trigger: { type: 'webhook', respond: 'async' }, steps }, designer.key);
    expect(body.data.createWorkflow).toMatchObject({ __typename: 'Workflow', version: 1 });

    // An expression elsewhere in the input fixes nothing: an unknown key, a literal of the wrong type stay refused.
    const typo = [{ key: 'm', type: 'action.model', input: { model: '=trigger.body.model', promt: '=trigger.body.q', temperature: 'hot' } }];
    const refused = (await create({ name: 'Typo', trigger: { type: 'manual' }, steps: typo }, designer.key)).body.data.createWorkflow;
    expect(refused).toMatchObject({
      code: 'VALIDATION',
      details: {
        issues: [
          { path: 'steps[0].input.temperature' },
          { path: 'steps[0].input', message: 'Unrecognized key: "promt"' },
          // Neither prompt nor messages is given, whatever the model's expression gives.
          { path: 'steps[0].input.prompt', message: 'give prompt or messages (one of them)' },
        ],
      },
    });
  });

  it('checks what it can of an input with expressions: literal fields, and rules over several fields when those are literal', async () => {
    const withStep = (step: Record<string, unknown>) => ({ name: 'Partly literal', trigger: { type: 'webhook', respond: 'async' }, steps: [step] });
    const refusals = [
      // An expression in another field (even one of the wrong type until it runs) leaves the rule to apply.
      [{ key: 'm', type: 'action.model', input: { model: '=trigger.body.model', maxTokens: '=trigger.body.max' } }, 'steps[0].input.prompt', 'give prompt or messages (one of them)'],
      [{ key: 'm', type: 'action.model', input: { models: ['=trigger.body.model'], prompt: 'x', messages: [{ role: 'user', content: 'y' }], temperature: '=trigger.body.t' } }, 'steps[0].input.prompt', 'give prompt or messages (one of them)'],
      [{ key: 'm', type: 'action.model', input: { model: '=trigger.body.model', prompt: '=trigger.body.q', temperature: 7 } }, 'steps[0].input.temperature', expect.stringContaining('2')],
      [{ key: 'h', type: 'action.http', input: { method: 'GET', url: '=trigger.body.url', body: { q: '=trigger.body.q' } } }, 'steps[0].input.body', 'a GET or HEAD request has no body'],
      [{ key: 'e', type: 'action.storeEntry', input: { table: 'answers', entry: '=trigger.body', id: 'e1', match: { k: 1 } } }, 'steps[0].input.id', 'give id or match, not both'],
      [{ key: 'u', type: 'action.upsertEntry', input: { table: 'answers', match: {}, entry: { a: '=trigger.body.a' } } }, 'steps[0].input.match', 'must name at least one field'],
    ] as const;
    for (const [step, path, message] of refusals) {
      expect((await create(withStep(step), designer.key)).body.data.createWorkflow, JSON.stringify(step)).toMatchObject({ code: 'VALIDATION', details: { path, issues: [{ path, message }] } });
    }
    // A field a rule reads given by an expression leaves that rule to run time.
    const saved = [
      { key: 'm', type: 'action.model', input: { model: 'switchyard/demo', prompt: '=trigger.body.q', messages: '=trigger.body.messages' } },
      { key: 'h', type: 'action.http', input: { method: '=trigger.body.method', url: 'https://example.com/hook', body: { a: 1 } } },
      { key: 'e', type: 'action.storeEntry', input: { table: 'answers', entry: { a: 1 }, id: '=trigger.body.id', match: { k: 1 } } },
    ];
    for (const step of saved) expect((await create(withStep(step), designer.key)).body.data.createWorkflow, JSON.stringify(step)).toMatchObject({ __typename: 'Workflow' });
  });

  it("refuses a model step naming a preset the workflow's account does not have, as an unknown model", async () => {
    const withModel = (model: unknown, extra: Record<string, unknown> = {}) => ({ name: 'Preset', trigger: { type: 'manual' }, steps: [{ key: 'm', type: 'action.model', input: { model, prompt: 'x', ...extra } }] });
    const refused = (path: string, message: unknown) => ({ __typename: 'DomainError', code: 'VALIDATION', details: { path, issues: [{ path, message }] } });
    const missing = '@preset/house-style is not a preset of this account: create it first (createPreset)';
    expect((await create(withModel('@preset/house-style'), designer.key)).body.data.createWorkflow).toMatchObject(refused('steps[0].input.model', missing));
    expect((await create(withModel('switchyard/demo@preset/house-style'), designer.key)).body.data.createWorkflow).toMatchObject(refused('steps[0].input.model', missing));
    expect((await create(withModel('@preset/House_Style'), designer.key)).body.data.createWorkflow).toMatchObject(refused('steps[0].input.model', expect.stringContaining('is not a preset slug')));

    const made = await h.gql(`mutation($config: JSON!) { createPreset(slug: "house-style", name: "House style", config: $config) { __typename } }`, { config: { model: 'switchyard/demo', temperature: 0.2 } }, designer.key);
    expect(made.body.data.createPreset.__typename).toBe('Preset');
    const saved = (await create(withModel('@preset/house-style'), designer.key)).body.data.createWorkflow;
    expect(saved).toMatchObject({ __typename: 'Workflow', version: 1 });
    expect((await create(withModel('switchyard/demo@preset/house-style'), designer.key)).body.data.createWorkflow).toMatchObject({ __typename: 'Workflow' });
    // Another account's preset of that slug is not this account's; nor is a preset one of models.
    expect((await create(withModel('@preset/house-style'), stranger.key)).body.data.createWorkflow).toMatchObject(refused('steps[0].input.model', missing));
    expect((await create(withModel('switchyard/demo', { models: ['switchyard/demo@preset/house-style'] }), designer.key)).body.data.createWorkflow).toMatchObject(
      refused('steps[0].input.models[0]', expect.stringContaining('a preset cannot be one of models')),
    );
    const update = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ... on Workflow { version } ${ERROR} } }`, { id: saved.id, d: withModel('@preset/gone') }, designer.key);
    expect(update.body.data.updateWorkflow).toMatchObject(refused('steps[0].input.model', '@preset/gone is not a preset of this account: create it first (createPreset)'));
  });

  it("refuses a table step or entry trigger naming a table the workflow's account does not have, as a missing preset", async () => {
    const refused = (path: string, table: string) => ({ __typename: 'DomainError', code: 'VALIDATION', details: { path, issues: [{ path, message: `there is no table ${table} in this account: create it first (createTable)` }] } });
    const cases = [
      [{ name: 'Store', trigger: { type: 'manual' }, steps: [{ key: 's', type: 'action.storeEntry', input: { table: 'failures', entry: { a: 1 } } }] }, 'steps[0].input.table'],
      [{ name: 'Upsert', trigger: { type: 'manual' }, steps: [{ key: 'u', type: 'action.upsertEntry', input: { table: 'failures', match: { a: 1 } } }] }, 'steps[0].input.table'],
      [{ name: 'Search', trigger: { type: 'manual' }, steps: [{ key: 'f', type: 'search.entries', input: { table: 'failures' } }] }, 'steps[0].input.table'],
      [{ name: 'On entry', trigger: { type: 'entry', table: 'failures', on: 'insert' }, steps: [{ key: 'f', type: 'control.filter', input: { condition: true } }] }, 'trigger.table'],
    ] as const;
    for (const [definition, path] of cases) expect((await create(definition, designer.key)).body.data.createWorkflow, path).toMatchObject(refused(path, 'failures'));
    // A table named by an expression is looked up when the step runs.
    const byExpression = { name: 'Any table', trigger: { type: 'manual' }, steps: [{ key: 's', type: 'action.storeEntry', input: { table: '=trigger.table', entry: { a: 1 } } }] };
    expect((await create(byExpression, designer.key)).body.data.createWorkflow).toMatchObject({ __typename: 'Workflow' });

    const made = await h.gql(`mutation { createTable(name: "failures") { __typename } }`, {}, designer.key);
    expect(made.body.data.createTable.__typename).toBe('Table');
    for (const [definition, path] of cases) expect((await create(definition, designer.key)).body.data.createWorkflow, path).toMatchObject({ __typename: 'Workflow' });
    // Another account's table of that name is not this account's; an update is checked as a create.
    expect((await create(cases[0][0], stranger.key)).body.data.createWorkflow).toMatchObject(refused('steps[0].input.table', 'failures'));
    const saved = (await create(cases[0][0], designer.key)).body.data.createWorkflow;
    const gone = { ...cases[0][0], steps: [{ key: 's', type: 'action.storeEntry', input: { table: 'gone', entry: { a: 1 } } }] };
    const update = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ... on Workflow { version } ${ERROR} } }`, { id: saved.id, d: gone }, designer.key);
    expect(update.body.data.updateWorkflow).toMatchObject(refused('steps[0].input.table', 'gone'));
  });

  it('rotates the webhook secret and shows it only in that answer', async () => {
    const id = (await create(example(), designer.key)).body.data.createWorkflow.id as string;
    const rotate = () => h.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ... on WebhookSecret { secret workflow { hasWebhookSecret } } ${ERROR} } }`, { id }, designer.key);
    const first = (await rotate()).body.data.rotateWebhookSecret;
    expect(first).toMatchObject({ __typename: 'WebhookSecret', workflow: { hasWebhookSecret: true } });
    expect(first.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const second = (await rotate()).body.data.rotateWebhookSecret;
    expect(second.secret).not.toBe(first.secret);

    const read = await h.gql(`query($id: ID!) { workflow(id: $id) { ${WORKFLOW} } }`, { id }, designer.key);
    expect(JSON.stringify(read.body)).not.toContain(first.secret);
    expect(JSON.stringify(read.body)).not.toContain(second.secret);
    const events = await h.running.core.eventStore.readStream(`workflow-${id}`);
    expect(JSON.stringify(events)).not.toContain(second.secret);

    const manual = (await create({ ...example(), trigger: { type: 'manual' } }, designer.key)).body.data.createWorkflow.id;
    const refused = await h.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ${ERROR} } }`, { id: manual }, designer.key);
    expect(refused.body.data.rotateWebhookSecret).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
  });

  it('deletes a workflow: it disappears from reads and cannot be changed', async () => {
    const id = (await create(example(), designer.key)).body.data.createWorkflow.id as string;
    const del = await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { ... on Workflow { status } } }', { id }, designer.key);
    expect(del.body.data.deleteWorkflow).toEqual({ status: 'DELETED' });
    const read = await h.gql('query($id: ID!) { workflow(id: $id) { id } }', { id }, designer.key);
    expect(read.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const enable = await h.gql(`mutation($id: ID!) { enableWorkflow(id: $id) { __typename ${ERROR} } }`, { id }, designer.key);
    expect(enable.body.data.enableWorkflow).toMatchObject({ __typename: 'DomainError', code: 'NOT_FOUND' });
  });
});

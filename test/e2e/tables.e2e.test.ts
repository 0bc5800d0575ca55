import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * Tables over the started app: CRUD, filters, sorting and paging over GraphQL and REST; hostile filters refused with
 * a typed error; the limits (entry size, entries per table, tables per account, names); roles and ownership.
 */
type Gql = Harness['gql'];
const ERROR = '... on DomainError { code message }';
const ENTRY = `__typename ... on Entry { id data createdAt updatedAt } ${ERROR}`;
const UPDATED = '__typename id data createdAt updatedAt';

let h: Harness;
let designer: { id: string; key: string };
let member: { id: string; key: string };
let other: { id: string; key: string };

const open = async (gql: Gql, name: string, designerRole: boolean) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  if (designerRole) await gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  return account;
};

const createTable = async (name: string, key: string) => (await h.gql(`mutation($n: String!) { createTable(name: $n) { __typename ... on Table { id name entryCount } ${ERROR} } }`, { n: name }, key)).body;
const insert = async (table: string, entry: unknown, key: string) => (await h.gql(`mutation($t: String!, $e: JSON!) { insertEntry(table: $t, entry: $e) { ${ENTRY} } }`, { t: table, e: entry }, key)).body;
const entries = async (table: string, args: { filter?: unknown; sort?: unknown; first?: number; after?: string }, key: string) =>
  (
    await h.gql(
      'query($t: String!, $f: JSON, $s: JSON, $first: Int, $after: String) { entries(table: $t, filter: $f, sort: $s, first: $first, after: $after) { edges { cursor node { id data createdAt updatedAt } } pageInfo { hasNextPage endCursor } } }',
      { t: table, f: args.filter, s: args.sort, first: args.first, after: args.after },
      key,
    )
  ).body;
const texts = (body: { data: { entries: { edges: { node: { data: { text: string } } }[] } } }) => body.data.entries.edges.map((edge) => edge.node.data.text);

beforeAll(async () => {
  h = await startHarness({ TABLE_MAX_ENTRIES: '5', TABLE_MAX_PER_ACCOUNT: '3', TABLE_MAX_ENTRY_BYTES: '1024' });
  designer = await open(h.gql, 'Tabitha Tables', true);
  member = await open(h.gql, 'Mel Member', false);
  other = await open(h.gql, 'Otto Other', true);
});
afterAll(async () => {
  await h.stop();
});

describe('tables over GraphQL', () => {
  it('creates a table, inserts, updates and deletes entries, and lists them with filters, sorts and pages', async () => {
    expect((await createTable('inbox', designer.key)).data.createTable).toMatchObject({ __typename: 'Table', name: 'inbox', entryCount: 0 });
    const ids: string[] = [];
    for (const [text, score] of [['HELLO', 3], ['world', 1], ['hello again', 5], ['bye', 2]] as const) {
      const body = await insert('inbox', { text, score, tags: score > 2 ? ['hot'] : ['cold'] }, designer.key);
      expect(body.data.insertEntry, JSON.stringify(body)).toMatchObject({ __typename: 'Entry', data: { text, score } });
      ids.push(body.data.insertEntry.id);
    }
    expect(texts(await entries('inbox', { filter: { text: 'HELLO' } }, designer.key))).toEqual(['HELLO']);
    expect(texts(await entries('inbox', { filter: { score: { $gte: 3 } }, sort: { score: -1 } }, designer.key))).toEqual(['hello again', 'HELLO']);
    expect(texts(await entries('inbox', { filter: { text: { $regex: '^hel', $options: 'i' } } }, designer.key))).toEqual(['HELLO', 'hello again']);
    expect(texts(await entries('inbox', { filter: { $or: [{ tags: 'cold' }, { text: { $in: ['HELLO'] } }] } }, designer.key))).toEqual(['HELLO', 'world', 'bye']);
    expect(texts(await entries('inbox', { filter: { id: ids[1] } }, designer.key))).toEqual(['world']);

    const first = await entries('inbox', { first: 3 }, designer.key);
    expect(texts(first)).toEqual(['HELLO', 'world', 'hello again']);
    expect(first.data.entries.pageInfo.hasNextPage).toBe(true);
    const second = await entries('inbox', { first: 3, after: first.data.entries.pageInfo.endCursor }, designer.key);
    expect(texts(second)).toEqual(['bye']);
    expect(second.data.entries.pageInfo.hasNextPage).toBe(false);

    // Any member of the account writes entries.
    const updated = await h.gql(`mutation($id: ID!) { updateEntry(table: "inbox", id: $id, entry: { text: "WORLD", score: 9 }) { ${UPDATED} } }`, { id: ids[1] }, designer.key);
    expect(updated.body.data.updateEntry).toMatchObject({ id: ids[1], data: { text: 'WORLD', score: 9 } });
    expect(updated.body.data.updateEntry.updatedAt >= updated.body.data.updateEntry.createdAt).toBe(true);
    const deleted = await h.gql('mutation($id: ID!) { deleteEntry(table: "inbox", id: $id) { __typename id } }', { id: ids[3] }, designer.key);
    expect(deleted.body.data.deleteEntry).toEqual({ __typename: 'DeletedEntry', id: ids[3] });
    expect(texts(await entries('inbox', {}, designer.key))).toEqual(['HELLO', 'WORLD', 'hello again']);
    const again = await h.gql('mutation($id: ID!) { deleteEntry(table: "inbox", id: $id) { __typename } }', { id: ids[3] }, designer.key);
    expect(again.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    const listed = await h.gql('{ tables { name entryCount } }', {}, designer.key);
    expect(listed.body.data.tables).toEqual([{ name: 'inbox', entryCount: 3 }]);
  });

  it('refuses hostile filters with a typed VALIDATION error naming the problem', async () => {
    let deep: Record<string, unknown> = { text: 'x' };
    for (let i = 0; i < 20; i++) deep = { $and: [deep] };
    const hostile: [string, unknown][] = [
      ['$where', { $where: 'sleep(10000) || true' }],
      ['$function', { text: { $function: { body: 'function() { return true }', args: [], lang: 'js' } } }],
      ['$expr', { $expr: { $eq: ['$text', 'x'] } }],
      ['$accumulator', { text: { $accumulator: {} } }],
      ['too deep', deep],
      ['huge $in', { text: { $in: Array.from({ length: 10_000 }, (_, i) => `v${i}`) } }],
      ['catastrophic regex', { text: { $regex: '^(a+)+$' } }],
      ['alternation regex', { text: { $regex: '(a|aa)*b' } }],
      ['back-reference', { text: { $regex: '(a)\\1' } }],
      ['long regex', { text: { $regex: 'a'.repeat(500) } }],
      // 100 s against 600 a's on one thread (V8's linear fallback unrolls the counts).
      ['large counted repetitions', { text: { $regex: 'a{1,600}a{1,600}a{1,600}c' } }],
      ['a field through __proto__', { 'a.__proto__.x': 1 }],
      ['a field named constructor', { constructor: 1 }],
      ['operator in a literal', { meta: { $gt: 1, plain: 2 } }],
      ['not an object', ['text']],
    ];
    for (const [name, filter] of hostile) {
      const body = await entries('inbox', { filter }, designer.key);
      expect(body.errors?.[0]?.extensions?.code, name).toBe('VALIDATION');
      expect(body.errors?.[0]?.message, name).toMatch(/Invalid filter/);
    }
    // Small counts stay allowed.
    expect((await entries('inbox', { filter: { text: { $regex: '^[A-Z]{2,10}$' } } }, designer.key)).errors).toBeUndefined();
    const badSort = await entries('inbox', { sort: { score: 2 } }, designer.key);
    expect(badSort.errors?.[0]?.extensions?.code).toBe('VALIDATION');
    const badCursor = await entries('inbox', { after: 'bm90LWEtY3Vyc29y' }, designer.key);
    expect(badCursor.errors?.[0]?.extensions?.code).toBe('VALIDATION');
  });

  it('enforces entry size, entries per table, tables per account and table names, each with a clear error', async () => {
    const big = await insert('inbox', { text: 'x'.repeat(2000) }, designer.key);
    expect(big.data.insertEntry).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(big.data.insertEntry.message).toMatch(/over the limit of 1024/);
    for (const [entry, pattern] of [
      [{ $set: 1 }, /not starting with \$/],
      [{ 'a.b': 1 }, /no dots/],
      [{ id: 'mine' }, /platform's/],
      [[1, 2], /JSON object/],
    ] as const) {
      const body = await insert('inbox', entry, designer.key);
      expect(body.data.insertEntry.code, JSON.stringify(entry)).toBe('VALIDATION');
      expect(body.data.insertEntry.message).toMatch(pattern);
    }
    await insert('inbox', { text: 'four' }, designer.key);
    await insert('inbox', { text: 'five' }, designer.key);
    const full = await insert('inbox', { text: 'six' }, designer.key);
    expect(full.data.insertEntry).toMatchObject({ code: 'CONFLICT' });
    expect(full.data.insertEntry.message).toMatch(/maximum of 5 entries/);

    expect((await createTable('inbox', designer.key)).data.createTable).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/already exists/) });
    for (const name of ['Bad-Name', '1abc', 'x'.repeat(64), '']) expect((await createTable(name, designer.key)).data.createTable.code, name).toBe('VALIDATION');
    await createTable('second', designer.key);
    await createTable('third', designer.key);
    const fourth = await createTable('fourth', designer.key);
    expect(fourth.data.createTable).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/maximum of 3 tables/) });
    // Dropping frees the name and a slot; the table created again starts empty.
    const dropped = await h.gql(`mutation { dropTable(name: "third") { __typename ... on DroppedTable { name } ${ERROR} } }`, {}, designer.key);
    expect(dropped.body.data.dropTable).toEqual({ __typename: 'DroppedTable', name: 'third' });
    await insert('second', { text: 'kept' }, designer.key);
    await h.gql(`mutation { dropTable(name: "second") { __typename } }`, {}, designer.key);
    expect((await createTable('second', designer.key)).data.createTable).toMatchObject({ __typename: 'Table', entryCount: 0 });
    expect(texts(await entries('second', {}, designer.key))).toEqual([]);
  });

  it('lets members write entries but only designers create and drop tables; another account\'s table is NOT_FOUND', async () => {
    expect((await createTable('mine', member.key)).data.createTable).toMatchObject({ code: 'FORBIDDEN' });
    expect((await insert('inbox', { text: 'x' }, member.key)).data.insertEntry).toMatchObject({ code: 'NOT_FOUND' });
    // A table name is the caller's own: another account has no "inbox" until it makes one.
    const theirs = await entries('inbox', {}, other.key);
    expect(theirs.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const named = await h.gql('query($a: ID!) { entries(table: "inbox", accountId: $a) { edges { node { id } } } }', { a: designer.id }, other.key);
    expect(named.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const ids = (await entries('inbox', {}, designer.key)).data.entries.edges.map((edge: { node: { id: string } }) => edge.node.id);
    await createTable('inbox', other.key);
    const update = await h.gql(`mutation($id: ID!) { updateEntry(table: "inbox", id: $id, entry: { text: "pwned" }) { ${UPDATED} } }`, { id: ids[0] }, other.key);
    expect(update.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(texts(await entries('inbox', {}, designer.key))).not.toContain('pwned');
  });
});

describe('a table a workflow names', () => {
  const drop = async (name: string, key: string) =>
    (await h.gql(`mutation($n: String!) { dropTable(name: $n) { __typename ... on DroppedTable { name } ... on DomainError { code message details } } }`, { n: name }, key)).body.data.dropTable;
  const save = async (definition: unknown, key: string): Promise<string> => {
    const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
    expect(body.data.createWorkflow, JSON.stringify(body.data.createWorkflow)).toMatchObject({ __typename: 'Workflow' });
    return body.data.createWorkflow.id;
  };
  const manual = (name: string, step: unknown) => ({ name, trigger: { type: 'manual' }, steps: [step] });

  it('is not dropped while a workflow of the account names it literally (enabled or not): CONFLICT naming the first few, the table and its entries kept', async () => {
    const owner = await open(h.gql, 'Wren Workflows', true);
    for (const name of ['failures', 'loose']) expect((await createTable(name, owner.key)).data.createTable.__typename).toBe('Table');
    await insert('failures', { text: 'kept' }, owner.key);
    const store = await save(manual('Store failures', { key: 's', type: 'action.storeEntry', input: { table: 'failures', entry: { a: 1 } } }), owner.key);
    const onEntry = await save({ name: 'On a failure', trigger: { type: 'entry', table: 'failures', on: 'insert' }, steps: [{ key: 'f', type: 'control.filter', input: { condition: true } }] }, owner.key);
    const upsert = await save(manual('Upsert failures', { key: 'u', type: 'action.upsertEntry', input: { table: 'failures', match: { a: 1 } } }), owner.key);
    const search = await save(manual('Search failures', { key: 'f', type: 'search.entries', input: { table: 'failures' } }), owner.key);
    expect((await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', { id: upsert }, owner.key)).body.data.disableWorkflow.__typename).toBe('Workflow');
    // Named by an expression: looked up when the step runs, so it does not hold the table.
    await save(manual('Any table', { key: 's', type: 'action.storeEntry', input: { table: '=trigger.body.table', entry: { a: 1 } } }), owner.key);
    // Another account's workflow naming its own table of that name holds only that one.
    expect((await createTable('loose', other.key)).data.createTable.__typename).toBe('Table');
    await save(manual('Theirs', { key: 's', type: 'action.storeEntry', input: { table: 'loose', entry: { a: 1 } } }), other.key);

    const refused = await drop('failures', owner.key);
    expect(refused).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT', details: { reason: 'table_in_use', table: 'failures', count: 4 } });
    expect(refused.details.workflows).toHaveLength(3);
    for (const workflow of refused.details.workflows) expect([store, onEntry, upsert, search]).toContain(workflow.id);
    expect(refused.message).toMatch(/^Table failures is named by 4 workflows of the account, "[^"]+" \(wf_\w+\), "[^"]+" \(wf_\w+\), "[^"]+" \(wf_\w+\) and 1 more, whose runs would fail without it: change or delete them first$/);
    expect(texts(await entries('failures', {}, owner.key))).toEqual(['kept']);
    expect(await drop('loose', owner.key)).toEqual({ __typename: 'DroppedTable', name: 'loose' });

    // Changed or deleted, they no longer hold it; the last one is named alone.
    for (const id of [store, upsert]) expect((await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id }, owner.key)).body.data.deleteWorkflow.__typename).toBe('Workflow');
    const changed = await h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ${ERROR} } }`, { id: search, d: manual('Search failures', { key: 'f', type: 'search.entries', input: { table: '=trigger.body.table' } }) }, owner.key);
    expect(changed.body.data.updateWorkflow.__typename).toBe('Workflow');
    expect(await drop('failures', owner.key)).toMatchObject({
      code: 'CONFLICT',
      message: `Table failures is named by a workflow of the account, "On a failure" (${onEntry}), whose runs would fail without it: change or delete it first`,
      details: { workflows: [{ id: onEntry, name: 'On a failure' }], count: 1 },
    });
    expect((await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id: onEntry }, owner.key)).body.data.deleteWorkflow.__typename).toBe('Workflow');
    expect(await drop('failures', owner.key)).toEqual({ __typename: 'DroppedTable', name: 'failures' });
    // A table that does not exist is NOT_FOUND, as before.
    expect(await drop('failures', owner.key)).toMatchObject({ code: 'NOT_FOUND' });
  });

  /** What a mutation answered: the type it returned, or the code of its error (typed or top-level). */
  const outcome = (body: { data?: Record<string, { __typename: string; code?: string } | null> | null; errors?: { extensions?: { code?: string } }[] }, field: string) => {
    const answer = body.data?.[field];
    return answer?.__typename === 'DomainError' ? answer.code : (answer?.__typename ?? body.errors?.[0]?.extensions?.code);
  };
  const storeInto = (name: string, table: string) => manual(name, { key: 's', type: 'action.storeEntry', input: { table, entry: { a: 1 } } });
  /** Sends both at once, the save first in even rounds and the drop first in odd ones (so that each wins some). */
  const atOnce = async <S, D>(round: number, save: () => Promise<S>, drop: () => Promise<D>): Promise<[S, D]> => {
    if (round % 2 === 0) return Promise.all([save(), drop()]);
    const [dropped, saved] = await Promise.all([drop(), save()]);
    return [saved, dropped];
  };
  const tablesOf = async (key: string): Promise<string[]> => (await h.gql('{ tables { name } }', {}, key)).body.data.tables.map((table: { name: string }) => table.name);
  /**
   * After a save and a drop of `table` raced: exactly one won. Either the workflow names the table and the table is
   * there (the drop was refused, table_in_use), or the table is gone and the save was refused (VALIDATION). Cleans up.
   */
  const oneWon = async (owner: { key: string }, table: string, saved: string | undefined, dropped: string | undefined, workflowId: string, round: number) => {
    const listed = await tablesOf(owner.key);
    if (saved === 'Workflow') {
      expect({ round, dropped, listed: listed.includes(table) }).toEqual({ round, dropped: 'CONFLICT', listed: true });
      expect((await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id: workflowId }, owner.key)).body.data.deleteWorkflow.__typename).toBe('Workflow');
      expect(await drop(table, owner.key)).toEqual({ __typename: 'DroppedTable', name: table });
    } else {
      expect({ round, saved, dropped, listed: listed.includes(table) }).toEqual({ round, saved: 'VALIDATION', dropped: 'DroppedTable', listed: false });
    }
  };

  it('a save naming a table and the drop of that table sent at once: exactly one wins, never a workflow naming a dropped table (createWorkflow, 20 rounds)', async () => {
    const owner = await open(h.gql, 'Rory Races', true);
    for (let round = 0; round < 20; round++) {
      const table = `race${round}`;
      expect((await createTable(table, owner.key)).data.createTable.__typename).toBe('Table');
      const [saved, dropped] = await atOnce(
        round,
        () => h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: storeInto(`Race ${round}`, table) }, owner.key),
        () => h.gql(`mutation($n: String!) { dropTable(name: $n) { __typename ${ERROR} } }`, { n: table }, owner.key),
      );
      await oneWon(owner, table, outcome(saved.body, 'createWorkflow'), outcome(dropped.body, 'dropTable'), saved.body.data?.createWorkflow?.id, round);
    }
  });

  it('an update naming a table and the drop of that table sent at once: exactly one wins (updateWorkflow, 20 rounds)', async () => {
    const owner = await open(h.gql, 'Uma Updates', true);
    for (let round = 0; round < 20; round++) {
      const table = `race${round}`;
      expect((await createTable(table, owner.key)).data.createTable.__typename).toBe('Table');
      const workflowId = await save(storeInto(`Race ${round}`, '=trigger.body.table'), owner.key);
      const [saved, dropped] = await atOnce(
        round,
        () => h.gql(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { __typename ${ERROR} } }`, { id: workflowId, d: storeInto(`Race ${round}`, table) }, owner.key),
        () => h.gql(`mutation($n: String!) { dropTable(name: $n) { __typename ${ERROR} } }`, { n: table }, owner.key),
      );
      await oneWon(owner, table, outcome(saved.body, 'updateWorkflow'), outcome(dropped.body, 'dropTable'), workflowId, round);
      // A refused update left the workflow as it was (naming no table): delete it too, to stay under the account's limits.
      if (outcome(saved.body, 'updateWorkflow') !== 'Workflow') expect((await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id: workflowId }, owner.key)).body.data.deleteWorkflow.__typename).toBe('Workflow');
    }
  });
});

describe('tables over REST', () => {
  it('adds an entry with an API key of the account, with OpenRouter-shaped errors', async () => {
    const post = (table: string, body: string, key: string | null) =>
      fetch(`${h.url}/api/v1/tables/${table}/entries`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body });
    await createTable('rest', designer.key);
    const ok = await post('rest', JSON.stringify({ text: 'via REST' }), member.key);
    expect(ok.status).toBe(404);
    const created = await post('rest', JSON.stringify({ text: 'via REST' }), designer.key);
    expect(created.status).toBe(201);
    const entry = (await created.json()) as { id: string; data: unknown };
    expect(entry).toMatchObject({ id: expect.stringMatching(/^ent_/), data: { text: 'via REST' } });
    expect(texts(await entries('rest', { filter: { text: 'via REST' } }, designer.key))).toEqual(['via REST']);

    const cases: [string, string, string | null, number, string][] = [
      ['rest', '{"text":', designer.key, 400, 'invalid_request'],
      ['rest', JSON.stringify({ text: 'x'.repeat(2000) }), designer.key, 413, 'payload_too_large'],
      ['nope', JSON.stringify({ text: 'x' }), designer.key, 404, 'not_found'],
      ['rest', JSON.stringify({ text: 'x' }), null, 401, 'authentication'],
      ['rest', JSON.stringify({ text: 'x' }), other.key, 404, 'not_found'],
      ['BAD', JSON.stringify({ text: 'x' }), designer.key, 400, 'invalid_request'],
    ];
    for (const [table, body, key, status, type] of cases) {
      const res = await post(table, body, key);
      const answer = (await res.json()) as { error: { code: number; message: string; metadata: { error_type: string } } };
      expect(res.status, `${table} ${body.slice(0, 20)}`).toBe(status);
      expect(answer.error).toMatchObject({ code: status, metadata: { error_type: type } });
    }
  });
});

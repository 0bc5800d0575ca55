import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { tableStream } from '../../src/modules/tables/table.events.js';
import { RUN_CATEGORY } from '../../src/modules/workflows/run.events.js';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * The `entry` trigger and the table steps on the started app: a run per matching entry event, from a durable
 * checkpoint (entries written while the server was down fire after the restart, once), and a store-and-transform
 * workflow that writes into another table, idempotently.
 */
type Gql = Harness['gql'];
const ERROR = '... on DomainError { code message }';

const open = async (gql: Gql, name: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  return account;
};

const createWorkflow = async (gql: Gql, definition: unknown, key: string): Promise<string> => {
  const { body } = await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key);
  expect(body.data.createWorkflow, JSON.stringify(body.data.createWorkflow)).toMatchObject({ __typename: 'Workflow' });
  return body.data.createWorkflow.id;
};

type Run = { id: string; status: string; steps: { key: string; status: string; output: unknown }[] };
const runsOf = async (gql: Gql, workflowId: string, key: string): Promise<Run[]> => {
  const { body } = await gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id status steps { key status output } } } } }', { id: workflowId }, key);
  expect(body.errors).toBeUndefined();
  return body.data.workflowRuns.edges.map((edge: { node: Run }) => edge.node);
};
const until = async <T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > end) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};
const entryTexts = async (gql: Gql, table: string, key: string) => {
  const { body } = await gql('query($t: String!) { entries(table: $t) { edges { node { data } } } }', { t: table }, key);
  return body.data.entries.edges.map((edge: { node: { data: unknown } }) => edge.node.data);
};

let h: Harness | null = null;
afterAll(async () => {
  await h?.stop();
});

describe('entry trigger', () => {
  it('an entry inserted while the server was stopped triggers its run after the restart, exactly once', { timeout: 60_000 }, async () => {
    h = await startHarness();
    const dataDir = h.dataDir;
    const owner = await open(h.gql, 'Eve Entries');
    await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, owner.key);
    const tableId = (await h.gql('{ tables { id name } }', {}, owner.key)).body.data.tables[0].id as string;
    const workflowId = await createWorkflow(
      h.gql,
      {
        name: 'On inbox',
        trigger: { type: 'entry', table: 'inbox', on: 'insert', filter: { text: { $exists: true } } },
        steps: [{ key: 'echo', type: 'action.transform', input: { expression: '={"text": trigger.entry.text, "id": trigger.entry.id, "table": trigger.table}' } }],
      },
      owner.key,
    );
    // One that fires while running, so the checkpoint is past it before the stop.
    await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "live" }) { __typename } }', {}, owner.key);
    await until(() => runsOf(h!.gql, workflowId, owner.key), (runs) => runs.length === 1 && runs[0]!.status === 'SUCCEEDED');
    // Filtered out: no text field.
    await h.gql('mutation { insertEntry(table: "inbox", entry: { other: 1 }) { __typename } }', {}, owner.key);
    await h.stop({ keepData: true });

    // Written while the server is down (as another process would): straight into the log.
    const store = openSqliteEventStore({ dir: dataDir });
    await store.append(tableStream(owner.id, 'inbox'), [
      { type: 'EntryAdded', data: { tableId, accountId: owner.id, table: 'inbox', entryId: 'ent_0whiledown0000', entry: { text: 'while down' }, at: new Date().toISOString() } },
    ]);
    await store.close();

    h = await startHarness({}, dataDir);
    const runs = await until(() => runsOf(h!.gql, workflowId, owner.key), (list) => list.length === 2 && list.every((run) => run.status === 'SUCCEEDED'));
    expect(runs.map((run) => run.steps[0]!.output).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { text: 'live', id: expect.stringMatching(/^ent_/), table: 'inbox' },
      { text: 'while down', id: 'ent_0whiledown0000', table: 'inbox' },
    ]);

    // Another restart, and one that forgets the checkpoint (the events delivered again): still one run per entry.
    await h.stop({ keepData: true });
    h = await startHarness({}, dataDir);
    await h.running.core.readStore.reset('trigger:entry', []);
    await h.stop({ keepData: true });
    h = await startHarness({}, dataDir);
    // Proof that the replay is over (a quiet 300 ms proved nothing on a loaded host): an entry inserted now comes after
    // the replayed ones in the log, and the follower handles them in order, so once its run is on record, so is any
    // run the replay started.
    await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "after the replay" }) { __typename } }', {}, owner.key);
    const after = await until(() => runsOf(h!.gql, workflowId, owner.key), (list) => list.some((run) => run.status === 'SUCCEEDED' && (run.steps[0]!.output as { text: string }).text === 'after the replay'));
    expect(after.map((run) => (run.steps[0]!.output as { text: string } | null)?.text).sort()).toEqual(['after the replay', 'live', 'while down']);
    await h.stop();
    h = null;
  });

  it('a store-and-transform workflow: each inbox entry is stored, transformed, into another table; updates fire only on-update workflows', { timeout: 60_000 }, async () => {
    h = await startHarness();
    const owner = await open(h.gql, 'Sam Store');
    const stranger = await open(h.gql, 'Stan Stranger');
    for (const table of ['inbox', 'answers', 'seen']) await h.gql('mutation($n: String!) { createTable(name: $n) { __typename } }', { n: table }, owner.key);
    await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, stranger.key);
    const storeId = await createWorkflow(
      h.gql,
      {
        name: 'Store answers',
        trigger: { type: 'entry', table: 'inbox', on: 'insert' },
        steps: [
          { key: 'shout', type: 'action.transform', input: { expression: '=$uppercase(trigger.entry.text)' } },
          { key: 'store', type: 'action.storeEntry', input: { table: 'answers', entry: { source: '=trigger.entry.id', text: '=steps.shout' } } },
          { key: 'seen', type: 'action.upsertEntry', input: { table: 'seen', match: { text: '=trigger.entry.text' } } },
          { key: 'find', type: 'search.entries', input: { table: 'answers', filter: { source: '=trigger.entry.id' } } },
        ],
      },
      owner.key,
    );
    const updateId = await createWorkflow(
      h.gql,
      { name: 'On update', trigger: { type: 'entry', table: 'inbox', on: 'update' }, steps: [{ key: 'echo', type: 'action.transform', input: { expression: '={"text": trigger.entry.text, "on": trigger.on}' } }] },
      owner.key,
    );
    const inserted = await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "hello" }) { ... on Entry { id } } }', {}, owner.key);
    await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "hello" }) { __typename } }', {}, owner.key);
    // Another account's entry in its own "inbox" starts none of the owner's runs.
    await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "not yours" }) { __typename } }', {}, stranger.key);
    const runs = await until(() => runsOf(h!.gql, storeId, owner.key), (list) => list.length === 2 && list.every((run) => run.status === 'SUCCEEDED'));
    expect(runs.map((run) => run.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    const answers = (await entryTexts(h.gql, 'answers', owner.key)) as { text: string }[];
    expect(answers.map((answer) => answer.text)).toEqual(['HELLO', 'HELLO']);
    // find-or-create: the second "hello" found the first one's entry.
    expect(await entryTexts(h.gql, 'seen', owner.key)).toEqual([{ text: 'hello' }]);
    const created = runs.map((run) => (run.steps.find((step) => step.key === 'seen')!.output as { created: boolean }).created).sort();
    expect(created).toEqual([false, true]);
    const found = runs[0]!.steps.find((step) => step.key === 'find')!.output as { count: number; first: { text: string } };
    expect(found).toMatchObject({ count: 1, first: { text: 'HELLO' } });
    expect(await runsOf(h.gql, updateId, owner.key)).toEqual([]);

    await h.gql('mutation($id: ID!) { updateEntry(table: "inbox", id: $id, entry: { text: "changed" }) { __typename } }', { id: inserted.body.data.insertEntry.id }, owner.key);
    const updates = await until(() => runsOf(h!.gql, updateId, owner.key), (list) => list.length === 1 && list[0]!.status === 'SUCCEEDED');
    expect(updates[0]!.steps[0]!.output).toEqual({ text: 'changed', on: 'update' });
    expect((await runsOf(h.gql, storeId, owner.key)).length).toBe(2);
  });

  it('a workflow that stores an entry into the table that triggers it stops at the chain depth limit (CHAIN_TOO_DEEP)', { timeout: 60_000 }, async () => {
    h ??= await startHarness();
    const owner = await open(h.gql, 'Lou Loop');
    await h.gql('mutation { createTable(name: "echo") { __typename } }', {}, owner.key);
    const loop = await createWorkflow(
      h.gql,
      { name: 'Feeds itself', trigger: { type: 'entry', table: 'echo' }, steps: [{ key: 'again', type: 'action.storeEntry', input: { table: 'echo', entry: { n: '=trigger.entry.n + 1' } } }] },
      owner.key,
    );
    await h.gql('mutation { insertEntry(table: "echo", entry: { n: 0 }) { __typename } }', {}, owner.key);
    // The first run (depth 0, caused by a person) and five more (depths 1..5) store an entry each; the seventh is refused.
    const runs = await until(
      () => runsOf(h!.gql, loop, owner.key),
      (list) => list.length >= 7 && list.every((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED'),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const settled = await runsOf(h.gql, loop, owner.key);
    expect(settled).toHaveLength(7);
    expect(settled.filter((run) => run.status === 'SUCCEEDED')).toHaveLength(6);
    expect(settled.filter((run) => run.status === 'FAILED')).toHaveLength(1);
    expect(runs.length).toBe(7);
    const numbers = ((await entryTexts(h.gql, 'echo', owner.key)) as { n: number }[]).map((entry) => entry.n).sort((a, b) => a - b);
    expect(numbers).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("a client's X-Request-Id never places a run in a chain: only an entry a run's own step stored does, and another account's run id is not probed", { timeout: 60_000 }, async () => {
    h ??= await startHarness();
    const a = await open(h.gql, 'Ann Chain');
    const b = await open(h.gql, 'Ben Borrow');
    for (const account of [a, b]) await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, account.key);
    const onInbox = (key: string) => createWorkflow(h!.gql, { name: 'On inbox', trigger: { type: 'entry', table: 'inbox' }, steps: [{ key: 'echo', type: 'action.transform', input: { expression: '=trigger.entry.via' } }] }, key);
    const aOnInbox = await onInbox(a.key);
    const bOnInbox = await onInbox(b.key);
    // A's run R stores an entry into A's inbox: the run that entry starts is R's + 1 in R's chain.
    const writer = await createWorkflow(h.gql, { name: 'Writer', trigger: { type: 'manual' }, steps: [{ key: 'store', type: 'action.storeEntry', input: { table: 'inbox', entry: { via: 'step' } } }] }, a.key);
    const started = await h.gql('mutation($id: ID!) { runWorkflow(id: $id, input: {}) { ... on WorkflowRun { id } } }', { id: writer }, a.key);
    const runId = started.body.data.runWorkflow.id as string;
    expect(runId).toMatch(/^run_/);

    type Placed = { status: string; depth: number; steps: { output: unknown }[] };
    const placed = async (workflowId: string, key: string): Promise<Placed[]> =>
      (await h!.gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { status depth steps { output } } } } }', { id: workflowId }, key)).body.data.workflowRuns.edges.map((edge: { node: Placed }) => edge.node);
    const depths = (runs: Placed[]) => Object.fromEntries(runs.map((run) => [run.steps[0]?.output, run.depth]));
    const settled = (count: number) => (runs: Placed[]) => runs.length === count && runs.every((run) => run.status === 'SUCCEEDED');
    expect(depths(await until(() => placed(aOnInbox, a.key), settled(1)))).toEqual({ step: 1 });

    // Entries written by clients naming R (or a run that does not exist) as their request id, over REST and GraphQL.
    const restInsert = async (key: string, requestId: string, via: string) => {
      const res = await fetch(`${h!.url}/api/v1/tables/inbox/entries`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': requestId }, body: JSON.stringify({ via }) });
      expect(res.status).toBe(201);
    };
    const gqlInsert = async (key: string, requestId: string, via: string) => {
      const res = await fetch(`${h!.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify({ query: 'mutation($e: JSON!) { insertEntry(table: "inbox", entry: $e) { __typename } }', variables: { e: { via } } }),
      });
      expect(((await res.json()) as { data: { insertEntry: { __typename: string } } }).data.insertEntry.__typename).toBe('Entry');
    };
    await restInsert(b.key, runId, 'b rest');
    await gqlInsert(b.key, runId, 'b graphql');
    await restInsert(b.key, 'run_doesnotexist0000', 'b missing run');
    // Not even the run's own account places a run in R's chain by naming it.
    await restInsert(a.key, runId, 'a rest');

    // Every client-written entry's run is at depth 0, outside any chain: B's runs answer the same whether R exists or not.
    expect(depths(await until(() => placed(bOnInbox, b.key), settled(3)))).toEqual({ 'b rest': 0, 'b graphql': 0, 'b missing run': 0 });
    expect(depths(await until(() => placed(aOnInbox, a.key), settled(2)))).toEqual({ step: 1, 'a rest': 0 });
    // And none of them is counted in R's chain (what MAX_RUNS_PER_CHAIN counts by).
    const inChain = (await h.running.core.eventStore.readAll({ filter: { categories: [RUN_CATEGORY], eventTypes: ['RunStarted'] } })).filter((event) => event.type === 'RunStarted' && (event.data as { chain?: string }).chain === runId);
    expect(inChain).toHaveLength(1);
  });

  it('lists triggered runs (whose ids are derived hashes) in the order they began, and pages through them in that order', { timeout: 60_000 }, async () => {
    h ??= await startHarness();
    const owner = await open(h.gql, 'Ora Order');
    await h.gql('mutation { createTable(name: "queue") { __typename } }', {}, owner.key);
    const id = await createWorkflow(h.gql, { name: 'In order', trigger: { type: 'entry', table: 'queue' }, steps: [{ key: 'n', type: 'action.transform', input: { expression: '=trigger.entry.n' } }] }, owner.key);
    const count = 8;
    for (let n = 1; n <= count; n++) {
      await h.gql('mutation($n: Int!) { insertEntry(table: "queue", entry: { n: $n }) { __typename } }', { n }, owner.key);
      await until(() => runsOf(h!.gql, id, owner.key), (list) => list.length === n && list.every((run) => run.status === 'SUCCEEDED'));
    }
    const page = async (after: string | null) =>
      (await h!.gql('query($id: ID!, $after: String) { workflowRuns(workflowId: $id, first: 3, after: $after) { edges { cursor node { id steps { output } } } pageInfo { hasNextPage } } }', { id, after }, owner.key)).body.data.workflowRuns;
    const seen: unknown[] = [];
    const ids: string[] = [];
    for (let after: string | null = null; ; ) {
      const p: { edges: { cursor: string; node: { id: string; steps: { output: unknown }[] } }[]; pageInfo: { hasNextPage: boolean } } = await page(after);
      seen.push(...p.edges.map((edge) => edge.node.steps[0]!.output));
      ids.push(...p.edges.map((edge) => edge.node.id));
      if (!p.pageInfo.hasNextPage) break;
      after = p.edges.at(-1)!.cursor;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The ids alone would not give that order (they are hashes of the entry events).
    expect([...ids].sort()).not.toEqual(ids);
  });

  it('refuses an entry trigger with a code-running filter or a bad table name when the workflow is saved', async () => {
    h ??= await startHarness();
    const owner = await open(h.gql, 'Val Validate');
    for (const trigger of [
      { type: 'entry', table: 'inbox', filter: { $where: 'true' } },
      { type: 'entry', table: 'In Box' },
      { type: 'entry', table: 'inbox', on: 'delete' },
    ]) {
      const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ${ERROR} } }`, { d: { name: 'x', trigger, steps: [{ key: 'a', type: 'action.transform', input: {} }] } }, owner.key);
      expect(body.data.createWorkflow, JSON.stringify(trigger)).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/trigger/) });
    }
  });
});

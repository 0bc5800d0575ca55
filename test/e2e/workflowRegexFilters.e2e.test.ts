import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { workflowStream } from '../../src/modules/workflows/workflow.events.js';
import { eventually, within } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * Regular expressions in filters and expressions run on the server's one thread: one that V8's linear-time engine
 * cannot run (a lookahead) held it for ever (`.*` twelve times then `(?=x)` against 40 a's), and an entry trigger's
 * replayed it at every start. Refused when saved; one saved before the check matches nothing instead of hanging.
 */
type Gql = Harness['gql'];
const ERROR = '... on DomainError { code message }';
const HANGS = '.*.*.*.*.*.*.*.*.*.*.*.*(?=x)';
const FORTY_AS = 'a'.repeat(40);

const open = async (gql: Gql, name: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  return account;
};
const create = async (gql: Gql, definition: unknown, key: string) =>
  (await gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, key)).body.data.createWorkflow;
const runsOf = async (gql: Gql, workflowId: string, key: string): Promise<{ status: string }[]> =>
  (await gql('query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { status } } } }', { id: workflowId }, key)).body.data.workflowRuns.edges.map((edge: { node: { status: string } }) => edge.node);
const health = async (h: Harness) => (await within('/health answers', fetch(`${h.url}/health`))).status;
const transform = [{ key: 't', type: 'action.transform', input: { expression: '=1' } }];

let h: Harness | null = null;
afterAll(async () => {
  await h?.stop();
});

describe('regular expressions a designer writes', () => {
  it('are refused when saved if the linear-time engine cannot run them: trigger filters, step filters, expressions, entry queries', async () => {
    h = await startHarness();
    const owner = await open(h.gql, 'Rex Regex');
    await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, owner.key);
    const refused: [string, unknown][] = [
      ['entry trigger filter', { name: 'e', trigger: { type: 'entry', table: 'inbox', on: 'insert', filter: { text: { $regex: HANGS } } }, steps: transform }],
      ['event trigger filter', { name: 'v', trigger: { type: 'event', event: 'custom.x', filter: { 'data.text': { $regex: `(?<!b)${HANGS}` } } }, steps: transform }],
      ['search.entries filter', { name: 's', trigger: { type: 'manual' }, steps: [{ key: 'f', type: 'search.entries', input: { table: 'inbox', filter: { text: { $regex: HANGS } } } }] }],
      ['storeEntry match', { name: 'm', trigger: { type: 'manual' }, steps: [{ key: 'f', type: 'action.storeEntry', input: { table: 'inbox', entry: { a: 1 }, match: { text: { $regex: '(a)\\1' } } } }] }],
      ['expression regex', { name: 'x', trigger: { type: 'manual' }, steps: [{ key: 'f', type: 'action.transform', input: { expression: `=$contains("${FORTY_AS}", /${HANGS}/)` } }] }],
    ];
    for (const [what, definition] of refused) {
      const answer = await create(h.gql, definition, owner.key);
      expect(answer, what).toMatchObject({ code: 'VALIDATION' });
      expect(answer.message, what).toMatch(/lookahead and lookbehind|back-references/);
    }
    const query = await h.gql('query($f: JSON) { entries(table: "inbox", filter: $f) { edges { node { id } } } }', { f: { text: { $regex: HANGS } } }, owner.key);
    expect(query.body.errors?.[0]).toMatchObject({ extensions: { code: 'VALIDATION' }, message: expect.stringMatching(/unsafe|lookahead/) });

    // Case-insensitive filters still work (the linear engine has no `i`: the cases are written out).
    const shout = await create(h.gql, { name: 'i', trigger: { type: 'entry', table: 'inbox', on: 'insert', filter: { text: { $regex: '^hél+o', $options: 'i' } } }, steps: transform }, owner.key);
    expect(shout.__typename).toBe('Workflow');
    for (const text of ['HÉLLO there', 'hello', 'Héllo']) await h.gql('mutation($t: String!) { insertEntry(table: "inbox", entry: { text: $t }) { __typename } }', { t: text }, owner.key);
    const found = await h.gql('query($f: JSON) { entries(table: "inbox", filter: $f) { edges { node { data } } } }', { f: { text: { $regex: '^hél+o', $options: 'i' } } }, owner.key);
    expect(found.body.data.entries.edges.map((edge: { node: { data: { text: string } } }) => edge.node.data.text)).toEqual(['HÉLLO there', 'Héllo']);
    await eventually('two runs of the case-insensitive trigger', async () => (await runsOf(h!.gql, shout.id, owner.key)).filter((run) => run.status === 'SUCCEEDED').length === 2);
    await h.stop();
    h = null;
  });

  it('a filter saved before the check matches nothing, and the server keeps answering, also when the entry replays at a restart', { timeout: 60_000 }, async () => {
    h = await startHarness();
    const dataDir = h.dataDir;
    const owner = await open(h.gql, 'Olga Old');
    await h.gql('mutation { createTable(name: "inbox") { __typename } }', {}, owner.key);
    const old = await create(h.gql, { name: 'old', trigger: { type: 'entry', table: 'inbox', on: 'insert', filter: { text: { $regex: 'x' } } }, steps: transform }, owner.key);
    // Its neighbour without a filter: once it has run for an entry, the trigger has been through that entry.
    const witness = await create(h.gql, { name: 'witness', trigger: { type: 'entry', table: 'inbox', on: 'insert' }, steps: transform }, owner.key);
    await h.stop({ keepData: true });

    // As saved by an earlier version, which let a lookahead through.
    const store = openSqliteEventStore({ dir: dataDir });
    await store.append(workflowStream(old.id), [
      {
        type: 'WorkflowUpdated',
        data: { workflowId: old.id, version: 2, at: new Date().toISOString(), definition: { name: 'old', trigger: { type: 'entry', table: 'inbox', on: 'insert', filter: { text: { $regex: HANGS } } }, steps: transform } },
      },
    ]);
    await store.close();

    h = await startHarness({}, dataDir);
    await h.gql('mutation($t: String!) { insertEntry(table: "inbox", entry: { text: $t }) { __typename } }', { t: FORTY_AS }, owner.key);
    await eventually('the witness ran for the entry', async () => (await runsOf(h!.gql, witness.id, owner.key)).length === 1);
    expect(await health(h)).toBe(200);
    expect(await runsOf(h.gql, old.id, owner.key)).toEqual([]);

    // Replayed from the start at the next start: the trigger goes through the entry again, and the server answers.
    await h.running.core.readStore.reset('trigger:entry', []);
    await h.stop({ keepData: true });
    h = await startHarness({}, dataDir);
    await h.gql('mutation { insertEntry(table: "inbox", entry: { text: "after" }) { __typename } }', {}, owner.key);
    await eventually('the witness ran for the next entry', async () => (await runsOf(h!.gql, witness.id, owner.key)).length === 2);
    expect(await health(h)).toBe(200);
    expect(await runsOf(h.gql, old.id, owner.key)).toEqual([]);
    await h.stop();
    h = null;
  });
});

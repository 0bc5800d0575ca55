import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TABLE_ENTRIES } from '../../projections/tables.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { tableStream, type EntryAdded } from '../../src/modules/tables/table.events.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

/**
 * Table entries and restricted keys (a spending limit, or issued to an app), over GraphQL and REST: such a key lists,
 * reads, filters, updates and deletes only the entries it wrote (over either interface, or through the runs it started
 * or caused); any other entry of the account is NOT_FOUND as a missing id and left out of its lists and counts. Full
 * keys see every entry; workflow searches see the whole table.
 */
type Gql = Harness['gql'];
const ERROR = '... on DomainError { code message }';
const ENTRY = `__typename ... on Entry { id data } ${ERROR}`;
const MISSING = 'ent_0000000000000000000000';

let h: Harness;

const open = async (gql: Gql, name: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  const created = await gql('mutation { createApiKey(name: "app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, account.key);
  return { ...account, limited: created.body.data.createApiKey.secret as string };
};

const createTable = async (name: string, key: string) =>
  expect((await h.gql(`mutation($n: String!) { createTable(name: $n) { __typename ${ERROR} } }`, { n: name }, key)).body.data.createTable).toEqual({ __typename: 'Table' });
const insert = async (table: string, entry: unknown, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($t: String!, $e: JSON!) { insertEntry(table: $t, entry: $e) { ${ENTRY} } }`, { t: table, e: entry }, key);
  expect(body.data.insertEntry.__typename, JSON.stringify(body)).toBe('Entry');
  return body.data.insertEntry.id;
};
const post = (table: string, entry: unknown, key: string) =>
  fetch(`${h.url}/api/v1/tables/${table}/entries`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(entry) });
const page = async (table: string, key: string, args: { filter?: unknown; sort?: unknown; first?: number } = {}) => {
  const { body } = await h.gql(
    'query($t: String!, $f: JSON, $s: JSON, $first: Int) { entries(table: $t, filter: $f, sort: $s, first: $first) { edges { node { id data } } pageInfo { hasNextPage } } }',
    { t: table, f: args.filter, s: args.sort, first: args.first },
    key,
  );
  expect(body.errors, JSON.stringify(body)).toBeUndefined();
  return body.data.entries as { edges: { node: { id: string; data: Record<string, unknown> } }[]; pageInfo: { hasNextPage: boolean } };
};
const texts = async (table: string, key: string, args: { filter?: unknown; sort?: unknown; first?: number } = {}) => (await page(table, key, args)).edges.map((edge) => edge.node.data['text']);
const counts = async (key: string) => Object.fromEntries(((await h.gql('{ tables { name entryCount } }', {}, key)).body.data.tables as { name: string; entryCount: number }[]).map((t) => [t.name, t.entryCount]));
const update = (id: string, entry: unknown, key: string) => h.gql('mutation($id: ID!, $e: JSON!) { updateEntry(table: "notes", id: $id, entry: $e) { id data } }', { id, e: entry }, key);
const remove = (id: string, key: string) => h.gql('mutation($id: ID!) { deleteEntry(table: "notes", id: $id) { id } }', { id }, key);

/** The refusal of an entry a restricted key did not write: NOT_FOUND, with the words of a missing id. */
const expectMissing = async (res: { body: any }, id: string, missing: { body: any }) => {
  expect(res.body.data).toBeNull();
  expect(res.body.errors[0].extensions.code).toBe('NOT_FOUND');
  expect(res.body.errors[0].message.replace(id, 'X')).toBe(missing.body.errors[0].message.replace(MISSING, 'X'));
};

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  // The upgrade case below starts the server again over the same folder, which stop() then keeps.
  const dir = h.dataDir;
  await h.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('table entries and restricted keys', () => {
  it("lists, counts, filters, updates and deletes for a restricted key only the entries it wrote; another key's are NOT_FOUND as missing ones", async () => {
    const owner = await open(h.gql, 'Tess Tables');
    await createTable('notes', owner.key);
    const secret = await insert('notes', { text: 'owner secret', n: 1 }, owner.key);
    const own = await insert('notes', { text: 'app note', n: 2 }, owner.limited);
    const posted = await post('notes', { text: 'app rest', n: 3 }, owner.limited);
    expect(posted.status).toBe(201);
    const rest = ((await posted.json()) as { id: string }).id;

    // Its lists, filters, pages and counts hold only its own entries.
    expect(await texts('notes', owner.limited)).toEqual(['app note', 'app rest']);
    expect(await texts('notes', owner.limited, { filter: { id: secret } })).toEqual([]);
    expect(await texts('notes', owner.limited, { filter: { text: { $regex: 'secret' } } })).toEqual([]);
    expect(await texts('notes', owner.limited, { sort: { n: -1 } })).toEqual(['app rest', 'app note']);
    expect(await page('notes', owner.limited, { first: 2 })).toMatchObject({ pageInfo: { hasNextPage: false } });
    expect(await counts(owner.limited)).toEqual({ notes: 2 });
    // The full key sees every entry.
    expect(await texts('notes', owner.key)).toEqual(['owner secret', 'app note', 'app rest']);
    expect(await counts(owner.key)).toEqual({ notes: 3 });

    // Another key's entry is, to it, a missing one: not updated, not deleted, and not told apart.
    const missingUpdate = await update(MISSING, { text: 'x' }, owner.limited);
    const missingDelete = await remove(MISSING, owner.limited);
    await expectMissing(await update(secret, { text: 'overwritten' }, owner.limited), secret, missingUpdate);
    await expectMissing(await remove(secret, owner.limited), secret, missingDelete);
    expect(await texts('notes', owner.key, { filter: { id: secret } })).toEqual(['owner secret']);

    // Its own it updates and deletes; the full key's update of its entry leaves it its own.
    expect((await update(own, { text: 'app note 2', n: 2 }, owner.limited)).body.data.updateEntry).toEqual({ id: own, data: { text: 'app note 2', n: 2 } });
    expect((await update(own, { text: 'app note 3', n: 2 }, owner.key)).body.data.updateEntry).toEqual({ id: own, data: { text: 'app note 3', n: 2 } });
    expect((await remove(rest, owner.limited)).body.data.deleteEntry).toEqual({ id: rest });
    expect(await texts('notes', owner.limited)).toEqual(['app note 3']);
    expect(await texts('notes', owner.key)).toEqual(['owner secret', 'app note 3']);
    // Nothing in an answer names a key.
    expect(JSON.stringify(await page('notes', owner.key))).not.toMatch(/key_|keyId/);

    // A second restricted key of the account sees none of the first's.
    const second = (await h.gql('mutation { createApiKey(name: "other app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, owner.key)).body.data.createApiKey.secret as string;
    expect(await texts('notes', second)).toEqual([]);
    expect(await counts(second)).toEqual({ notes: 0 });
    await expectMissing(await update(own, { text: 'taken' }, second), own, missingUpdate);
  });

  it("shows a restricted key the entries its runs stored, not those of the owner's or a webhook's runs; its runs' searches see the whole table", async () => {
    const owner = await open(h.gql, 'Quinn Questions');
    for (const table of ['facts', 'questions', 'answers']) await createTable(table, owner.key);
    for (const text of ['a', 'b', 'c']) await insert('facts', { text }, owner.key);
    const store = [
      { key: 'look', type: 'search.entries', input: { table: 'facts', limit: 100 } },
      { key: 'store', type: 'action.storeEntry', input: { table: 'answers', entry: { text: '=trigger.entry.text ? trigger.entry.text : trigger.body.text', facts: '=steps.look.count' } } },
    ];
    const workflow = async (trigger: unknown) => {
      const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: { name: 'Answer', trigger, steps: store } }, owner.key);
      expect(body.data.createWorkflow.__typename, JSON.stringify(body)).toBe('Workflow');
      return body.data.createWorkflow.id as string;
    };
    await workflow({ type: 'entry', table: 'questions', on: 'insert' });
    const hook = await workflow({ type: 'webhook', respond: 'async' });
    const hookSecret = (await h.gql('mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } } }', { id: hook }, owner.key)).body.data.rotateWebhookSecret.secret as string;

    await insert('questions', { text: 'from the app' }, owner.limited);
    expect((await post('questions', { text: 'from the app over REST' }, owner.limited)).status).toBe(201);
    await insert('questions', { text: 'from the owner' }, owner.key);
    const hooked = await fetch(`${h.url}/api/v1/workflows/${hook}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-switchyard-webhook-secret': hookSecret }, body: JSON.stringify({ text: 'from a webhook' }) });
    expect(hooked.status).toBe(202);

    const all = await eventually('four answers', async () => {
      const edges = (await page('answers', owner.key)).edges;
      return edges.length === 4 && edges;
    });
    expect(all.map((edge) => edge.node.data).sort((a, b) => String(a['text']).localeCompare(String(b['text'])))).toEqual([
      { text: 'from a webhook', facts: 3 },
      { text: 'from the app', facts: 3 },
      { text: 'from the app over REST', facts: 3 },
      { text: 'from the owner', facts: 3 },
    ]);
    // The runs its writes caused stored its answers (having searched the owner's facts); the others' are not its.
    expect((await texts('answers', owner.limited)).sort()).toEqual(['from the app', 'from the app over REST']);
    expect(await counts(owner.limited)).toEqual({ answers: 2, facts: 0, questions: 2 });
    const others = all.filter((edge) => !String(edge.node.data['text']).startsWith('from the app')).map((edge) => edge.node.id);
    const missing = await h.gql('mutation($id: ID!) { deleteEntry(table: "answers", id: $id) { id } }', { id: MISSING }, owner.limited);
    for (const id of others) {
      await expectMissing(await h.gql('mutation($id: ID!) { deleteEntry(table: "answers", id: $id) { id } }', { id }, owner.limited), id, missing);
    }
  });
});

describe('entries written before entries recorded their writer', () => {
  it("are a restricted key's own when their event's metadata names it (as GraphQL and REST writes did), rebuilt so at the upgrade; those naming no key stay hidden", { timeout: 60_000 }, async () => {
    const owner = await open(h.gql, 'Olga Older');
    const other = (await h.gql('mutation { createApiKey(name: "other app", limit: 100000000, limitReset: NEVER) { ... on CreatedApiKey { secret } } }', {}, owner.key)).body.data.createApiKey.secret as string;
    await createTable('notes', owner.key);
    await insert('notes', { text: 'app new' }, owner.limited);
    await insert('notes', { text: 'other new' }, other);
    const tableId = ((await h.gql('{ tables { id name } }', {}, owner.key)).body.data.tables as { id: string; name: string }[]).find((t) => t.name === 'notes')!.id;
    const dataDir = h.dataDir;
    await h.stop({ keepData: true });

    // As the version before stored them: the writer's key in the event's metadata only (none for a run's step).
    const events = openSqliteEventStore({ dir: dataDir });
    const stream = tableStream(owner.id, 'notes');
    const written = (await events.readStream(stream)) as RecordedEvent<EntryAdded>[];
    const keyOf = (text: string) => written.find((event) => event.type === 'EntryAdded' && event.data.entry['text'] === text)!.data.keyId!;
    const at = '2026-01-01T00:00:00.000Z';
    const old = (entryId: string, text: string, keyId?: string) => ({
      type: 'EntryAdded',
      data: { tableId, accountId: owner.id, table: 'notes', entryId, entry: { text }, at },
      metadata: { actor: owner.id, correlationId: `req_${entryId}`, ...(keyId !== undefined && { keyId }), at },
    });
    const appended = await events.append(stream, [old('ent_oldapp', 'app old', keyOf('app new')), old('ent_oldother', 'other old', keyOf('other new')), old('ent_oldnone', 'nobody old')], {
      expectedRevision: written.at(-1)!.revision,
    });
    await events.close();
    // And the read model as the version before built it from them: no writer on any of them.
    const reads = await openEmbeddedReadStore({ dir: dataDir });
    await reads.commit(
      [old('ent_oldapp', 'app old'), old('ent_oldother', 'other old'), old('ent_oldnone', 'nobody old')].map(({ data }) => ({
        collection: TABLE_ENTRIES,
        id: data.entryId,
        doc: { _id: data.entryId, tableId, accountId: owner.id, keyId: null, data: data.entry, createdAt: at, updatedAt: at },
      })),
      { projection: 'tableEntries', version: 2, position: appended.position },
    );
    await reads.close();
    h = await startHarness({}, dataDir);

    expect((await texts('notes', owner.limited)).sort()).toEqual(['app new', 'app old']);
    expect((await texts('notes', other)).sort()).toEqual(['other new', 'other old']);
    expect(await counts(owner.limited)).toEqual({ notes: 2 });
    expect((await texts('notes', owner.key)).sort()).toEqual(['app new', 'app old', 'nobody old', 'other new', 'other old']);
    // It changes its own old entry; another key's and one naming no key are, to it, missing ones.
    expect((await update('ent_oldapp', { text: 'app old 2' }, owner.limited)).body.data.updateEntry).toEqual({ id: 'ent_oldapp', data: { text: 'app old 2' } });
    const missingUpdate = await update(MISSING, { text: 'x' }, owner.limited);
    const missingDelete = await remove(MISSING, owner.limited);
    await expectMissing(await update('ent_oldother', { text: 'taken' }, owner.limited), 'ent_oldother', missingUpdate);
    await expectMissing(await remove('ent_oldnone', owner.limited), 'ent_oldnone', missingDelete);
    expect((await remove('ent_oldapp', owner.limited)).body.data.deleteEntry).toEqual({ id: 'ent_oldapp' });
    expect((await texts('notes', owner.key)).sort()).toEqual(['app new', 'nobody old', 'other new', 'other old']);
  });
});

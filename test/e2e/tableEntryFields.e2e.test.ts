import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { tableStream } from '../../src/modules/tables/table.events.js';
import { TABLE_ENTRIES, TABLES } from '../../projections/tables.js';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * What an entry may hold, over GraphQL and REST: field names that filters and sorts can name (not `__proto__`,
 * `constructor` or `prototype`, which were stored, echoed, and then dropped by every read or never searchable) and
 * numbers JSON can hold (`1e999` was stored as null). Both refused with a VALIDATION error naming the path, storing
 * nothing; an entry stored with such a name before still reads, rebuilds and updates.
 */
type Gql = Harness['gql'];
const ERROR = '... on DomainError { code message details }';
const ENTRY = `__typename ... on Entry { id data } ${ERROR}`;

let h: Harness;
let owner: { id: string; key: string };

const open = async (gql: Gql, name: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  return account;
};
/** GraphQL over a body written by hand: JSON.stringify cannot write `1e999`, and makes `__proto__` a prototype in a literal. */
const rawGql = async (body: string, key: string) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
  (await (await fetch(`${h.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body })).json()) as any;
const insertRaw = async (table: string, entryJson: string) =>
  (await rawGql(`{"query":"mutation($t: String!, $e: JSON!) { insertEntry(table: $t, entry: $e) { ${ENTRY} } }","variables":{"t":"${table}","e":${entryJson}}}`, owner.key)).data.insertEntry;
const updateRaw = async (table: string, id: string, entryJson: string) =>
  (await rawGql(`{"query":"mutation($t: String!, $id: ID!, $e: JSON!) { updateEntry(table: $t, id: $id, entry: $e) { __typename id data } }","variables":{"t":"${table}","id":"${id}","e":${entryJson}}}`, owner.key));
const post = (table: string, body: string) =>
  fetch(`${h.url}/api/v1/tables/${table}/entries`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.key}` }, body });
const entriesOf = async (table: string) =>
  (await h.gql('query($t: String!) { entries(table: $t) { edges { node { id data } } } }', { t: table }, owner.key)).body.data.entries.edges.map((edge: { node: unknown }) => edge.node) as {
    id: string;
    data: Record<string, unknown>;
  }[];

beforeAll(async () => {
  h = await startHarness();
  owner = await open(h.gql, 'Fiona Fields');
  await h.gql('mutation { createTable(name: "fields") { __typename } }', {}, owner.key);
});
afterAll(async () => {
  await h.stop();
});

describe('entry field names', () => {
  it('refuses __proto__, constructor and prototype at any depth, over GraphQL (insert and update) and REST, naming the path', async () => {
    for (const [entry, path] of [
      ['{"__proto__":{"isAdmin":true},"text":"p"}', 'entry'],
      ['{"constructor":1}', 'entry'],
      ['{"a":{"prototype":{"x":1}}}', 'entry.a'],
      ['{"list":[1,{"__proto__":{"text":"HELLO"}}]}', 'entry.list[1]'],
    ] as const) {
      const refused = await insertRaw('fields', entry);
      expect(refused, entry).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { reason: 'bad_field_name', path } });
      expect(refused.message).toMatch(/__proto__, constructor, prototype/);
      const res = await post('fields', entry);
      expect(res.status, entry).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(new RegExp(`at ${path.replace(/[[\]]/g, '\\$&')}: .*__proto__, constructor, prototype`));
    }
    // A GraphQL literal object too.
    const literal = await rawGql(JSON.stringify({ query: `mutation { insertEntry(table: "fields", entry: { constructor: 1 }) { ${ENTRY} } }` }), owner.key);
    expect(literal.data.insertEntry).toMatchObject({ code: 'VALIDATION', details: { reason: 'bad_field_name', path: 'entry' } });

    const kept = await insertRaw('fields', '{"text":"kept"}');
    expect(kept).toMatchObject({ __typename: 'Entry', data: { text: 'kept' } });
    const update = await updateRaw('fields', kept.id, '{"__proto__":{"text":"polluted"},"constructor":1}');
    expect(update.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', reason: 'bad_field_name', path: 'entry' });
    expect(await entriesOf('fields')).toEqual([{ id: kept.id, data: { text: 'kept' } }]);
    // Other names an object has from its prototype are data like any other: stored, read and searched.
    const plain = await insertRaw('fields', '{"toString":"t","hasOwnProperty":1}');
    expect(plain).toMatchObject({ __typename: 'Entry', data: { toString: 't', hasOwnProperty: 1 } });
    const found = await h.gql('query { entries(table: "fields", filter: { toString: "t" }) { edges { node { id } } } }', {}, owner.key);
    expect(found.body.data.entries.edges).toEqual([{ node: { id: plain.id } }]);
    const sorted = await h.gql('query($f: JSON) { entries(table: "fields", filter: $f, sort: { toString: -1 }) { edges { node { id } } } }', { f: { hasOwnProperty: { $gte: 1 } } }, owner.key);
    expect(sorted.body.data.entries.edges).toEqual([{ node: { id: plain.id } }]);
  });
});

describe('entry numbers', () => {
  it('refuses numbers JSON cannot hold (1e999, -1e999) over GraphQL (variables, literals, update) and REST, naming the path, and stores nothing', async () => {
    await h.gql('mutation { createTable(name: "numbers") { __typename } }', {}, owner.key);
    for (const [entry, path] of [
      ['{"n":1e999}', 'entry.n'],
      ['{"m":-1e999,"ok":1}', 'entry.m'],
      ['{"deep":{"list":[1,2,1e400]}}', 'entry.deep.list[2]'],
    ] as const) {
      const refused = await insertRaw('numbers', entry);
      expect(refused, entry).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: `Invalid entry at ${path}: not a finite number (JSON cannot hold it)`, details: { reason: 'not_finite', path } });
      const res = await post('numbers', entry);
      expect(res.status, entry).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 400, message: `Invalid entry at ${path}: not a finite number (JSON cannot hold it)` } });
    }
    const literal = await rawGql(JSON.stringify({ query: `mutation { insertEntry(table: "numbers", entry: { n: 1e999 }) { ${ENTRY} } }` }), owner.key);
    expect(literal.data.insertEntry).toMatchObject({ code: 'VALIDATION', details: { reason: 'not_finite', path: 'entry.n' } });
    const kept = await insertRaw('numbers', '{"n":1.5e308}');
    expect(kept).toMatchObject({ __typename: 'Entry', data: { n: 1.5e308 } });
    const update = await updateRaw('numbers', kept.id, '{"n":1e999}');
    expect(update.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', reason: 'not_finite', path: 'entry.n' });
    expect(await entriesOf('numbers')).toEqual([{ id: kept.id, data: { n: 1.5e308 } }]);
  });

  it('takes -0 and numbers too small for a double (1e-400) as the 0 they parse to', async () => {
    await h.gql('mutation { createTable(name: "zeros") { __typename } }', {}, owner.key);
    const res = await post('zeros', '{"z":-0,"t":1e-400,"small":5e-324}');
    expect(res.status).toBe(201);
    expect(((await res.json()) as { data: unknown }).data).toEqual({ z: 0, t: 0, small: 5e-324 });
    expect((await entriesOf('zeros')).map((entry) => entry.data)).toEqual([{ z: 0, t: 0, small: 5e-324 }]);
  });
});

describe('entries stored before the check', () => {
  it('with a prototype name still read, rebuild and update', { timeout: 60_000 }, async () => {
    await h.gql('mutation { createTable(name: "legacy") { __typename } }', {}, owner.key);
    const before = await insertRaw('legacy', '{"text":"before"}');
    const tableId = (await h.gql('{ tables { id name } }', {}, owner.key)).body.data.tables.find((t: { name: string }) => t.name === 'legacy').id as string;
    const dataDir = h.dataDir;
    await h.stop({ keepData: true });

    // As an earlier version stored them, which let these names through.
    const store = openSqliteEventStore({ dir: dataDir });
    const old = JSON.parse('{"__proto__":{"isAdmin":true},"constructor":1,"text":"old"}') as Record<string, unknown>;
    await store.append(tableStream(owner.id, 'legacy'), [
      { type: 'EntryAdded', data: { tableId, accountId: owner.id, table: 'legacy', entryId: 'ent_legacy1', entry: old, at: new Date().toISOString() } },
    ]);
    await store.close();

    h = await startHarness({}, dataDir);
    const listed = async () => Object.fromEntries((await entriesOf('legacy')).map((entry) => [entry.id, entry.data.text]));
    expect(await listed()).toEqual({ [before.id]: 'before', ent_legacy1: 'old' });
    // Rebuilt from the events at the next start.
    await h.running.core.readStore.reset('tables', [TABLES]);
    await h.running.core.readStore.reset('tableEntries', [TABLE_ENTRIES]);
    await h.stop({ keepData: true });
    h = await startHarness({}, dataDir);
    expect(await listed()).toEqual({ [before.id]: 'before', ent_legacy1: 'old' });
    const updated = await updateRaw('legacy', 'ent_legacy1', '{"text":"renamed"}');
    expect(updated.data.updateEntry).toMatchObject({ id: 'ent_legacy1', data: { text: 'renamed' } });
    expect((await insertRaw('legacy', '{"text":"after"}')).__typename).toBe('Entry');
    expect(Object.values(await listed()).sort()).toEqual(['after', 'before', 'renamed']);
  });
});

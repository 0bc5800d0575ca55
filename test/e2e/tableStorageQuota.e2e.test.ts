import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/**
 * TABLE_MAX_BYTES_PER_ACCOUNT: the bytes of an account's live entries, across its tables, are bounded, so that what an
 * account may store is something a disk can hold (the count limits alone allowed ~655 GB, QA s42 dos #4). Each entry
 * counts its JSON plus TABLE_ENTRY_OVERHEAD_BYTES (1 KiB), what storing an entry takes beside its fields (QA s45 res #3:
 * an empty entry counted 2 bytes and took ~1.08 KB of disk). Inserts and growing updates past it are a CONFLICT naming
 * the quota; deletes, shrinking updates and drops make room; the count survives a restart (it is rebuilt from the
 * event log and the read model's entry counts).
 */
const QUOTA = 8192;
/** What one entry counts beside its JSON (TABLE_ENTRY_OVERHEAD_BYTES). */
const OVERHEAD = 1024;
const ERROR = '... on DomainError { code message }';
let h: Harness;
let dataDir: string;
let designer: { id: string; key: string };
let other: { id: string; key: string };

const open = async (name: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await h.gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  return account;
};
const createTable = async (name: string, key: string) => (await h.gql(`mutation($n: String!) { createTable(name: $n) { __typename ${ERROR} } }`, { n: name }, key)).body.data.createTable;
const insert = async (table: string, entry: unknown, key: string) =>
  (await h.gql(`mutation($t: String!, $e: JSON!) { insertEntry(table: $t, entry: $e) { __typename ... on Entry { id } ${ERROR} } }`, { t: table, e: entry }, key)).body.data.insertEntry;
const update = async (table: string, id: string, entry: unknown, key: string) =>
  (await h.gql(`mutation($t: String!, $id: ID!, $e: JSON!) { updateEntry(table: $t, id: $id, entry: $e) { __typename } }`, { t: table, id, e: entry }, key)).body;
const remove = async (table: string, id: string, key: string) => (await h.gql(`mutation($t: String!, $id: ID!) { deleteEntry(table: $t, id: $id) { __typename } }`, { t: table, id }, key)).body;
const post = (table: string, entry: unknown, key: string) =>
  fetch(`${h.url}/api/v1/tables/${table}/entries`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(entry) });
/** An entry of exactly `bytes` bytes as JSON. */
const entryOf = (bytes: number) => ({ blob: 'z'.repeat(bytes - '{"blob":""}'.length) });
/** An entry the quota counts as `charged` bytes: its JSON and the overhead. */
const charging = (charged: number) => entryOf(charged - OVERHEAD);

const start = async () => {
  h = await startHarness({ TABLE_MAX_BYTES_PER_ACCOUNT: String(QUOTA), TABLE_MAX_ENTRY_BYTES: '2048' }, dataDir);
};

beforeAll(async () => {
  h = await startHarness({ TABLE_MAX_BYTES_PER_ACCOUNT: String(QUOTA), TABLE_MAX_ENTRY_BYTES: '2048' });
  dataDir = h.dataDir;
  designer = await open('Quinn Quota');
  other = await open('Otto Other');
});
afterAll(async () => {
  await h.stop({ keepData: true });
  const { rmSync } = await import('node:fs');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('TABLE_MAX_BYTES_PER_ACCOUNT', () => {
  it('bounds the bytes of an account\'s live entries across its tables, with a CONFLICT naming the quota', async () => {
    expect(await createTable('a', designer.key)).toMatchObject({ __typename: 'Table' });
    expect(await createTable('b', designer.key)).toMatchObject({ __typename: 'Table' });
    // 3000 + 3000 in one table, 2124 in another: 8124 of 8192.
    const first = await insert('a', charging(3000), designer.key);
    expect(first).toMatchObject({ __typename: 'Entry' });
    expect(await insert('a', charging(3000), designer.key)).toMatchObject({ __typename: 'Entry' });
    expect(await insert('b', charging(2124), designer.key)).toMatchObject({ __typename: 'Entry' });

    // 100 bytes of JSON count 1124.
    const refused = await insert('b', entryOf(100), designer.key);
    expect(refused).toMatchObject({ code: 'CONFLICT' });
    expect(refused.message).toMatch(/TABLE_MAX_BYTES_PER_ACCOUNT/);
    expect(refused.message).toMatch(/8124 bytes/);
    expect(refused.message).toMatch(/1124 bytes/);
    expect(refused.message).toMatch(/8192/);
    // The same over REST: 409 with the reason and the numbers.
    const rest = await post('a', entryOf(100), designer.key);
    expect(rest.status).toBe(409);
    const body = (await rest.json()) as { error: { message: string; metadata: Record<string, unknown> } };
    expect(body.error.metadata).toMatchObject({ reason: 'table_storage_quota', limit: QUOTA, used: 8124, size: 1124 });
    // Another account has its own quota.
    expect(await createTable('a', other.key)).toMatchObject({ __typename: 'Table' });
    expect(await insert('a', entryOf(2000), other.key)).toMatchObject({ __typename: 'Entry' });

    // An update that grows an entry past the quota is refused (+72: 8196); one that shrinks it goes through and makes room.
    // Its refusal counts what the update adds (its JSON's growth: the entry is counted already), and says so (QA s45
    // regress2 #4: it gave the entry's whole counted size as what would not fit).
    const grown = (await update('a', first.id, charging(3072), designer.key)).errors?.[0];
    expect(grown?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'table_storage_quota', used: 8124, size: 3072, growth: 72 });
    expect(grown?.message).toMatch(/growing this entry by 72 bytes \(to 3072 as counted\) would pass its quota of 8192 bytes/);
    expect((await update('a', first.id, charging(1500), designer.key)).errors).toBeUndefined();
    // 6624 used: 1524 more fits, then 1124 does not.
    expect(await insert('b', charging(1524), designer.key)).toMatchObject({ __typename: 'Entry' });
    expect(await insert('b', entryOf(100), designer.key)).toMatchObject({ code: 'CONFLICT' });
    // A delete makes room (its JSON and its overhead).
    expect((await remove('a', first.id, designer.key)).errors).toBeUndefined();
    expect(await insert('b', charging(1500), designer.key)).toMatchObject({ __typename: 'Entry' });
  });

  it('counts again from the event log after a restart, and a dropped table\'s entries no longer count', async () => {
    // Used now: a 3000, b 2124 + 1524 + 1500 = 8148.
    await h.stop({ keepData: true });
    await start();
    expect(await insert('a', entryOf(100), designer.key)).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/8148 bytes/) });
    expect((await h.gql(`mutation { dropTable(name: "b") { __typename } }`, {}, designer.key)).body.errors).toBeUndefined();
    expect(await insert('a', charging(3000), designer.key)).toMatchObject({ __typename: 'Entry' });
    expect(await insert('a', charging(1500), designer.key)).toMatchObject({ __typename: 'Entry' });
    expect(await insert('a', entryOf(100), designer.key)).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/7500 bytes/) });
  });

  it('counts each entry\'s storage, not only its JSON: empty entries {} count 1026 bytes each', async () => {
    const tiny = await open('Tina Tiny');
    expect(await createTable('tiny', tiny.key)).toMatchObject({ __typename: 'Table' });
    // Seven fit in 8192 (7182); before, an empty entry counted 2 bytes, and 4096 of them fitted.
    for (let i = 0; i < 7; i++) expect(await insert('tiny', {}, tiny.key)).toMatchObject({ __typename: 'Entry' });
    const refused = await insert('tiny', {}, tiny.key);
    expect(refused).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/7182 bytes/) });
    const rest = await post('tiny', {}, tiny.key);
    expect(rest.status).toBe(409);
    expect(((await rest.json()) as { error: { metadata: Record<string, unknown> } }).error.metadata).toMatchObject({ reason: 'table_storage_quota', limit: QUOTA, used: 7182, size: 1026 });
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { startStorageThread } from '../../src/storage/storageThread.js';
import { openEmbeddedReadStore } from '../../src/readStore/embeddedReadStore.js';
import { openMongoReadStore } from '../../src/readStore/mongoReadStore.js';
import { isLeaseLost, type Doc, type ReadStore } from '../../src/readStore/readStore.js';
import { entryFilter, entrySort } from '../../src/modules/tables/entryFilter.js';
import { eventually } from '../support/eventually.js';
import { describeMongo } from '../support/mongoTest.js';

/** Where a store lives: `open` may be called again after `close` to reopen the same data. */
interface StoreLocation {
  open(): Promise<ReadStore>;
  dispose(): Promise<void>;
}

type Person = Doc & { name: string; age: number; plan: { tier: string; seats: number }; tags: string[] };

const people: Person[] = [
  { _id: 'p1', name: 'Ada', age: 36, plan: { tier: 'pro', seats: 5 }, tags: ['admin'] },
  { _id: 'p2', name: 'Bob', age: 25, plan: { tier: 'free', seats: 1 }, tags: [] },
  { _id: 'p3', name: 'Cy', age: 25, plan: { tier: 'pro', seats: 2 }, tags: ['beta'] },
  { _id: 'p4', name: 'Di', age: 52, plan: { tier: 'team', seats: 20 }, tags: ['admin', 'beta'] },
  { _id: 'p5', name: 'Ed', age: 41, plan: { tier: 'free', seats: 1 }, tags: [] },
];

const ids = (docs: readonly Doc[]) => docs.map((d) => d._id);

function readStoreContract(newLocation: () => Promise<StoreLocation>) {
  let location: StoreLocation;
  let store: ReadStore;
  const reopen = async () => {
    await store.close();
    store = await location.open();
    return store;
  };
  const seed = async () => {
    const coll = store.collection<Person>('people');
    for (const p of people) await coll.replaceOne(p);
    return coll;
  };

  beforeEach(async () => {
    location = await newLocation();
    store = await location.open();
  });
  afterEach(async () => {
    await store.close();
    await location.dispose();
  });

  it('filters with $eq, $in, $gt, $lt, $and, $or and dotted paths', async () => {
    const coll = await seed();
    expect(ids(await coll.find({ name: { $eq: 'Cy' } }))).toEqual(['p3']);
    expect(ids(await coll.find({ age: 25 }, { sort: { _id: 1 } }))).toEqual(['p2', 'p3']);
    expect(ids(await coll.find({ name: { $in: ['Ada', 'Ed', 'Zed'] } }, { sort: { _id: 1 } }))).toEqual(['p1', 'p5']);
    expect(ids(await coll.find({ age: { $gt: 36 } }, { sort: { _id: 1 } }))).toEqual(['p4', 'p5']);
    expect(ids(await coll.find({ age: { $lt: 36 } }, { sort: { _id: 1 } }))).toEqual(['p2', 'p3']);
    expect(ids(await coll.find({ $and: [{ age: { $gt: 20 } }, { age: { $lt: 40 } }] }, { sort: { _id: 1 } }))).toEqual([
      'p1',
      'p2',
      'p3',
    ]);
    expect(ids(await coll.find({ $or: [{ name: 'Ada' }, { age: { $gt: 50 } }] }, { sort: { _id: 1 } }))).toEqual(['p1', 'p4']);
    expect(ids(await coll.find({ 'plan.tier': 'pro', 'plan.seats': { $gt: 2 } }))).toEqual(['p1']);
    expect(ids(await coll.find({ tags: 'beta' }, { sort: { _id: 1 } }))).toEqual(['p3', 'p4']);
    expect(await coll.findOne({ name: 'Nobody' })).toBeNull();
    expect((await coll.findOne({ _id: 'p4' }))?.name).toBe('Di');
  });

  it('runs table-entry filters (every operator entryFilter allows, rewritten onto the stored entry) with the same results', async () => {
    type Entry = Doc & { data: Record<string, unknown>; createdAt: string; updatedAt: string };
    const coll = store.collection<Entry>('entries');
    const at = (day: number) => `2026-12-0${day}T00:00:00.000Z`;
    const entries: Entry[] = [
      { _id: 'e1', data: { text: 'HELLO', n: 1, tags: ['a', 'b'], meta: { lang: 'en' }, items: [{ k: 'x', v: 1 }] }, createdAt: at(1), updatedAt: at(1) },
      { _id: 'e2', data: { text: 'hello there', n: 2, tags: ['b'], meta: { lang: 'fr' }, items: [{ k: 'y', v: 5 }] }, createdAt: at(2), updatedAt: at(3) },
      { _id: 'e3', data: { text: 'Bye', n: 3, tags: [], items: [] }, createdAt: at(3), updatedAt: at(3) },
      { _id: 'e4', data: { text: 'bye now', n: 10, tags: ['a', 'b', 'c'], meta: { lang: 'en' }, extra: null }, createdAt: at(4), updatedAt: at(4) },
    ];
    for (const entry of entries) await coll.replaceOne(entry);
    const cases: [Record<string, unknown>, string[]][] = [
      [{ text: 'HELLO' }, ['e1']],
      [{ n: { $ne: 2 } }, ['e1', 'e3', 'e4']],
      [{ n: { $gte: 2, $lte: 3 } }, ['e2', 'e3']],
      [{ n: { $gt: 1, $lt: 10 } }, ['e2', 'e3']],
      [{ n: { $in: [1, 10, 99] } }, ['e1', 'e4']],
      [{ n: { $nin: [1, 10] } }, ['e2', 'e3']],
      [{ meta: { $exists: false } }, ['e3']],
      [{ 'meta.lang': 'en' }, ['e1', 'e4']],
      [{ text: { $type: 'string' }, extra: { $type: 'null' } }, ['e4']],
      [{ text: { $regex: '^hello', $options: 'i' } }, ['e1', 'e2']],
      [{ text: { $not: { $regex: '^bye', $options: 'i' } } }, ['e1', 'e2']],
      [{ tags: { $all: ['a', 'b'] } }, ['e1', 'e4']],
      [{ tags: { $size: 0 } }, ['e3']],
      [{ items: { $elemMatch: { k: 'y', v: { $gt: 2 } } } }, ['e2']],
      [{ n: { $mod: [2, 0] } }, ['e2', 'e4']],
      [{ $or: [{ n: 1 }, { text: 'Bye' }] }, ['e1', 'e3']],
      [{ $and: [{ tags: 'a' }, { n: { $gt: 1 } }] }, ['e4']],
      [{ $nor: [{ tags: 'a' }, { n: 3 }] }, ['e2']],
      [{ id: { $in: ['e2', 'e4'] } }, ['e2', 'e4']],
      [{ createdAt: { $gte: at(3) } }, ['e3', 'e4']],
    ];
    for (const [filter, expected] of cases) {
      expect({ filter, found: ids(await coll.find(entryFilter(filter), { sort: entrySort(null) })) }).toEqual({ filter, found: expected });
    }
    expect(ids(await coll.find(entryFilter({}), { sort: entrySort({ n: -1 }) }))).toEqual(['e4', 'e3', 'e2', 'e1']);
  });

  it('finds by _id equality and $in, skipping unknown ids', async () => {
    const coll = await seed();
    expect(ids(await coll.find({ _id: { $in: ['p5', 'missing', 'p2', 'p5'] } }, { sort: { _id: 1 } }))).toEqual(['p2', 'p5']);
    expect(ids(await coll.find({ _id: 'p3' }))).toEqual(['p3']);
    expect(ids(await coll.find({ _id: 'p3', age: 99 }))).toEqual([]);
    expect(ids(await coll.find({ _id: { $in: ['p1', 'p4'] }, tags: 'beta' }))).toEqual(['p4']);
  });

  it('sorts ascending and descending on several keys', async () => {
    const coll = await seed();
    expect(ids(await coll.find({}, { sort: { age: 1, name: -1 } }))).toEqual(['p3', 'p2', 'p1', 'p5', 'p4']);
    expect(ids(await coll.find({}, { sort: { 'plan.tier': -1, age: 1 } }))).toEqual(['p4', 'p3', 'p1', 'p2', 'p5']);
  });

  it('applies skip and limit after sorting', async () => {
    const coll = await seed();
    expect(ids(await coll.find({}, { sort: { age: -1, _id: 1 }, skip: 1, limit: 2 }))).toEqual(['p5', 'p1']);
    expect(ids(await coll.find({}, { sort: { _id: 1 }, skip: 4, limit: 10 }))).toEqual(['p5']);
    expect(await coll.find({}, { sort: { _id: 1 }, skip: 5 })).toEqual([]);
  });

  it('pages through a collection with an _id cursor', async () => {
    const coll = await seed();
    const pages: string[][] = [];
    let after = '';
    for (;;) {
      const page = await coll.find({ _id: { $gt: after } }, { sort: { _id: 1 }, limit: 2 });
      if (page.length === 0) break;
      pages.push(ids(page));
      after = page[page.length - 1]!._id;
    }
    expect(pages).toEqual([['p1', 'p2'], ['p3', 'p4'], ['p5']]);
  });

  it('counts all documents or those matching a filter', async () => {
    const coll = await seed();
    expect(await coll.count()).toBe(5);
    expect(await coll.count({ 'plan.tier': 'free' })).toBe(2);
    expect(await coll.count({ _id: { $in: ['p1', 'p2', 'nope'] } })).toBe(2);
    expect(await store.collection('empty').count()).toBe(0);
  });

  it('aggregates with $match, $group and $sort', async () => {
    const coll = await seed();
    const rows = await coll.aggregate<{ _id: string; seats: number; people: number }>([
      { $match: { age: { $gte: 25 } } },
      { $group: { _id: '$plan.tier', seats: { $sum: '$plan.seats' }, people: { $sum: 1 } } },
      { $sort: { seats: -1 } },
    ]);
    expect(rows).toEqual([
      { _id: 'team', seats: 20, people: 1 },
      { _id: 'pro', seats: 7, people: 2 },
      { _id: 'free', seats: 2, people: 2 },
    ]);
  });

  it('updates a matching document with $set, $inc, $max, $min and $unset, ignoring $setOnInsert', async () => {
    const coll = await seed();
    const result = await coll.updateOne(
      { _id: 'p1' },
      {
        $set: { 'plan.tier': 'team', name: 'Ada L.' },
        $inc: { age: 1, 'plan.seats': 10, logins: 1 },
        $max: { best: 7 },
        $min: { lowest: 3 },
        $unset: { tags: '' },
        $setOnInsert: { createdAt: 'never' },
      },
      { upsert: true },
    );
    expect(result).toEqual({ matched: 1, upserted: false });
    expect(await coll.findOne({ _id: 'p1' })).toEqual({
      _id: 'p1',
      name: 'Ada L.',
      age: 37,
      plan: { tier: 'team', seats: 15 },
      logins: 1,
      best: 7,
      lowest: 3,
    });
    await coll.updateOne({ name: 'Ada L.' }, { $max: { age: 30, best: 9 }, $min: { 'plan.seats': 3, lowest: 4 } });
    expect(await coll.findOne({ _id: 'p1' })).toMatchObject({ age: 37, best: 9, lowest: 3, plan: { seats: 3 } });
  });

  it('upserts a document from the filter equalities, $set, $inc and $setOnInsert', async () => {
    const coll = store.collection('usage');
    const inserted = await coll.updateOne(
      { _id: 'acc1:2025-01-01', accountId: 'acc1', 'period.day': '2025-01-01' },
      { $inc: { requests: 1, costMicros: 250 }, $set: { lastModel: 'm1' }, $setOnInsert: { firstModel: 'm1' } },
      { upsert: true },
    );
    expect(inserted).toEqual({ matched: 0, upserted: true });
    const updated = await coll.updateOne(
      { _id: 'acc1:2025-01-01', accountId: 'acc1', 'period.day': '2025-01-01' },
      { $inc: { requests: 1, costMicros: 100 }, $set: { lastModel: 'm2' }, $setOnInsert: { firstModel: 'm2' } },
      { upsert: true },
    );
    expect(updated).toEqual({ matched: 1, upserted: false });
    expect(await coll.findOne({ _id: 'acc1:2025-01-01' })).toEqual({
      _id: 'acc1:2025-01-01',
      accountId: 'acc1',
      period: { day: '2025-01-01' },
      requests: 2,
      costMicros: 350,
      lastModel: 'm2',
      firstModel: 'm1',
    });
  });

  it('upserts with a generated string _id when the filter has none, and never inserts without upsert', async () => {
    const coll = store.collection('tags');
    expect(await coll.updateOne({ label: 'x' }, { $set: { n: 1 } })).toEqual({ matched: 0, upserted: false });
    expect(await coll.count()).toBe(0);
    expect(await coll.updateOne({ label: 'x' }, { $set: { n: 1 } }, { upsert: true })).toEqual({ matched: 0, upserted: true });
    const doc = await coll.findOne({ label: 'x' });
    expect(typeof doc?._id).toBe('string');
    expect(doc?.n).toBe(1);
  });

  it('replaces a whole document by _id, inserting it if absent', async () => {
    const coll = await seed();
    await coll.replaceOne({ _id: 'p2', name: 'Bobby', age: 26, plan: { tier: 'pro', seats: 1 }, tags: [] });
    expect(await coll.findOne({ _id: 'p2' })).toEqual({ _id: 'p2', name: 'Bobby', age: 26, plan: { tier: 'pro', seats: 1 }, tags: [] });
    await coll.replaceOne({ _id: 'p9', name: 'New', age: 1, plan: { tier: 'free', seats: 1 }, tags: [] });
    expect(await coll.count()).toBe(6);
  });

  it('deletes one matching document and reports how many were deleted', async () => {
    const coll = await seed();
    expect(await coll.deleteOne({ age: 25 })).toBe(1);
    expect(await coll.count({ age: 25 })).toBe(1);
    expect(await coll.deleteOne({ _id: 'p1' })).toBe(1);
    expect(await coll.deleteOne({ _id: 'p1' })).toBe(0);
    expect(await coll.count()).toBe(3);
  });

  it('enforces unique indexes with ConflictError on replaceOne, updateOne, commit and index creation', async () => {
    const coll = store.collection('members');
    await coll.createIndex({ keys: { email: 1 }, unique: true });
    await coll.createIndex({ keys: { email: 1 }, unique: true }); // idempotent
    await coll.replaceOne({ _id: 'a1', email: 'a@x.io' });
    await coll.replaceOne({ _id: 'a2', email: 'b@x.io' });
    await coll.replaceOne({ _id: 'a1', email: 'a@x.io', name: 'same key, same doc' });
    await expect(coll.replaceOne({ _id: 'a3', email: 'a@x.io' })).rejects.toBeInstanceOf(ConflictError);
    await expect(coll.updateOne({ _id: 'a2' }, { $set: { email: 'a@x.io' } })).rejects.toBeInstanceOf(ConflictError);
    await expect(
      store.commit([{ collection: 'members', id: 'a4', doc: { _id: 'a4', email: 'b@x.io' } }], {
        projection: 'members',
        version: 1,
        position: 1,
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(ids(await coll.find({}, { sort: { _id: 1 } }))).toEqual(['a1', 'a2']);
    expect((await coll.findOne({ _id: 'a2' }))?.email).toBe('b@x.io');

    const handles = store.collection('handles');
    await handles.replaceOne({ _id: 'h1', handle: 'dup' });
    await handles.replaceOne({ _id: 'h2', handle: 'dup' });
    await expect(handles.createIndex({ keys: { handle: 1 }, unique: true })).rejects.toBeInstanceOf(ConflictError);
    // As in MongoDB, a missing field is indexed as null: only one document may lack it.
    await coll.replaceOne({ _id: 'a7' });
    await expect(coll.replaceOne({ _id: 'a8' })).rejects.toBeInstanceOf(ConflictError);
  });

  it('answers equality queries on a non-unique indexed field exactly, including array values', async () => {
    const coll = store.collection('labels');
    await coll.createIndex({ keys: { tag: 1 } });
    await coll.replaceOne({ _id: 'l1', tag: 'x' });
    await coll.replaceOne({ _id: 'l2', tag: ['y', 'x'] });
    await coll.replaceOne({ _id: 'l3', tag: 'y' });
    await coll.replaceOne({ _id: 'l4' });
    await coll.updateOne({ _id: 'l3' }, { $set: { tag: 'x' } });
    await coll.deleteOne({ _id: 'l1' });
    expect(ids(await coll.find({ tag: 'x' }, { sort: { _id: 1 } }))).toEqual(['l2', 'l3']);
    expect(ids(await coll.find({ tag: { $eq: 'y' } }))).toEqual(['l2']);
    expect(await coll.count({ tag: 'z' })).toBe(0);
  });

  it('commits document writes with the checkpoint, stamping each document with its position unless it has one', async () => {
    expect(await store.getCheckpoint('wallets')).toBeNull();
    await store.commit(
      [
        { collection: 'wallets', id: 'b1', doc: { _id: 'b1', micros: 100 } },
        { collection: 'wallets', id: 'b2', doc: { _id: 'b2', micros: 5 } },
        { collection: 'ledger', id: 'e1', doc: { _id: 'e1', amount: 100 } },
        { collection: 'ledger', id: 'e2', doc: { _id: 'e2', amount: 1, _pos: 4 } },
      ],
      { projection: 'wallets', version: 1, position: 7 },
    );
    await store.commit(
      [
        { collection: 'wallets', id: 'b1', doc: { _id: 'b1', micros: 60 } },
        { collection: 'wallets', id: 'b2', doc: null },
      ],
      { projection: 'wallets', version: 1, position: 9 },
    );
    expect(await store.getCheckpoint('wallets')).toEqual({ projection: 'wallets', version: 1, position: 9 });
    expect(await store.collection('wallets').find({})).toEqual([{ _id: 'b1', micros: 60, _pos: 9 }]);
    expect(await store.collection('ledger').find({}, { sort: { _id: 1 } })).toEqual([
      { _id: 'e1', amount: 100, _pos: 7 },
      { _id: 'e2', amount: 1, _pos: 4 },
    ]);
  });

  it('resets the given collections and forgets the checkpoint, leaving the rest', async () => {
    const checkpoint = { projection: 'usage', version: 2, position: 3 };
    await store.commit(
      [
        { collection: 'dailyTotals', id: 'd1', doc: { _id: 'd1' } },
        { collection: 'usageTotals', id: 't1', doc: { _id: 't1' } },
        { collection: 'other', id: 'o1', doc: { _id: 'o1' } },
      ],
      checkpoint,
    );
    await store.commit([], { projection: 'other', version: 1, position: 3 });
    await store.collection('dailyTotals').createIndex({ keys: { day: 1 }, unique: true });
    await store.reset('usage', ['dailyTotals', 'usageTotals']);
    expect(await store.getCheckpoint('usage')).toBeNull();
    expect(await store.getCheckpoint('other')).toEqual({ projection: 'other', version: 1, position: 3 });
    expect(await store.collection('dailyTotals').count()).toBe(0);
    expect(await store.collection('usageTotals').count()).toBe(0);
    expect(await store.collection('other').count()).toBe(1);
    // The index survives the reset, now empty of keys.
    await store.collection('dailyTotals').replaceOne({ _id: 'd2', day: '2025-01-01' });
    await expect(store.collection('dailyTotals').replaceOne({ _id: 'd3', day: '2025-01-01' })).rejects.toBeInstanceOf(ConflictError);
  });

  it('returns copies, so mutating results or inputs never changes stored documents', async () => {
    const coll = await seed();
    const found = await coll.findOne({ _id: 'p1' });
    found!.plan.tier = 'hacked';
    found!.tags.push('hacked');
    const [listed] = await coll.find({ _id: { $in: ['p1'] } });
    listed!.name = 'hacked';
    const [grouped] = await coll.aggregate<{ _id: string; all: Person[] }>([
      { $match: { _id: 'p1' } },
      { $group: { _id: '$_id', all: { $push: '$$ROOT' } } },
    ]);
    grouped!.all[0]!.plan.seats = 999;
    await coll.aggregate([{ $project: { 'plan.seats': 0 } }]);
    await coll.aggregate([{ $addFields: { 'plan.extra': 1 } }]);

    const input: Person = { _id: 'p7', name: 'In', age: 1, plan: { tier: 'free', seats: 1 }, tags: [] };
    await coll.replaceOne(input);
    input.plan.tier = 'hacked';
    const committed = { _id: 'c1', nested: { v: 1 } };
    await store.commit([{ collection: 'people', id: 'c1', doc: committed }], { projection: 'p', version: 1, position: 1 });
    committed.nested.v = 2;

    expect(await coll.findOne({ _id: 'p1' })).toEqual(people[0]);
    expect((await coll.findOne({ _id: 'p7' }))?.plan.tier).toBe('free');
    expect((await coll.findOne({ _id: 'c1' }))?.['nested']).toEqual({ v: 1 });
  });

  it('keeps documents, checkpoints and unique indexes across close and reopen', async () => {
    await seed();
    await store.collection('people').createIndex({ keys: { name: 1 }, unique: true });
    await store.commit([{ collection: 'people', id: 'p6', doc: { _id: 'p6', name: 'Fay', age: 30 } }], {
      projection: 'people',
      version: 3,
      position: 42,
    });
    await store.collection('people').deleteOne({ _id: 'p2' });
    await store.collection('people').updateOne({ _id: 'p3' }, { $inc: { age: 1 } });

    const reopened = await reopen();
    const coll = reopened.collection('people');
    expect(await reopened.getCheckpoint('people')).toEqual({ projection: 'people', version: 3, position: 42 });
    expect(ids(await coll.find({}, { sort: { _id: 1 } }))).toEqual(['p1', 'p3', 'p4', 'p5', 'p6']);
    expect((await coll.findOne({ _id: 'p3' }))?.['age']).toBe(26);
    expect(await coll.findOne({ _id: 'p6' })).toEqual({ _id: 'p6', name: 'Fay', age: 30, _pos: 42 });
    await expect(coll.replaceOne({ _id: 'p8', name: 'Ada' })).rejects.toBeInstanceOf(ConflictError);
  });

  it('grants a lease to one holder at a time: renewing keeps its epoch, a release or an expiry lets the next holder in with the next epoch', async () => {
    const first = await store.acquireLease('writer', 'a', 60_000);
    expect(first).toMatchObject({ name: 'writer', holder: 'a', position: 0 });
    expect(await store.acquireLease('writer', 'b', 60_000)).toBeNull();
    const renewed = await store.acquireLease('writer', 'a', 60_000);
    expect(renewed?.epoch).toBe(first!.epoch);
    expect(renewed!.expiresAt).toBeGreaterThanOrEqual(first!.expiresAt);
    expect(await store.readLease('writer')).toMatchObject({ holder: 'a', epoch: first!.epoch });

    // A release by a former epoch changes nothing; the holder's own lets another in at once.
    await store.releaseLease('writer', 'a', first!.epoch - 1);
    expect(await store.acquireLease('writer', 'b', 60_000)).toBeNull();
    await store.releaseLease('writer', 'a', first!.epoch);
    expect(await store.acquireLease('writer', 'b', 60_000)).toMatchObject({ holder: 'b', epoch: first!.epoch + 1 });

    // A lease nobody renews expires after its TTL. 1 s, not 50 ms: the refusal right after must come within the TTL
    // on a loaded host too (a pause of 50 ms between the two calls let b in).
    const short = await store.acquireLease('short', 'a', 1_000);
    expect(await store.acquireLease('short', 'b', 60_000)).toBeNull();
    const taken = await eventually('the unrenewed lease to expire', () => store.acquireLease('short', 'b', 60_000), { intervalMs: 100 });
    expect(taken).toMatchObject({ holder: 'b', epoch: short!.epoch + 1 });
    expect(await store.readLease('nobody')).toBeNull();
  });

  it("refuses a fenced-out holder's commit whole, and records the holder's position with its own", async () => {
    const old = await store.acquireLease('writer', 'a', 50);
    const fenceA = { lease: 'writer', holder: 'a', epoch: old!.epoch, position: 5 };
    await store.commit([{ collection: 'hot', id: 'h1', doc: { _id: 'h1', n: 1 } }], { projection: 'hot', version: 1, position: 5 }, fenceA);
    expect((await store.readLease('writer'))?.position).toBe(5);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const next = await store.acquireLease('writer', 'b', 60_000);
    expect(next).toMatchObject({ holder: 'b', epoch: old!.epoch + 1, position: 5 });
    await store.commit([{ collection: 'hot', id: 'h1', doc: { _id: 'h1', n: 3 } }], { projection: 'hot', version: 1, position: 9 }, { lease: 'writer', holder: 'b', epoch: next!.epoch, position: 9 });

    // The former holder wakes up with an older document: nothing of its commit is stored.
    const stale = store.commit(
      [
        { collection: 'hot', id: 'h1', doc: { _id: 'h1', n: 2 } },
        { collection: 'hot', id: 'h2', doc: { _id: 'h2', n: 2 } },
      ],
      { projection: 'hot', version: 1, position: 7 },
      { ...fenceA, position: 7 },
    );
    const error = await stale.then(() => null, (e: unknown) => e);
    expect(isLeaseLost(error)).toBe(true);
    expect(error).toBeInstanceOf(ConflictError);
    expect(await store.collection('hot').find({}, { sort: { _id: 1 } })).toEqual([{ _id: 'h1', n: 3, _pos: 9 }]);
    expect(await store.getCheckpoint('hot')).toEqual({ projection: 'hot', version: 1, position: 9 });
    expect(await store.readLease('writer')).toMatchObject({ holder: 'b', position: 9 });
    // Renewing with the holder it lost to in between is a new epoch: the former holder sees that it lost.
    expect(await store.acquireLease('writer', 'a', 60_000)).toBeNull();
  });

  it('never moves a checkpoint backwards within a version; a new version starts over', async () => {
    await store.commit([], { projection: 'mono', version: 1, position: 10 });
    await store.commit([], [{ projection: 'mono', version: 1, position: 4 }, { projection: 'other', version: 1, position: 4 }]);
    expect(await store.getCheckpoint('mono')).toEqual({ projection: 'mono', version: 1, position: 10 });
    expect(await store.getCheckpoint('other')).toEqual({ projection: 'other', version: 1, position: 4 });
    await store.commit([], { projection: 'mono', version: 1, position: 12 });
    expect((await store.getCheckpoint('mono'))?.position).toBe(12);
    await store.commit([], { projection: 'mono', version: 2, position: 3 });
    expect(await store.getCheckpoint('mono')).toEqual({ projection: 'mono', version: 2, position: 3 });
  });

  it('stores undefined as JSON does: fields dropped, array elements null, $set of undefined removes; a filter on undefined matches missing or null', async () => {
    const coll = store.collection('loose');
    await coll.replaceOne({ _id: 'u1', a: undefined, nested: { b: undefined, c: 1 }, list: [1, undefined], keep: 'x' });
    await store.commit([{ collection: 'loose', id: 'u2', doc: { _id: 'u2', a: null, nested: { b: undefined } } }], { projection: 'loose', version: 1, position: 1 });
    await coll.updateOne({ _id: 'u3' }, { $set: { a: 1, gone: undefined }, $setOnInsert: { also: undefined } }, { upsert: true });
    expect(await coll.findOne({ _id: 'u1' })).toStrictEqual({ _id: 'u1', nested: { c: 1 }, list: [1, null], keep: 'x' });
    expect(await coll.findOne({ _id: 'u2' })).toStrictEqual({ _id: 'u2', a: null, nested: {}, _pos: 1 });
    expect(await coll.findOne({ _id: 'u3' })).toStrictEqual({ _id: 'u3', a: 1 });
    await coll.updateOne({ _id: 'u1' }, { $set: { keep: undefined, added: 2 } });
    expect(await coll.findOne({ _id: 'u1' })).toStrictEqual({ _id: 'u1', nested: { c: 1 }, list: [1, null], added: 2 });
    expect(ids(await coll.find({ a: undefined }, { sort: { _id: 1 } }))).toEqual(['u1', 'u2']);
    expect(await coll.count({ keep: undefined })).toBe(3);
  });

  it('reports health', async () => {
    expect(await store.health()).toMatchObject({ ok: true, kind: store.kind });
  });
}

describe('embedded adapter', () => {
  const newLocation = async (): Promise<StoreLocation & { dir: string }> => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-readstore-'));
    return { dir, open: () => openEmbeddedReadStore({ dir }), dispose: () => rm(dir, { recursive: true, force: true }) };
  };

  describe('contract', () => {
    readStoreContract(newLocation);
  });

  describe('contract, through the storage thread (the server in embedded mode)', () => {
    readStoreContract(async () => {
      const location = await newLocation();
      return {
        ...location,
        open: async () => {
          const eventStore = openSqliteEventStore({ dir: location.dir });
          const thread = await startStorageThread({ dir: location.dir, eventStore, onError: (error) => { throw error; } });
          return {
            ...thread.readStore,
            close: async () => {
              await thread.close();
              await eventStore.close();
            },
          };
        },
      };
    });
  });

  describe('atomic commits', () => {
    let location: Awaited<ReturnType<typeof newLocation>>;
    let store: ReadStore;
    const baseline = { projection: 'balances', version: 1, position: 1 };

    beforeEach(async () => {
      location = await newLocation();
      store = await location.open();
      await store.collection('balances').createIndex({ keys: { owner: 1 }, unique: true });
      await store.commit([{ collection: 'balances', id: 'b1', doc: { _id: 'b1', owner: 'ann', micros: 1 } }], baseline);
    });
    afterEach(async () => {
      await store.close();
      await location.dispose();
    });

    const expectBaseline = async (s: ReadStore) => {
      expect(await s.getCheckpoint('balances')).toEqual(baseline);
      expect(await s.collection('balances').find({})).toEqual([{ _id: 'b1', owner: 'ann', micros: 1, _pos: 1 }]);
    };

    it('stores nothing, in memory or on disk, when a write in the batch violates a unique index', async () => {
      await expect(
        store.commit(
          [
            { collection: 'balances', id: 'b1', doc: { _id: 'b1', owner: 'ann', micros: 2 } },
            { collection: 'balances', id: 'b2', doc: { _id: 'b2', owner: 'bob', micros: 2 } },
            { collection: 'balances', id: 'b3', doc: { _id: 'b3', owner: 'ann', micros: 2 } },
          ],
          { projection: 'balances', version: 1, position: 2 },
        ),
      ).rejects.toBeInstanceOf(ConflictError);
      await expectBaseline(store);
      await store.close();
      store = await location.open();
      await expectBaseline(store);
    });

    it('stores nothing, in memory or on disk, when SQLite fails after writing the documents', async () => {
      await store.close();
      // A trigger that aborts the checkpoint write, i.e. after every document row of the transaction was written.
      const raw = new Database(join(location.dir, 'readmodels.db'));
      raw.exec(`CREATE TRIGGER fail_checkpoint BEFORE INSERT ON checkpoints WHEN NEW.projection = 'boom'
        BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
      raw.close();
      store = await location.open();

      await expect(
        store.commit(
          [
            { collection: 'balances', id: 'b1', doc: { _id: 'b1', owner: 'ann', micros: 2 } },
            { collection: 'balances', id: 'b2', doc: { _id: 'b2', owner: 'bob', micros: 2 } },
          ],
          { projection: 'boom', version: 1, position: 2 },
        ),
      ).rejects.toThrow('disk on fire');
      await expectBaseline(store);
      expect(await store.getCheckpoint('boom')).toBeNull();
      await store.close();
      store = await location.open();
      await expectBaseline(store);
    });

    it('keeps writing correctly after a failed commit', async () => {
      const failing = store.commit(
        [
          { collection: 'balances', id: 'b2', doc: { _id: 'b2', owner: 'bob', micros: 2 } },
          { collection: 'balances', id: 'b1', doc: null },
          { collection: 'balances', id: 'b3', doc: { _id: 'b3', owner: 'bob', micros: 2 } },
        ],
        { projection: 'balances', version: 1, position: 2 },
      );
      await expect(failing).rejects.toBeInstanceOf(ConflictError);
      await store.commit(
        [
          { collection: 'balances', id: 'b2', doc: { _id: 'b2', owner: 'bob', micros: 3 } },
          { collection: 'balances', id: 'b1', doc: { _id: 'b1', owner: 'ann', micros: 3 } },
        ],
        { projection: 'balances', version: 1, position: 3 },
      );
      await store.close();
      store = await location.open();
      expect(await store.collection('balances').find({}, { sort: { _id: 1 } })).toEqual([
        { _id: 'b1', owner: 'ann', micros: 3, _pos: 3 },
        { _id: 'b2', owner: 'bob', micros: 3, _pos: 3 },
      ]);
    });
  });
});

describe('embedded adapter: collections kept on disk', () => {
  let dir: string;
  let store: ReadStore;
  const open = (diskCollections: string[] = ['gens']) => openEmbeddedReadStore({ dir, diskCollections });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-readstore-disk-'));
    store = await open();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  // The same documents in an in-memory collection and a disk one: every query must answer the same.
  const accounts = ['acc_a', 'acc_b', 'acc_c'];
  const gens = Array.from({ length: 120 }, (_, i) => ({
    _id: `gen-${String(i).padStart(4, '0')}`,
    accountId: accounts[(i * 7) % 3]!,
    model: i % 4 === 0 ? 'x/big' : 'x/small',
    cost: (i * 37) % 101,
    streamed: i % 2 === 0,
    usage: { prompt: i, completion: 2 * i },
  }));
  const seedBoth = async () => {
    for (const name of ['gens', 'memGens']) await store.collection(name).createIndex({ keys: { accountId: 1 } });
    const writes = gens.flatMap((g) => [
      { collection: 'gens', id: g._id, doc: g },
      { collection: 'memGens', id: g._id, doc: g },
    ]);
    await store.commit(writes, { projection: 'gens', version: 1, position: 5 });
  };

  it('answers finds, counts and aggregations exactly as the in-memory collection does', async () => {
    await seedBoth();
    const queries: [Record<string, unknown>, Record<string, unknown>?][] = [
      [{}],
      [{ _id: 'gen-0007' }],
      [{ _id: { $in: ['gen-0003', 'gen-0100', 'nope'] } }],
      [{ accountId: 'acc_b' }, { sort: { _id: 1 } }],
      [{ accountId: 'acc_b', _id: { $gt: 'gen-0040' } }, { sort: { _id: 1 }, limit: 5 }],
      [{ accountId: 'acc_a', _id: { $lt: 'gen-0090' } }, { sort: { _id: -1 }, limit: 4, skip: 2 }],
      [{ accountId: 'acc_c', model: 'x/big' }, { sort: { cost: -1, _id: 1 }, limit: 3 }],
      [{ streamed: true, cost: { $gte: 50 } }, { sort: { _id: 1 } }],
      [{ 'usage.prompt': { $lt: 10 } }, { sort: { _id: -1 } }],
      [{ $or: [{ accountId: 'acc_a' }, { model: 'x/big' }] }, { sort: { _id: 1 }, limit: 10 }],
      [{}, { sort: { _id: -1 }, limit: 3 }],
    ];
    for (const [filter, options] of queries) {
      const fromDisk = await store.collection('gens').find(filter, options);
      const fromMemory = await store.collection('memGens').find(filter, options);
      expect(fromDisk, JSON.stringify({ filter, options })).toEqual(fromMemory);
      expect(await store.collection('gens').count(filter)).toBe(await store.collection('memGens').count(filter));
    }
    expect(await store.collection('gens').findOne({ accountId: 'acc_a', model: 'x/big' })).toEqual(await store.collection('memGens').findOne({ accountId: 'acc_a', model: 'x/big' }));
    const pipeline = [{ $match: { accountId: 'acc_a' } }, { $group: { _id: '$model', total: { $sum: '$cost' }, n: { $sum: 1 } } }, { $sort: { _id: 1 } }];
    expect(await store.collection('gens').aggregate(pipeline)).toEqual(await store.collection('memGens').aggregate(pipeline));
  });

  it('answers lookups by _id (present, absent, duplicated ids, in the asked order, paged or sorted) as the in-memory collection does', async () => {
    await seedBoth();
    const queries: [Record<string, unknown>, Record<string, unknown>?][] = [
      [{ _id: 'nope' }],
      [{ _id: { $eq: 'gen-0011' } }],
      [{ _id: { $in: [] } }],
      [{ _id: { $in: ['gen-0090', 'gen-0002', 'gen-0090', 'nope', 'gen-0050', 'gen-0002'] } }],
      [{ _id: { $in: ['gen-0090', 'gen-0002', 'gen-0050', 'gen-0051'] } }, { skip: 1, limit: 2 }],
      [{ _id: { $in: ['gen-0090', 'gen-0002', 'gen-0050'] } }, { sort: { cost: 1 } }],
      [{ _id: { $in: ['gen-0090', 'gen-0002', 'gen-0050', 'gen-0051'] }, streamed: true }],
    ];
    for (const [filter, options] of queries) {
      const fromDisk = await store.collection('gens').find(filter, options);
      expect(fromDisk, JSON.stringify({ filter, options })).toEqual(await store.collection('memGens').find(filter, options));
      expect(await store.collection('gens').count(filter)).toBe(await store.collection('memGens').count(filter));
      expect(await store.collection('gens').findOne(filter)).toEqual(await store.collection('memGens').findOne(filter));
    }
    expect((await store.collection('gens').find({ _id: { $in: ['gen-0090', 'gen-0002', 'gen-0090'] } })).map((d) => d._id)).toEqual(['gen-0090', 'gen-0002']);
  });

  it('keeps its documents across reopen, moves a formerly in-memory collection to disk, and resets', async () => {
    await store.close();
    store = await open([]); // before: kept in memory
    await store.commit([{ collection: 'gens', id: 'g1', doc: { _id: 'g1', accountId: 'acc_a' } }], { projection: 'gens', version: 1, position: 1 });
    await store.close();
    store = await open();
    expect(await store.collection('gens').find({})).toEqual([{ _id: 'g1', accountId: 'acc_a', _pos: 1 }]);
    await store.collection('gens').createIndex({ keys: { accountId: 1 } });
    await store.commit([{ collection: 'gens', id: 'g2', doc: { _id: 'g2', accountId: 'acc_a' } }, { collection: 'gens', id: 'g1', doc: null }], { projection: 'gens', version: 1, position: 2 });
    await store.close();
    store = await open();
    expect(await store.collection('gens').find({ accountId: 'acc_a' })).toEqual([{ _id: 'g2', accountId: 'acc_a', _pos: 2 }]);
    await store.collection('gens').updateOne({ _id: 'g2' }, { $set: { cost: 5 } });
    expect(await store.collection('gens').findOne({ _id: 'g2' })).toMatchObject({ cost: 5 });
    await store.reset('gens', ['gens']);
    expect(await store.collection('gens').count()).toBe(0);
    expect(await store.getCheckpoint('gens')).toBeNull();
  });

  it('upgrades disk documents kept WITHOUT ROWID (before stop 48): every document kept, its indexes partial and used', async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(join(tmpdir(), 'switchyard-readstore-disk-'));
    // The file as a store before stop 48 left it: the tables it created, one declared index on a disk collection.
    const old = new Database(join(dir, 'readmodels.db'));
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE docs (collection TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL);
      CREATE INDEX docs_collection ON docs (collection);
      CREATE TABLE checkpoints (projection TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL);
      CREATE TABLE indexes (collection TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (collection, name));
      CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL, expires_at INTEGER NOT NULL, position INTEGER NOT NULL);
      CREATE TABLE disk_docs (collection TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
      CREATE INDEX "disk_gens_accountId_1" ON disk_docs (collection, json_extract(json, '$.accountId'), id);
    `);
    old.prepare('INSERT INTO indexes (collection, name, spec) VALUES (?, ?, ?)').run('gens', 'accountId_1', JSON.stringify({ keys: { accountId: 1 } }));
    old.prepare('INSERT INTO checkpoints (projection, version, position) VALUES (?, ?, ?)').run('gens', 1, 120);
    const insert = old.prepare('INSERT INTO disk_docs (collection, id, json) VALUES (?, ?, ?)');
    // Documents of ~1 KiB, as generations are: the size that spilled into overflow pages.
    const padded = gens.map((g) => ({ ...g, note: 'x'.repeat(900) }));
    for (const g of padded) insert.run('gens', g._id, JSON.stringify(g));
    insert.run('other', 'o1', JSON.stringify({ _id: 'o1', accountId: 'acc_a' }));
    old.close();

    store = await open(['gens', 'other']);
    expect(await store.collection('gens').count()).toBe(120);
    expect(await store.collection('other').find({})).toEqual([{ _id: 'o1', accountId: 'acc_a' }]);
    const expected = padded.filter((g) => g.accountId === 'acc_b').sort((a, b) => (a._id < b._id ? 1 : -1)).slice(0, 5);
    expect(await store.collection('gens').find({ accountId: 'acc_b' }, { sort: { _id: -1 }, limit: 5 })).toEqual(expected);
    expect(await store.getCheckpoint('gens')).toMatchObject({ version: 1, position: 120 });
    // Written after the upgrade, found through the index; an update keeps one row.
    await store.commit([{ collection: 'gens', id: 'gen-9999', doc: { _id: 'gen-9999', accountId: 'acc_b' } }], { projection: 'gens', version: 1, position: 121 });
    await store.collection('gens').updateOne({ _id: 'gen-9999' }, { $set: { cost: 7 } });
    expect(await store.collection('gens').find({ accountId: 'acc_b' }, { sort: { _id: -1 }, limit: 1 })).toEqual([{ _id: 'gen-9999', accountId: 'acc_b', _pos: 121, cost: 7 }]);
    expect(await store.collection('gens').count()).toBe(121);
    await store.close();

    const check = new Database(join(dir, 'readmodels.db'), { readonly: true });
    try {
      const schema = check.prepare<[], { name: string; sql: string }>("SELECT name, sql FROM sqlite_master WHERE tbl_name LIKE 'disk_docs%' AND sql IS NOT NULL").all();
      expect(schema.map((row) => row.name).sort()).toEqual(['disk_docs', 'disk_docs_id', 'disk_gens_accountId_1']);
      expect(schema.find((row) => row.name === 'disk_docs')!.sql).not.toMatch(/WITHOUT ROWID/i);
      expect(schema.find((row) => row.name === 'disk_gens_accountId_1')!.sql).toMatch(/WHERE collection = 'gens'$/);
      const plan = check
        .prepare("EXPLAIN QUERY PLAN SELECT json FROM disk_docs WHERE collection = 'gens' AND json_extract(json, '$.accountId') = ? ORDER BY id DESC LIMIT 5")
        .all('acc_b') as { detail: string }[];
      expect(plan.map((row) => row.detail).join('; ')).toMatch(/USING INDEX disk_gens_accountId_1/);
      // No overflow page holds any part of a document any more.
      expect(check.prepare<[], { n: number }>("SELECT count(*) AS n FROM dbstat WHERE name = 'disk_docs' AND pagetype = 'overflow'").get()!.n).toBe(0);
    } finally {
      check.close();
    }
    // Opened again: nothing left to upgrade, every document still there.
    store = await open(['gens', 'other']);
    expect(await store.collection('gens').count()).toBe(121);
  });

  it('refuses a unique index and a non-scalar value in an indexed field, writing nothing', async () => {
    await expect(store.collection('gens').createIndex({ keys: { accountId: 1 }, unique: true })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(store.collection('gens').createIndex({ keys: { "a') = 1; --": 1 } })).rejects.toMatchObject({ code: 'VALIDATION' });
    await store.collection('gens').createIndex({ keys: { accountId: 1 } });
    await expect(
      store.commit(
        [
          { collection: 'gens', id: 'ok', doc: { _id: 'ok', accountId: 'acc_a' } },
          { collection: 'gens', id: 'bad', doc: { _id: 'bad', accountId: ['acc_a', 'acc_b'] } },
        ],
        { projection: 'gens', version: 1, position: 3 },
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    expect(await store.collection('gens').count()).toBe(0);
    expect(await store.getCheckpoint('gens')).toBeNull();
  });
});

describeMongo('readStore contract', readStoreContract, (url, dbName) => openMongoReadStore(url, { dbName }));

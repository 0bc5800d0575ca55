import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Aggregator, ProcessingMode, Query, update as applyModifier } from 'mingo';
import type { Modifier } from 'mingo/updater';
import { ConflictError, ValidationError } from '../errors.js';
import { startBackgroundCheckpointer } from '../sqlite/backgroundCheckpointer.js';
import { ensurePrivateDatabaseFile, ensurePrivateDir, openingDataFile } from '../sqlite/privateFiles.js';
import { createWriteHealth } from '../storage/writeHealth.js';
import { acquireProcessLock } from '../sqlite/processLock.js';
import type {
  Doc,
  DocWrite,
  Fence,
  Filter,
  FindOptions,
  IndexSpec,
  Lease,
  ProjectionCheckpoint,
  ReadCollection,
  ReadStore,
} from './readStore.js';
import { leaseLost } from './readStore.js';

/**
 * Embedded ReadStore: every document lives in memory (one Map per collection, keyed by `_id`) and is queried with
 * mingo; every write goes through to a SQLite file in the same transaction as the projection checkpoint, and the
 * whole file is loaded back into memory on open.
 *
 * Collections named in `diskCollections` (those that grow with traffic, such as one document per generation) are
 * the exception: their documents stay in SQLite only, in `disk_docs`, and a query reads its candidates from there
 * (by `_id`, or through an expression index on the first field of a declared index, with `_id` ranges, sorting by
 * `_id` and limits pushed into SQL when nothing else is left to filter). Memory then does not grow with them.
 *
 * Leases live in memory and in SQLite: the file is locked to one process, so the memory copy is the truth, and a
 * fenced commit checks it without a query. A lease's position is written to SQLite on acquire, renew and release
 * only (no other process reads it).
 */

interface Index {
  readonly name: string;
  readonly spec: IndexSpec;
  readonly fields: readonly string[];
  /** Index key (JSON of the field values, missing = null) → ids of the documents with that key. */
  readonly entries: Map<string, Set<string>>;
  /** Documents with an array on an indexed path: Mongo equality matches array elements, so they are always candidates. */
  readonly multi: Set<string>;
}

interface CollectionState {
  readonly docs: Map<string, Doc>;
  /** `_id` → SQLite rowid of the document's row. */
  readonly rowids: Map<string, number>;
  readonly indexes: Map<string, Index>;
}

type Write = { readonly collection: string; readonly id: string; readonly doc: Doc | null };

interface Undo {
  readonly s: CollectionState;
  readonly id: string;
  readonly doc: Doc | null;
  readonly rowid: number | undefined;
}

const mingoOptions = { scriptEnabled: false };
// Stages that never write into their input documents; any other stage runs on clones of the stored documents.
const readOnlyStages = new Set(['$match', '$sort', '$skip', '$limit', '$group', '$count', '$sortByCount']);

export interface EmbeddedReadStoreOptions {
  readonly dir: string;
  readonly file?: string;
  /** Collections kept on disk only (see above). Indexes on them must be non-unique, on scalar fields. */
  readonly diskCollections?: readonly string[];
  /** The clock of lease expiry (tests). */
  readonly now?: () => number;
}

/**
 * Documents of disk collections, in a rowid table with a unique index on (collection, id). Each index declared on a
 * disk collection is a partial SQL index on that collection's rows alone (createDiskIndex), so writing a document
 * evaluates only its own collection's index expressions.
 *
 * Not a WITHOUT ROWID table keyed by (collection, id), as before stop 48: such a table stores its rows as index
 * entries, which keep at most ~1,000 bytes of a row on a 4 KiB page, so a generation's document (~1 KiB) spilled into
 * an overflow page of its own. Every read of it (the projection runner reads each document it changes) and every
 * index expression evaluated on its old value read that page from the file again, as SQLite reads overflow pages
 * around its page cache, and every index of every disk collection was updated for every write. The storage thread's
 * CPU per request fell by a fifth to a third (bench/README.md, gateway section, stop 48).
 */
const DISK_DOCS = `
  CREATE TABLE IF NOT EXISTS disk_docs (collection TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL);
  CREATE UNIQUE INDEX IF NOT EXISTS disk_docs_id ON disk_docs (collection, id);
`;

/**
 * A read store written before stop 48 keeps `disk_docs` WITHOUT ROWID: its documents move to the table above, in one
 * transaction (all or nothing, so a crash leaves the old table whole), and its indexes go with the old table, to be
 * created again as partial indexes from the `indexes` table at open. 200,000 generation-sized documents took 1.7 s.
 * The file does not shrink: the old table's pages (~5 KiB per such document, against ~1.3 KiB now) stay free for the
 * writes that follow. A server before stop 48 still reads an upgraded file (its queries by a declared index then scan
 * the collection).
 */
function upgradeDiskDocs(db: Database.Database) {
  const table = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'disk_docs'").get();
  if (!table || !/WITHOUT\s+ROWID/i.test(table.sql)) return;
  db.transaction(() => {
    db.exec('ALTER TABLE disk_docs RENAME TO disk_docs_before_upgrade');
    db.exec(DISK_DOCS);
    db.exec('INSERT INTO disk_docs (collection, id, json) SELECT collection, id, json FROM disk_docs_before_upgrade ORDER BY collection, id');
    db.exec('DROP TABLE disk_docs_before_upgrade');
  })();
}

/** A collection's name as an SQL string literal (partial indexes apply only to queries naming it literally). */
const sqlString = (value: string) => `'${value.replaceAll("'", "''")}'`;

export async function openEmbeddedReadStore(options: EmbeddedReadStoreOptions): Promise<ReadStore> {
  ensurePrivateDir(options.dir);
  const path = join(options.dir, options.file ?? 'readmodels.db');
  const lock = acquireProcessLock(`${path}.lock`, `The read store ${path}`);
  ensurePrivateDatabaseFile(path);
  const db = openingDataFile(path, () => {
    const opened = new Database(path);
    opened.pragma('journal_mode = WAL');
    return opened;
  });
  // Atomic and crash-safe for the process; a power loss may drop the last commits, which the projection runner
  // replays from the checkpoint that survived.
  db.pragma('synchronous = NORMAL');
  // Checkpoints run in a worker thread (see backgroundCheckpointer.ts), never inside a commit on the event loop.
  db.pragma('wal_autocheckpoint = 0');
  const checkpointer = startBackgroundCheckpointer(path);
  // Reads are served from memory; SQLite's page cache only serves writes, so keep it small (8 MiB).
  db.pragma('cache_size = -8192');
  db.exec(`
    -- Rows are addressed by rowid (kept in memory), not by a (collection, id) key: random ids in a B-tree index made
    -- every 1000-document batch rewrite ~1000 pages, while rowid inserts append.
    CREATE TABLE IF NOT EXISTS docs (collection TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS docs_collection ON docs (collection);
    CREATE TABLE IF NOT EXISTS checkpoints (projection TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS indexes (collection TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,
      PRIMARY KEY (collection, name));
    CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL,
      expires_at INTEGER NOT NULL, position INTEGER NOT NULL);
  `);
  upgradeDiskDocs(db);
  db.exec(DISK_DOCS);
  const onDisk = new Set(options.diskCollections ?? []);
  // A collection that was kept in memory before moves to disk once.
  for (const name of onDisk) {
    db.transaction(() => {
      db.prepare('INSERT OR REPLACE INTO disk_docs (collection, id, json) SELECT collection, id, json FROM docs WHERE collection = ?').run(name);
      db.prepare('DELETE FROM docs WHERE collection = ?').run(name);
    })();
  }

  const sql = {
    insertDoc: db.prepare('INSERT INTO docs (collection, id, json) VALUES (?, ?, ?)'),
    updateDoc: db.prepare('UPDATE docs SET json = ? WHERE rowid = ?'),
    deleteDoc: db.prepare('DELETE FROM docs WHERE rowid = ?'),
    deleteCollection: db.prepare('DELETE FROM docs WHERE collection = ?'),
    getCheckpoint: db.prepare<[string], { version: number; position: number }>(
      'SELECT version, position FROM checkpoints WHERE projection = ?',
    ),
    // A checkpoint never moves backwards within a version (a new version starts over).
    putCheckpoint: db.prepare(
      'INSERT INTO checkpoints (projection, version, position) VALUES (?, ?, ?) ' +
        'ON CONFLICT (projection) DO UPDATE SET version = excluded.version, position = excluded.position ' +
        'WHERE excluded.version <> checkpoints.version OR excluded.position >= checkpoints.position',
    ),
    putLease: db.prepare('INSERT OR REPLACE INTO leases (name, holder, epoch, expires_at, position) VALUES (?, ?, ?, ?, ?)'),
    deleteCheckpoint: db.prepare('DELETE FROM checkpoints WHERE projection = ?'),
    putIndex: db.prepare('INSERT OR REPLACE INTO indexes (collection, name, spec) VALUES (?, ?, ?)'),
    putDiskDoc: db.prepare('INSERT INTO disk_docs (collection, id, json) VALUES (?, ?, ?) ON CONFLICT (collection, id) DO UPDATE SET json = excluded.json'),
    deleteDiskDoc: db.prepare('DELETE FROM disk_docs WHERE collection = ? AND id = ?'),
    deleteDiskCollection: db.prepare('DELETE FROM disk_docs WHERE collection = ?'),
    getDiskDoc: db.prepare<[string, string], { json: string }>('SELECT json FROM disk_docs WHERE collection = ? AND id = ?'),
    countDisk: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM disk_docs WHERE collection = ?'),
  };
  /** Per disk collection: its declared indexes (for the SQL query plan and the scalar check on write). */
  const diskIndexes = new Map<string, Map<string, IndexSpec>>();
  const diskIndexesOf = (name: string) => {
    let m = diskIndexes.get(name);
    if (!m) diskIndexes.set(name, (m = new Map()));
    return m;
  };

  const collections = new Map<string, CollectionState>();
  const state = (name: string): CollectionState => {
    let s = collections.get(name);
    if (!s) {
      s = { docs: new Map(), rowids: new Map(), indexes: new Map() };
      collections.set(name, s);
    }
    return s;
  };

  const now = options.now ?? Date.now;
  const leases = new Map<string, Lease>();
  for (const row of db.prepare('SELECT name, holder, epoch, expires_at, position FROM leases').all() as {
    name: string;
    holder: string;
    epoch: number;
    expires_at: number;
    position: number;
  }[]) {
    // Expired: the file is locked to this process, so the lease's holder was a process that is gone.
    leases.set(row.name, { name: row.name, holder: row.holder, epoch: row.epoch, expiresAt: 0, position: row.position });
  }
  const putLease = (lease: Lease) => {
    sql.putLease.run(lease.name, lease.holder, lease.epoch, lease.expiresAt, lease.position);
    leases.set(lease.name, lease);
  };

  const rows = db.prepare('SELECT rowid, collection, id, json FROM docs').raw().iterate();
  for (const [rowid, collection, id, json] of rows as IterableIterator<[number, string, string, string]>) {
    const s = state(collection);
    s.docs.set(id, JSON.parse(json) as Doc);
    s.rowids.set(id, rowid);
  }
  for (const { collection, name, spec } of db.prepare('SELECT collection, name, spec FROM indexes').all() as {
    collection: string;
    name: string;
    spec: string;
  }[]) {
    if (onDisk.has(collection)) createDiskIndex(collection, name, JSON.parse(spec) as IndexSpec);
    else buildIndex(collection, state(collection), name, JSON.parse(spec) as IndexSpec);
  }

  /** The last commit's outcome, for health(): the projection runner logs its failures. */
  const commits = createWriteHealth('read store');
  const persist = db.transaction(
    (writes: readonly Write[], checkpoints: readonly ProjectionCheckpoint[], undo: Undo[]) => {
      for (const w of writes) {
        if (onDisk.has(w.collection)) {
          if (w.doc === null) sql.deleteDiskDoc.run(w.collection, w.id);
          else {
            assertScalarIndexed(w.collection, w.doc);
            sql.putDiskDoc.run(w.collection, w.id, JSON.stringify(w.doc));
          }
          continue;
        }
        const s = state(w.collection);
        // Stored documents are parsed back from their JSON: memory holds exactly what a reopen would load, and
        // shares nothing with the caller's objects.
        const json = w.doc === null ? null : JSON.stringify(w.doc);
        const doc = json === null ? null : (JSON.parse(json) as Doc);
        if (doc) assertUnique(w.collection, s, doc);
        const rowid = s.rowids.get(w.id);
        undo.push({ s, id: w.id, doc: s.docs.get(w.id) ?? null, rowid });
        setDoc(s, w.id, doc);
        if (json === null) {
          if (rowid !== undefined) sql.deleteDoc.run(rowid);
          s.rowids.delete(w.id);
        } else if (rowid !== undefined) {
          sql.updateDoc.run(json, rowid);
        } else {
          s.rowids.set(w.id, Number(sql.insertDoc.run(w.collection, w.id, json).lastInsertRowid));
        }
      }
      for (const checkpoint of checkpoints) sql.putCheckpoint.run(checkpoint.projection, checkpoint.version, checkpoint.position);
    },
  );

  /** Apply writes in order to memory and SQLite, with the checkpoint, in one transaction: all or nothing. */
  function write(writes: readonly Write[], checkpoints: readonly ProjectionCheckpoint[]) {
    const undo: Undo[] = [];
    try {
      persist(writes, checkpoints, undo);
      commits.succeeded();
    } catch (error) {
      commits.failed(error);
      for (const u of undo.reverse()) {
        setDoc(u.s, u.id, u.doc);
        if (u.rowid === undefined) u.s.rowids.delete(u.id);
        else u.s.rowids.set(u.id, u.rowid);
      }
      throw error;
    }
  }

  function buildIndex(collection: string, s: CollectionState, name: string, spec: IndexSpec): Index {
    const index: Index = { name, spec, fields: lookupFields(spec), entries: new Map(), multi: new Set() };
    for (const doc of s.docs.values()) {
      const { key, multi } = indexKey(index, doc);
      const ids = index.entries.get(key);
      if (spec.unique && ids?.size) throw duplicateKey(collection, index, key);
      if (ids) ids.add(doc._id);
      else index.entries.set(key, new Set([doc._id]));
      if (multi) index.multi.add(doc._id);
    }
    s.indexes.set(name, index);
    return index;
  }

  /** A disk collection's index: SQLite indexes the JSON values of its fields (then `_id`, for ordered pages). */
  function createDiskIndex(collection: string, name: string, spec: IndexSpec) {
    if (spec.unique) throw new ValidationError(`Unique indexes are not supported on the disk collection ${collection}`, { collection, index: name });
    const fields = lookupFields(spec);
    for (const field of fields) {
      if (!SAFE_FIELD.test(field)) throw new ValidationError(`Index field ${field} on ${collection} must be a plain (dotted) name`, { collection, index: name });
    }
    const expressions = fields.map((f) => `json_extract(json, '$.${f}')`).join(', ');
    // Named by its lookup fields: `{ accountId: 1 }` and `{ accountId: 1, _id: 1 }` are one SQL index.
    db.exec(`CREATE INDEX IF NOT EXISTS "disk_${collection}_${fields.map((f) => `${f}_1`).join('_')}" ON disk_docs (${expressions}, id) WHERE collection = ${sqlString(collection)}`);
    diskIndexesOf(collection).set(name, spec);
  }

  /** Indexed fields of disk documents must be scalars: SQLite compares the JSON value, Mongo matches array elements. */
  function assertScalarIndexed(collection: string, doc: Doc) {
    for (const spec of diskIndexes.get(collection)?.values() ?? []) {
      for (const field of Object.keys(spec.keys)) {
        const value = valueAt(doc, field);
        if (typeof value === 'object' && value !== null) {
          throw new ValidationError(`Field ${field} of ${collection}/${doc._id} is indexed and must be a scalar`, { collection, field });
        }
      }
    }
  }

  /** updateOne / replaceOne / deleteOne for both kinds of collection: find, change a copy (`copy`), write. */
  function writeMethods(name: string, findDocs: (filter: Filter, options?: FindOptions) => Doc[], copy: (doc: Doc) => Doc): Pick<ReadCollection, 'updateOne' | 'replaceOne' | 'deleteOne'> {
    return {
      async updateOne(filter, update, options) {
        const { $setOnInsert, ...modifier } = update;
        const existing = findDocs(filter, { limit: 1 })[0];
        if (existing) {
          if (Object.keys(modifier).length === 0) return { matched: 1, upserted: false };
          const next = copy(existing);
          applyModifier(next, modifier as Modifier<Doc>);
          write([{ collection: name, id: existing._id, doc: next }], []);
          return { matched: 1, upserted: false };
        }
        if (!options?.upsert) return { matched: 0, upserted: false };
        // mingo refuses to $set an _id, so the new document starts with it.
        const { _id: filterId, ...fields } = equalityFields(filter);
        const { _id: insertId, ...onInsert } = $setOnInsert ?? {};
        const _id = filterId ?? insertId ?? randomUUID();
        if (typeof _id !== 'string') throw new ValidationError('Read-model documents need a string _id', { collection: name });
        const doc: Doc = { _id };
        for (const mods of [{ $set: fields }, modifier, { $set: onInsert }]) {
          if (Object.values(mods).some((m) => Object.keys(m ?? {}).length > 0)) applyModifier(doc, mods as Modifier<Doc>);
        }
        write([{ collection: name, id: _id, doc }], []);
        return { matched: 0, upserted: true };
      },
      async replaceOne(doc) {
        write([{ collection: name, id: doc._id, doc }], []);
      },
      async deleteOne(filter) {
        const existing = findDocs(filter, { limit: 1 })[0];
        if (!existing) return 0;
        write([{ collection: name, id: existing._id, doc: null }], []);
        return 1;
      },
    };
  }

  /** Disk queries by shape (a few per collection: which index, `_id` range, order): prepared once each. */
  const diskQueries = new Map<string, Database.Statement>();
  const diskQuery = (query: string) => {
    let statement = diskQueries.get(query);
    if (!statement) diskQueries.set(query, (statement = db.prepare(query).pluck()));
    return statement;
  };

  function diskCollection<T extends Doc>(name: string): ReadCollection<T> {
    /** Candidates from SQLite, plus whether SQL already applied the whole filter, sort and page. */
    const fetch = (filter: Filter, options: FindOptions = {}): { docs: Doc[]; exact: boolean } => {
      const ids = idLookup(filter['_id']);
      if (ids) {
        const docs: Doc[] = [];
        for (const id of ids) {
          const row = sql.getDiskDoc.get(name, id);
          if (row) docs.push(JSON.parse(row.json) as Doc);
        }
        // SQL matched the `_id`s already (a document is stored under its `_id`): with nothing else to test and no order
        // asked, only the page is left, so mingo (11% of the storage thread's batches, bench/README.md) is skipped.
        if (Object.keys(filter).length > 1 || Object.keys(options.sort ?? {}).length > 0) return { docs, exact: false };
        const skip = options.skip && options.skip > 0 ? options.skip : 0;
        const limit = options.limit && options.limit > 0 ? options.limit : docs.length;
        return { docs: docs.slice(skip, skip + limit), exact: true };
      }
      // The collection named literally: SQLite uses a partial index only for a query whose WHERE implies the index's.
      const where = [`collection = ${sqlString(name)}`];
      const params: unknown[] = [];
      const pushed = new Set<string>();
      for (const spec of diskIndexes.get(name)?.values() ?? []) {
        const field = Object.keys(spec.keys)[0]!;
        const value = equalityValue(filter[field]);
        if (value === undefined) continue;
        where.push(`json_extract(json, '$.${field}') = ?`);
        params.push(typeof value === 'boolean' ? Number(value) : value);
        // JSON true reads back as 1 in SQL, so a boolean narrows the candidates but is tested again.
        if (typeof value !== 'boolean') pushed.add(field);
        break;
      }
      const range = idRange(filter['_id']);
      if (range) {
        for (const [op, value] of range) where.push(`id ${op} ?`), params.push(value);
        pushed.add('_id');
      }
      const sortKeys = Object.keys(options.sort ?? {});
      const exact = Object.keys(filter).every((k) => pushed.has(k)) && (sortKeys.length === 0 || (sortKeys.length === 1 && sortKeys[0] === '_id'));
      let query = `SELECT json FROM disk_docs WHERE ${where.join(' AND ')}`;
      if (exact) {
        query += ` ORDER BY id ${options.sort?.['_id'] === -1 ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`;
        params.push(options.limit && options.limit > 0 ? options.limit : -1, options.skip && options.skip > 0 ? options.skip : 0);
      }
      const rows = diskQuery(query).all(...params) as string[];
      return { docs: rows.map((json) => JSON.parse(json) as Doc), exact };
    };

    const findDocs = (filter: Filter, options: FindOptions = {}): Doc[] => {
      const { docs, exact } = fetch(filter, options);
      if (exact) return docs;
      let cursor = new Query(filter, mingoOptions).find<Doc>(docs);
      if (options.sort && Object.keys(options.sort).length > 0) cursor = cursor.sort(options.sort);
      if (options.skip && options.skip > 0) cursor = cursor.skip(options.skip);
      if (options.limit && options.limit > 0) cursor = cursor.limit(options.limit);
      return cursor.all();
    };

    return {
      name,
      async findOne(filter) {
        return (findDocs(filter, { limit: 1 })[0] as T | undefined) ?? null;
      },
      async find(filter, options) {
        return findDocs(filter, options) as T[];
      },
      async count(filter = {}) {
        if (Object.keys(filter).length === 0) return sql.countDisk.get(name)!.n;
        return findDocs(filter).length;
      },
      async aggregate<R>(pipeline: readonly Record<string, unknown>[]) {
        const first = pipeline[0];
        const match = first && '$match' in first ? (first['$match'] as Filter) : {};
        const aggregator = new Aggregator([...pipeline], { ...mingoOptions, collectionResolver: (other) => allDocsOf(other) });
        return aggregator.run(fetch(match).docs) as R[];
      },
      ...writeMethods(name, findDocs, (doc) => doc), // documents read from disk are fresh copies already
      async createIndex(spec) {
        const indexName = spec.name ?? Object.entries(spec.keys).map(([k, d]) => `${k}_${d}`).join('_');
        const existing = diskIndexes.get(name)?.get(indexName);
        if (existing) {
          if (JSON.stringify(existing.keys) === JSON.stringify(spec.keys) && !existing.unique === !spec.unique) return;
          throw new ConflictError(`Index ${indexName} already exists on ${name} with a different definition`, { collection: name });
        }
        const full = { ...spec, name: indexName };
        createDiskIndex(name, indexName, full);
        sql.putIndex.run(name, indexName, JSON.stringify(full));
      },
    };
  }

  /** Every document of a collection (for `$lookup`), as copies. */
  function allDocsOf(name: string): Doc[] {
    if (onDisk.has(name)) return (db.prepare('SELECT json FROM disk_docs WHERE collection = ?').pluck().all(name) as string[]).map((j) => JSON.parse(j) as Doc);
    return [...state(name).docs.values()].map(cloneJson);
  }

  function collection<T extends Doc>(name: string): ReadCollection<T> {
    if (onDisk.has(name)) return diskCollection<T>(name);
    const s = state(name);

    const findDocs = (filter: Filter, options: FindOptions = {}): Doc[] => {
      const skip = options.skip && options.skip > 0 ? options.skip : 0;
      const limit = options.limit && options.limit > 0 ? options.limit : Infinity;
      if (options.sort && Object.keys(options.sort).length > 0) {
        let cursor = new Query({}, mingoOptions).find<Doc>(matching(s, filter)).sort(options.sort);
        if (skip > 0) cursor = cursor.skip(skip);
        if (limit < Infinity) cursor = cursor.limit(limit);
        return cursor.all();
      }
      const found: Doc[] = [];
      let skipped = 0;
      for (const doc of matching(s, filter)) {
        if (skipped++ < skip) continue;
        if (found.push(doc) >= limit) break;
      }
      return found;
    };

    return {
      name,
      async findOne(filter) {
        const doc = findDocs(filter, { limit: 1 })[0];
        return doc ? (cloneJson(doc) as T) : null;
      },
      async find(filter, options) {
        return findDocs(filter, options).map((d) => cloneJson(d) as T);
      },
      async count(filter = {}) {
        if (Object.keys(filter).length === 0) return s.docs.size;
        let n = 0;
        for (const _ of matching(s, filter)) n++;
        return n;
      },
      async aggregate<R>(pipeline: readonly Record<string, unknown>[]) {
        const first = pipeline[0];
        const match = first && '$match' in first ? (first['$match'] as Filter) : {};
        const readOnly = pipeline.every((stage) => Object.keys(stage).every((op) => readOnlyStages.has(op)));
        const aggregator = new Aggregator([...pipeline], {
          ...mingoOptions,
          processingMode: readOnly ? ProcessingMode.CLONE_OFF : ProcessingMode.CLONE_INPUT,
          collectionResolver: allDocsOf,
        });
        // The first $match still runs in full: the candidates only narrow its input.
        return aggregator.run(candidates(s, match).docs).map((r) => cloneJson(r) as R);
      },
      ...writeMethods(name, findDocs, cloneJson),
      async createIndex(spec) {
        const indexName = spec.name ?? Object.entries(spec.keys).map(([k, d]) => `${k}_${d}`).join('_');
        const existing = s.indexes.get(indexName);
        if (existing) {
          const sameKeys = JSON.stringify(existing.spec.keys) === JSON.stringify(spec.keys);
          if (sameKeys && !existing.spec.unique === !spec.unique) return;
          throw new ConflictError(`Index ${indexName} already exists on ${name} with a different definition`, {
            collection: name,
          });
        }
        const full = { ...spec, name: indexName };
        buildIndex(name, s, indexName, full);
        sql.putIndex.run(name, indexName, JSON.stringify(full));
      },
    };
  }

  const handles = new Map<string, ReadCollection>();

  return {
    kind: 'embedded',
    collection<T extends Doc = Doc>(name: string): ReadCollection<T> {
      let handle = handles.get(name);
      if (!handle) {
        handle = collection(name);
        handles.set(name, handle);
      }
      return handle as unknown as ReadCollection<T>;
    },
    async getCheckpoint(projection) {
      const row = sql.getCheckpoint.get(projection);
      return row ? { projection, version: row.version, position: row.position } : null;
    },
    async commit(writes: readonly DocWrite[], checkpoint, fence?: Fence) {
      const checkpoints = Array.isArray(checkpoint) ? checkpoint : [checkpoint as ProjectionCheckpoint];
      const lease = fence && leases.get(fence.lease);
      if (fence && (!lease || lease.holder !== fence.holder || lease.epoch !== fence.epoch)) throw leaseLost(fence.lease, fence.holder);
      const position = Math.max(0, ...checkpoints.map((c) => c.position));
      write(
        writes.map((w) => {
          if (w.doc && w.doc._id !== w.id) {
            throw new ValidationError(`Write for ${w.collection}/${w.id} carries a document with _id ${w.doc._id}`);
          }
          const _pos = w.doc && typeof w.doc._pos === 'number' ? w.doc._pos : position;
          return { collection: w.collection, id: w.id, doc: w.doc && { ...w.doc, _pos } };
        }),
        checkpoints,
      );
      if (fence && lease) leases.set(fence.lease, { ...lease, position: fence.position });
    },
    async acquireLease(name, holder, ttlMs) {
      const current = leases.get(name);
      const at = now();
      if (current && current.holder !== holder && current.expiresAt > at) return null;
      const epoch = current?.holder === holder ? current.epoch : (current?.epoch ?? 0) + 1;
      const lease: Lease = { name, holder, epoch, expiresAt: at + ttlMs, position: current?.position ?? 0 };
      putLease(lease);
      return { ...lease };
    },
    async releaseLease(name, holder, epoch) {
      const current = leases.get(name);
      if (current && current.holder === holder && current.epoch === epoch) putLease({ ...current, expiresAt: 0 });
    },
    async readLease(name) {
      const current = leases.get(name);
      return current ? { ...current } : null;
    },
    async reset(projection, names) {
      db.transaction(() => {
        for (const name of names) (onDisk.has(name) ? sql.deleteDiskCollection : sql.deleteCollection).run(name);
        sql.deleteCheckpoint.run(projection);
      })();
      for (const name of names) {
        if (onDisk.has(name)) continue;
        const s = state(name);
        s.docs.clear();
        s.rowids.clear();
        for (const index of s.indexes.values()) {
          index.entries.clear();
          index.multi.clear();
        }
      }
    },
    async health() {
      try {
        db.prepare('SELECT 1').get();
        const failure = commits.failure();
        if (failure) return { ok: false, kind: 'embedded', detail: `${path}: the last write failed (${failure.message})`, lastWriteFailure: failure };
        return { ok: true, kind: 'embedded', detail: path };
      } catch (error) {
        return { ok: false, kind: 'embedded', detail: error instanceof Error ? error.message : String(error) };
      }
    },
    async close() {
      await checkpointer.stop();
      if (db.open) db.close();
      lock.release();
    },
  };
}

/**
 * The documents a filter can match and the part of the filter they still have to pass: direct lookups for `_id`
 * equality / `$in` (which then need no `_id` test), an index for field equality, else every document.
 */
function candidates(s: CollectionState, filter: Filter): { docs: Iterable<Doc>; rest: Filter } {
  const ids = idLookup(filter['_id']);
  if (ids) {
    const { _id, ...rest } = filter;
    return { docs: lookup(s, ids), rest };
  }
  for (const index of s.indexes.values()) {
    const values = index.fields.map((f) => equalityValue(filter[f]));
    if (values.some((v) => v === undefined)) continue;
    const hits = index.entries.get(JSON.stringify(values));
    return { docs: lookup(s, hits ? new Set([...hits, ...index.multi]) : index.multi), rest: filter };
  }
  return { docs: s.docs.values(), rest: filter };
}

function* matching(s: CollectionState, filter: Filter): Iterable<Doc> {
  const { docs, rest } = candidates(s, filter);
  const query = Object.keys(rest).length > 0 ? new Query(rest, mingoOptions) : null;
  for (const doc of docs) if (!query || query.test(doc)) yield doc;
}

/**
 * The fields an index is looked up by. A trailing `_id` (as in `{ accountId: 1, _id: 1 }`, which lets MongoDB page
 * an account's documents in `_id` order) adds nothing here: `_id` is unique, candidates are sorted in memory, and the
 * disk index ends with the id anyway. So such an index serves equality on the fields before it.
 */
function lookupFields(spec: IndexSpec): string[] {
  const fields = Object.keys(spec.keys);
  return fields.length > 1 && fields[fields.length - 1] === '_id' ? fields.slice(0, -1) : fields;
}

/** Only letters, digits, `_` and dots: field names go into SQL JSON paths of disk indexes. */
const SAFE_FIELD = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

function valueAt(doc: Doc, path: string): unknown {
  let value: unknown = doc;
  for (const part of path.split('.')) value = isPlainObject(value) ? value[part] : undefined;
  return value;
}

/** `_id` range conditions as SQL comparisons, when the condition is only `$gt` / `$gte` / `$lt` / `$lte` on strings. */
function idRange(condition: unknown): [string, string][] | null {
  if (!isPlainObject(condition)) return null;
  const ops: Record<string, string> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };
  const out: [string, string][] = [];
  for (const [op, value] of Object.entries(condition)) {
    if (!(op in ops) || typeof value !== 'string') return null;
    out.push([ops[op]!, value]);
  }
  return out.length > 0 ? out : null;
}

function idLookup(condition: unknown): Iterable<string> | null {
  if (typeof condition === 'string') return [condition];
  if (!isPlainObject(condition)) return null;
  const ops = Object.keys(condition);
  if (ops.length !== 1) return null;
  if (typeof condition['$eq'] === 'string') return [condition['$eq']];
  const list = condition['$in'];
  if (Array.isArray(list) && list.every((id): id is string => typeof id === 'string')) return new Set(list);
  return null;
}

function* lookup(s: CollectionState, ids: Iterable<string>): Iterable<Doc> {
  for (const id of ids) {
    const doc = s.docs.get(id);
    if (doc) yield doc;
  }
}

/** A filter value usable for an index lookup: a string, number or boolean compared for equality. */
function equalityValue(condition: unknown): string | number | boolean | undefined {
  const value = isPlainObject(condition) && Object.keys(condition).length === 1 ? condition['$eq'] : condition;
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : undefined;
}

function indexKey(index: Index, doc: Doc): { key: string; multi: boolean } {
  let multi = false;
  const values = index.fields.map((field) => {
    let value: unknown = doc;
    for (const part of field.split('.')) {
      if (Array.isArray(value)) multi = true;
      value = isPlainObject(value) ? value[part] : undefined;
    }
    if (Array.isArray(value)) multi = true;
    return value ?? null;
  });
  return { key: JSON.stringify(values), multi };
}

function setDoc(s: CollectionState, id: string, doc: Doc | null): void {
  const prev = s.docs.get(id);
  for (const index of s.indexes.values()) {
    if (prev) {
      const { key } = indexKey(index, prev);
      const ids = index.entries.get(key);
      ids?.delete(id);
      if (ids?.size === 0) index.entries.delete(key);
      index.multi.delete(id);
    }
    if (doc) {
      const { key, multi } = indexKey(index, doc);
      const ids = index.entries.get(key);
      if (ids) ids.add(id);
      else index.entries.set(key, new Set([id]));
      if (multi) index.multi.add(id);
    }
  }
  if (doc) s.docs.set(id, doc);
  else s.docs.delete(id);
}

function assertUnique(collection: string, s: CollectionState, doc: Doc): void {
  for (const index of s.indexes.values()) {
    if (!index.spec.unique) continue;
    const { key } = indexKey(index, doc);
    const ids = index.entries.get(key);
    if (ids && [...ids].some((id) => id !== doc._id)) throw duplicateKey(collection, index, key);
  }
}

function duplicateKey(collection: string, index: Index, key: string): ConflictError {
  return new ConflictError(`Duplicate key in ${collection} for unique index ${index.name}: ${key}`, {
    collection,
    index: index.name,
  });
}

/** The fields an upsert takes from its filter, as Mongo does: plain equalities, `$eq`, and those inside `$and`. */
function equalityFields(filter: Filter): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const part of value) if (isPlainObject(part)) Object.assign(fields, equalityFields(part));
    } else if (key.startsWith('$')) {
      continue;
    } else if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'))) {
      if ('$eq' in value) fields[key] = value['$eq'];
    } else {
      fields[key] = value;
    }
  }
  return fields;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function cloneJson<V>(value: V): V {
  if (Array.isArray(value)) return value.map(cloneJson) as V;
  if (!isPlainObject(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const key in value) copy[key] = cloneJson(value[key]);
  return copy as V;
}

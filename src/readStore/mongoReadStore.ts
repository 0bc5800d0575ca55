import { randomUUID } from 'node:crypto';
import {
  MongoBulkWriteError,
  MongoServerError,
  type AnyBulkWriteOperation,
  type ClientSession,
  type Filter as MongoFilter,
  type UpdateFilter,
} from 'mongodb';
import { ConflictError, ValidationError } from '../errors.js';
import { connectMongo } from './mongoConnect.js';
import { leaseLost, type Doc, type DocWrite, type Fence, type Filter, type Lease, type ProjectionCheckpoint, type ReadCollection, type ReadStore, type Update } from './readStore.js';

/**
 * MongoDB ReadStore. `commit` writes the documents (each carrying `_pos`: the runner's, else the checkpoint position)
 * and then the checkpoint: in one transaction when the server is a replica set or sharded cluster, otherwise in that
 * order, so a crash in between leaves documents whose `_pos` tells the runner the replayed events are already applied.
 *
 * Leases are documents of `leases`, timed by the server's clock (`$$NOW`), so the processes' clocks need not agree.
 * A fenced commit first updates its lease document where holder and epoch still match, inside the transaction: a
 * takeover either happened before (nothing matches: the commit is refused) or conflicts with the transaction's
 * write and waits for it, so no write of a former holder lands after a new holder started. Without transactions
 * (a standalone server) the fence is checked just before the writes, not atomically with them: run a replica set.
 */

interface LeaseDoc {
  _id: string;
  holder: string;
  epoch: number;
  expiresAt: Date;
  position: number;
}

interface CheckpointDoc {
  _id: string;
  version: number;
  position: number;
}

export async function openMongoReadStore(url: string, options: { dbName?: string } = {}): Promise<ReadStore> {
  const client = await connectMongo(url, 'the MongoDB read store');
  const db = client.db(options.dbName);
  const checkpoints = db.collection<CheckpointDoc>('checkpoints');
  const leases = db.collection<LeaseDoc>('leases');
  const toLease = (doc: LeaseDoc): Lease => ({ name: doc._id, holder: doc.holder, epoch: doc.epoch, expiresAt: doc.expiresAt.getTime(), position: doc.position });
  const hello = await db.admin().command({ hello: 1 });
  // Standalone servers reject transactions; replica sets and mongos accept them.
  const transactions = typeof hello['setName'] === 'string' || hello['msg'] === 'isdbgrid';

  const inTransaction = async (work: (session: ClientSession | undefined) => Promise<void>): Promise<void> => {
    if (!transactions) return work(undefined);
    await client.withSession((session) => session.withTransaction(() => work(session)));
  };

  function collection<T extends Doc>(name: string): ReadCollection<T> {
    const coll = db.collection<Doc>(name);
    return {
      name,
      async findOne(filter) {
        return (await coll.findOne(filter as MongoFilter<Doc>)) as T | null;
      },
      async find(filter, options = {}) {
        let cursor = coll.find(filter as MongoFilter<Doc>);
        if (options.sort && Object.keys(options.sort).length > 0) cursor = cursor.sort(options.sort);
        if (options.skip && options.skip > 0) cursor = cursor.skip(options.skip);
        if (options.limit && options.limit > 0) cursor = cursor.limit(options.limit);
        return (await cursor.toArray()) as T[];
      },
      async count(filter = {}) {
        return coll.countDocuments(filter as MongoFilter<Doc>);
      },
      async aggregate<R>(pipeline: readonly Record<string, unknown>[]) {
        return (await coll.aggregate([...pipeline]).toArray()) as R[];
      },
      async updateOne(filter, update, options) {
        const modifier = jsonUpdate(update) as UpdateFilter<Doc>;
        // Mongo would give an upserted document an ObjectId; read models use string ids.
        if (options?.upsert && !hasIdEquality(filter)) {
          modifier.$setOnInsert = { _id: randomUUID(), ...(modifier.$setOnInsert ?? {}) } as UpdateFilter<Doc>['$setOnInsert'];
        }
        const result = await mapConflicts(name, () =>
          coll.updateOne(filter as MongoFilter<Doc>, modifier, { upsert: options?.upsert ?? false }),
        );
        return { matched: result.matchedCount, upserted: result.upsertedCount > 0 };
      },
      async replaceOne(doc) {
        await mapConflicts(name, () => coll.replaceOne({ _id: doc._id }, jsonDoc(doc), { upsert: true }));
      },
      async deleteOne(filter) {
        return (await coll.deleteOne(filter as MongoFilter<Doc>)).deletedCount;
      },
      async createIndex(index) {
        await mapConflicts(name, () =>
          coll.createIndex(index.keys, { unique: index.unique ?? false, ...(index.name ? { name: index.name } : {}) }),
        );
      },
    };
  }

  return {
    kind: 'mongodb',
    collection<T extends Doc = Doc>(name: string) {
      return collection<T>(name);
    },
    async getCheckpoint(projection) {
      const doc = await checkpoints.findOne({ _id: projection });
      return doc ? { projection, version: doc.version, position: doc.position } : null;
    },
    async commit(writes: readonly DocWrite[], checkpoint: ProjectionCheckpoint | readonly ProjectionCheckpoint[], fence?: Fence) {
      const list: readonly ProjectionCheckpoint[] = Array.isArray(checkpoint) ? checkpoint : [checkpoint as ProjectionCheckpoint];
      const position = Math.max(0, ...list.map((c) => c.position));
      const byCollection = new Map<string, AnyBulkWriteOperation<Doc>[]>();
      for (const w of writes) {
        if (w.doc && w.doc._id !== w.id) {
          throw new ValidationError(`Write for ${w.collection}/${w.id} carries a document with _id ${w.doc._id}`);
        }
        const _pos = w.doc && typeof w.doc._pos === 'number' ? w.doc._pos : position;
        const op: AnyBulkWriteOperation<Doc> = w.doc
          ? { replaceOne: { filter: { _id: w.id }, replacement: jsonDoc({ ...w.doc, _pos }), upsert: true } }
          : { deleteOne: { filter: { _id: w.id } } };
        const ops = byCollection.get(w.collection);
        if (ops) ops.push(op);
        else byCollection.set(w.collection, [op]);
      }
      await inTransaction(async (session) => {
        if (fence) {
          const held = await leases.updateOne({ _id: fence.lease, holder: fence.holder, epoch: fence.epoch }, { $set: { position: fence.position } }, { session });
          if (held.matchedCount === 0) throw leaseLost(fence.lease, fence.holder);
        }
        for (const [name, ops] of byCollection) {
          await mapConflicts(name, () => db.collection<Doc>(name).bulkWrite(ops, { ordered: true, session }));
        }
        for (const c of list) {
          // Never backwards within a version: the stored position stays when it is ahead.
          const behind = { $and: [{ $eq: ['$version', c.version] }, { $gt: ['$position', c.position] }] };
          await checkpoints.updateOne(
            { _id: c.projection },
            [{ $set: { version: c.version, position: { $cond: [behind, '$position', c.position] } } }],
            { upsert: true, session },
          );
        }
      });
    },
    async acquireLease(name, holder, ttlMs) {
      const mine = { $eq: ['$holder', { $literal: holder }] };
      try {
        const doc = await leases.findOneAndUpdate(
          { _id: name, $expr: { $or: [mine, { $lte: ['$expiresAt', '$$NOW'] }] } },
          [
            {
              $set: {
                epoch: { $cond: [mine, '$epoch', { $add: [{ $ifNull: ['$epoch', 0] }, 1] }] },
                holder: { $literal: holder },
                expiresAt: { $add: ['$$NOW', ttlMs] },
                position: { $ifNull: ['$position', 0] },
              },
            },
          ],
          { upsert: true, returnDocument: 'after' },
        );
        return doc ? toLease(doc) : null;
      } catch (error) {
        // The lease exists and the filter did not match it (another holder's, not expired): the upsert's insert collides.
        if (error instanceof MongoServerError && Number(error.code) === 11000) return null;
        throw error;
      }
    },
    async releaseLease(name, holder, epoch) {
      await leases.updateOne({ _id: name, holder, epoch }, { $set: { expiresAt: new Date(0) } });
    },
    async readLease(name) {
      const doc = await leases.findOne({ _id: name });
      return doc ? toLease(doc) : null;
    },
    async reset(projection, names) {
      // Documents first: if we stop half way the stale checkpoint survives and the rebuild is simply redone.
      for (const name of names) await db.collection(name).deleteMany({});
      await checkpoints.deleteOne({ _id: projection });
    },
    async health() {
      try {
        await db.command({ ping: 1 });
        return { ok: true, kind: 'mongodb', detail: `${db.databaseName}${transactions ? '' : ' (no transactions)'}` };
      } catch (error) {
        return { ok: false, kind: 'mongodb', detail: error instanceof Error ? error.message : String(error) };
      }
    },
    async close() {
      await client.close();
    },
  };
}

/**
 * JSON's `undefined`, as the embedded store stores it: fields dropped, array elements null. (The driver would store
 * both as null; its `ignoreUndefined` would also drop them from filters, where `{ f: undefined }` means `{ f: null }`.)
 */
function jsonValue(value: unknown, inArray: boolean): unknown {
  if (value === undefined) return inArray ? null : undefined;
  if (Array.isArray(value)) return value.map((v) => jsonValue(v, true));
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = jsonValue(v, false);
  return out;
}

const jsonDoc = (doc: Doc): Doc => jsonValue(doc, false) as Doc;

/** An update's undefined values as JSON would have them: `$set` of undefined removes the field, others are dropped. */
function jsonUpdate(update: Update): Update {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [op, fields] of Object.entries(update)) {
    if (!fields) continue;
    for (const [path, value] of Object.entries(fields)) {
      const target = op === '$set' && value === undefined ? '$unset' : op;
      if (value === undefined && target !== '$unset') continue;
      (out[target] ??= {})[path] = target === '$unset' ? '' : jsonValue(value, false);
    }
  }
  return out as Update;
}

function hasIdEquality(filter: Filter): boolean {
  const id = filter['_id'];
  return id !== undefined && (typeof id !== 'object' || id === null || '$eq' in id);
}

// Duplicate key, and an index that exists under the same name or keys with other options.
const conflictCodes = new Set([11000, 85, 86]);

async function mapConflicts<R>(collection: string, run: () => Promise<R>): Promise<R> {
  try {
    return await run();
  } catch (error) {
    const conflict =
      error instanceof MongoServerError &&
      (conflictCodes.has(Number(error.code)) ||
        (error instanceof MongoBulkWriteError && [error.writeErrors].flat().some((e) => conflictCodes.has(e.code))));
    if (conflict) throw new ConflictError(`Conflict in ${collection}: ${error.message}`, { collection });
    throw error;
  }
}

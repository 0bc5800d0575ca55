/**
 * The ReadStore port: read models as documents, queried with MongoDB's query language (the subset projections
 * and GraphQL need). Adapters: embedded (in-memory documents queried with mingo, persisted to a local SQLite
 * file together with the projection checkpoints) and MongoDB.
 *
 * Every document has a string `_id`. Projections write through `commit`, which stores a batch of document
 * writes together with the projection's checkpoint (atomically in the embedded adapter; in MongoDB each
 * document also carries the position it was last changed at, so a replay after a crash changes nothing).
 */

export type Doc = { _id: string } & Record<string, unknown>;

export type Filter = Record<string, unknown>;
export type SortSpec = Record<string, 1 | -1>;
/** `$set`, `$inc`, `$setOnInsert`, `$unset`, `$max`, `$min` are supported by every adapter. */
export type Update = Partial<Record<'$set' | '$inc' | '$setOnInsert' | '$unset' | '$max' | '$min', Record<string, unknown>>>;

export interface FindOptions {
  readonly sort?: SortSpec;
  readonly limit?: number;
  readonly skip?: number;
}

export interface IndexSpec {
  readonly keys: Record<string, 1 | -1>;
  readonly unique?: boolean;
  readonly name?: string;
}

export interface ReadCollection<T extends Doc = Doc> {
  readonly name: string;
  findOne(filter: Filter): Promise<T | null>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  count(filter?: Filter): Promise<number>;
  /** MongoDB aggregation pipeline ($match, $group, $sort, $project, $limit ...). */
  aggregate<R = Doc>(pipeline: readonly Record<string, unknown>[]): Promise<R[]>;
  /** Update one document matching the filter; with `upsert`, insert it (from the filter's equality fields) if none matches. */
  updateOne(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<{ matched: number; upserted: boolean }>;
  replaceOne(doc: T): Promise<void>;
  deleteOne(filter: Filter): Promise<number>;
  createIndex(index: IndexSpec): Promise<void>;
}

/** One document write of a projection batch: the whole new document, or null to delete it. */
export interface DocWrite {
  readonly collection: string;
  readonly id: string;
  readonly doc: Doc | null;
}

export interface ProjectionCheckpoint {
  readonly projection: string;
  /** The version of the projection's code that produced the documents; a different version forces a rebuild. */
  readonly version: number;
  /** Global position of the last event applied (0 = none). */
  readonly position: number;
}

export interface ReadStoreHealth {
  readonly ok: boolean;
  readonly kind: string;
  readonly detail?: string;
}

export interface ReadStore {
  readonly kind: 'embedded' | 'mongodb';
  collection<T extends Doc = Doc>(name: string): ReadCollection<T>;
  getCheckpoint(projection: string): Promise<ProjectionCheckpoint | null>;
  /** Store document writes and the new checkpoints (one per projection that wrote them) together. */
  commit(writes: readonly DocWrite[], checkpoints: ProjectionCheckpoint | readonly ProjectionCheckpoint[]): Promise<void>;
  /** Empty the given collections and forget the projection's checkpoint (for a rebuild). */
  reset(projection: string, collections: readonly string[]): Promise<void>;
  health(): Promise<ReadStoreHealth>;
  close(): Promise<void>;
}

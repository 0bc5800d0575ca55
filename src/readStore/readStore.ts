/**
 * The ReadStore port: read models as documents, queried with MongoDB's query language (the subset projections
 * and GraphQL need). Adapters: embedded (in-memory documents queried with mingo, persisted to a local SQLite
 * file together with the projection checkpoints) and MongoDB.
 *
 * Every document has a string `_id`. Projections write through `commit`, which stores a batch of document
 * writes together with the projection's checkpoint (atomically in the embedded adapter; in MongoDB each
 * document also carries the position it was last changed at, so a replay after a crash changes nothing).
 *
 * One projection runner writes at a time: it holds a lease kept in the store (`acquireLease`), and its commits carry
 * the lease's epoch as a fence, checked inside the commit's transaction, so a runner that lost the lease (it stalled
 * past the lease's expiry and another took over) cannot write older documents over newer ones. Checkpoints never
 * move backwards: a commit with a checkpoint below the stored one (same version) keeps the stored one.
 *
 * `undefined` is JSON's in every adapter: a document field (at any depth) set to undefined is absent, an array
 * element undefined is null, and `$set` of undefined removes the field; in a filter, `{ f: undefined }` matches
 * what `{ f: null }` matches (a missing or null field).
 */

import type { WriteFailure } from '../storage/writeHealth.js';
import { ConflictError } from '../errors.js';

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

/** Who may write the read models (see above). */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** Grows by one each time the lease passes to another holder: commits carry it, so a former holder's are refused. */
  readonly epoch: number;
  /** Unix ms, by the store's clock, after which another holder may take the lease unless it was renewed. */
  readonly expiresAt: number;
  /** The position up to which the holder has applied every read model: processes without the lease wait on it. */
  readonly position: number;
}

/** What a lease holder's commit carries: checked in the commit's transaction, and the position it has now applied. */
export interface Fence {
  readonly lease: string;
  readonly holder: string;
  readonly epoch: number;
  readonly position: number;
}

/** The error of a fenced commit, `releaseLease` excepted: the lease is held by another (a ConflictError). */
export const isLeaseLost = (error: unknown): boolean =>
  error instanceof ConflictError && typeof error.metadata['lease'] === 'string' && error.metadata['leaseLost'] === true;

export const leaseLost = (lease: string, holder: string): ConflictError =>
  new ConflictError(`The lease ${lease} is no longer held by ${holder}; its writes were refused`, { lease, leaseLost: true });

export interface ReadStoreHealth {
  readonly ok: boolean;
  readonly kind: string;
  readonly detail?: string;
  /** Its last commit failed for its storage (a full disk, a read-only file system, an I/O error): not ok until one succeeds. */
  readonly lastWriteFailure?: WriteFailure;
}

export interface ReadStore {
  readonly kind: 'embedded' | 'mongodb';
  collection<T extends Doc = Doc>(name: string): ReadCollection<T>;
  getCheckpoint(projection: string): Promise<ProjectionCheckpoint | null>;
  /**
   * Store document writes and the new checkpoints (one per projection that wrote them) together. With a `fence`,
   * only while the fence's holder and epoch still hold its lease (else nothing is stored: `isLeaseLost`), and the
   * lease's position becomes the fence's.
   */
  commit(writes: readonly DocWrite[], checkpoints: ProjectionCheckpoint | readonly ProjectionCheckpoint[], fence?: Fence): Promise<void>;
  /**
   * Take the lease for `ttlMs` if it is free or expired, or renew it if `holder` has it (keeping its epoch); a new
   * holder gets the next epoch. Null while another holder's lease runs.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | null>;
  /** Let the lease expire now, if `holder` still has it at `epoch` (a clean stop: another process takes over at once). */
  releaseLease(name: string, holder: string, epoch: number): Promise<void>;
  readLease(name: string): Promise<Lease | null>;
  /** Empty the given collections and forget the projection's checkpoint (for a rebuild). */
  reset(projection: string, collections: readonly string[]): Promise<void>;
  health(): Promise<ReadStoreHealth>;
  close(): Promise<void>;
}

import { connectMongo } from '../readStore/mongoConnect.js';
import type { ContentInput, ContentOutput, ContentStore, StoredContent, StoredReplay } from './contentStore.js';

interface ContentDoc {
  _id: string;
  accountId: string;
  createdAt: Date;
  input: ContentInput;
  output: ContentOutput;
}

/** An account's cuts (see the port): content and replays of its calls started at or before them are not stored. */
interface CutDoc {
  _id: string;
  contentAt: Date;
  replayAt: Date;
}

interface ReplayDoc {
  _id: string;
  accountId: string;
  createdAt: Date;
  sealed: string;
}

export const CONTENT_COLLECTION = 'generation_content';
export const REPLAY_COLLECTION = 'idempotent_replays';
export const CUT_COLLECTION = 'content_cuts';
const NO_CUT = new Date(0);

/**
 * The MongoDB ContentStore: one document per generation in `generation_content` (and per replay in
 * `idempotent_replays`), in the read models' database,
 * written with the default write concern (see the port: content is not an audit record); the accounts' cuts in
 * `content_cuts`. A write and a cut are not one operation here: a put writes first, then reads its account's cut and
 * takes its write back when the cut is as late as its call, while a delete cuts first, then deletes. Whichever order
 * they meet in, nothing of a call started before the cut is left (a process's own reads wait for its puts).
 */
export async function openMongoContentStore(url: string, options: { dbName?: string } = {}): Promise<ContentStore> {
  const client = await connectMongo(url, 'MongoDB for the content store');
  const content = client.db(options.dbName).collection<ContentDoc>(CONTENT_COLLECTION);
  await content.createIndex({ accountId: 1 });
  await content.createIndex({ createdAt: 1 });
  const replays = client.db(options.dbName).collection<ReplayDoc>(REPLAY_COLLECTION);
  await replays.createIndex({ createdAt: 1 });
  const cuts = client.db(options.dbName).collection<CutDoc>(CUT_COLLECTION);
  /** Whether the account was cut (`field`) at or after `startedAt`. */
  const cutSince = async (accountId: string, field: 'contentAt' | 'replayAt', startedAt: Date) => (await cuts.countDocuments({ _id: accountId, [field]: { $gte: startedAt } }, { limit: 1 })) > 0;
  const cutAt = (accountId: string, contentAt: Date, replayAt: Date) =>
    cuts.updateOne({ _id: accountId }, { $max: { contentAt, replayAt } }, { upsert: true });

  return {
    kind: 'mongodb',
    async put(stored: StoredContent) {
      const { generationId, accountId, createdAt, input, output } = stored;
      // Storing an id again changes nothing: insert only when absent.
      const started = new Date(createdAt);
      const written = await content.updateOne({ _id: generationId }, { $setOnInsert: { accountId, createdAt: started, input, output } }, { upsert: true });
      // Only what this put inserted is taken back (a second put of a kept id leaves it).
      if (written.upsertedCount === 1 && (await cutSince(accountId, 'contentAt', started))) await content.deleteOne({ _id: generationId, accountId });
    },
    async cut(accountId: string, at: Date) {
      await cutAt(accountId, at, NO_CUT);
    },
    async get(generationIds: readonly string[]) {
      const found = new Map<string, StoredContent>();
      for (const doc of await content.find({ _id: { $in: [...generationIds] } }).toArray()) {
        found.set(doc._id, { generationId: doc._id, accountId: doc.accountId, createdAt: doc.createdAt.toISOString(), input: doc.input, output: doc.output });
      }
      return generationIds.map((id) => found.get(id) ?? null);
    },
    async deleteAccount(accountId: string, at: Date) {
      await cutAt(accountId, at, at);
      await replays.deleteMany({ accountId });
      return (await content.deleteMany({ accountId })).deletedCount;
    },
    async purgeBefore(before: Date) {
      await cuts.deleteMany({ contentAt: { $lt: before }, replayAt: { $lt: before } });
      return (await content.deleteMany({ createdAt: { $lt: before } })).deletedCount;
    },
    async putReplay(replay: StoredReplay, callStartedAt: string) {
      const { generationId, accountId } = replay;
      const written = await replays.updateOne({ _id: generationId }, { $setOnInsert: { accountId, createdAt: new Date(replay.createdAt), sealed: replay.sealed } }, { upsert: true });
      if (written.upsertedCount === 1 && (await cutSince(accountId, 'replayAt', new Date(callStartedAt)))) await replays.deleteOne({ _id: generationId, accountId });
    },
    async getReplay(generationId: string) {
      const doc = await replays.findOne({ _id: generationId });
      return doc ? { generationId: doc._id, accountId: doc.accountId, createdAt: doc.createdAt.toISOString(), sealed: doc.sealed } : null;
    },
    async purgeReplaysBefore(before: Date) {
      return (await replays.deleteMany({ createdAt: { $lt: before } })).deletedCount;
    },
    async close() {
      await client.close();
    },
  };
}

import { connectMongo } from '../readStore/mongoConnect.js';
import type { ContentInput, ContentOutput, ContentStore, StoredContent, StoredReplay } from './contentStore.js';

interface ContentDoc {
  _id: string;
  accountId: string;
  createdAt: Date;
  input: ContentInput;
  output: ContentOutput;
}

interface ReplayDoc {
  _id: string;
  accountId: string;
  createdAt: Date;
  sealed: string;
}

export const CONTENT_COLLECTION = 'generation_content';
export const REPLAY_COLLECTION = 'idempotent_replays';

/**
 * The MongoDB ContentStore: one document per generation in `generation_content` (and per replay in
 * `idempotent_replays`), in the read models' database,
 * written with the default write concern (see the port: content is not an audit record).
 */
export async function openMongoContentStore(url: string, options: { dbName?: string } = {}): Promise<ContentStore> {
  const client = await connectMongo(url, 'MongoDB for the content store');
  const content = client.db(options.dbName).collection<ContentDoc>(CONTENT_COLLECTION);
  await content.createIndex({ accountId: 1 });
  await content.createIndex({ createdAt: 1 });
  const replays = client.db(options.dbName).collection<ReplayDoc>(REPLAY_COLLECTION);
  await replays.createIndex({ createdAt: 1 });

  return {
    kind: 'mongodb',
    async put(stored: StoredContent) {
      const { generationId, accountId, createdAt, input, output } = stored;
      // Storing an id again changes nothing: insert only when absent.
      await content.updateOne({ _id: generationId }, { $setOnInsert: { accountId, createdAt: new Date(createdAt), input, output } }, { upsert: true });
    },
    async get(generationIds: readonly string[]) {
      const found = new Map<string, StoredContent>();
      for (const doc of await content.find({ _id: { $in: [...generationIds] } }).toArray()) {
        found.set(doc._id, { generationId: doc._id, accountId: doc.accountId, createdAt: doc.createdAt.toISOString(), input: doc.input, output: doc.output });
      }
      return generationIds.map((id) => found.get(id) ?? null);
    },
    async deleteAccount(accountId: string) {
      await replays.deleteMany({ accountId });
      return (await content.deleteMany({ accountId })).deletedCount;
    },
    async purgeBefore(before: Date) {
      return (await content.deleteMany({ createdAt: { $lt: before } })).deletedCount;
    },
    async putReplay(replay: StoredReplay) {
      await replays.updateOne({ _id: replay.generationId }, { $setOnInsert: { accountId: replay.accountId, createdAt: new Date(replay.createdAt), sealed: replay.sealed } }, { upsert: true });
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

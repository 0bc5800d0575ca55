import { connectMongo } from '../readStore/mongoConnect.js';
import type { ContentInput, ContentOutput, ContentStore, StoredContent } from './contentStore.js';

interface ContentDoc {
  _id: string;
  accountId: string;
  createdAt: Date;
  input: ContentInput;
  output: ContentOutput;
}

export const CONTENT_COLLECTION = 'generation_content';

/**
 * The MongoDB ContentStore: one document per generation in `generation_content`, in the read models' database,
 * written with the default write concern (see the port: content is not an audit record).
 */
export async function openMongoContentStore(url: string, options: { dbName?: string } = {}): Promise<ContentStore> {
  const client = await connectMongo(url, 'MongoDB for the content store');
  const content = client.db(options.dbName).collection<ContentDoc>(CONTENT_COLLECTION);
  await content.createIndex({ accountId: 1 });
  await content.createIndex({ createdAt: 1 });

  return {
    kind: 'mongodb',
    async put(stored: StoredContent) {
      const { generationId, accountId, createdAt, input, output } = stored;
      // Storing an id again changes nothing: insert only when absent.
      await content.updateOne({ _id: generationId }, { $setOnInsert: { accountId, createdAt: new Date(createdAt), input, output } }, { upsert: true });
    },
    async get(generationId: string) {
      const doc = await content.findOne({ _id: generationId });
      if (!doc) return null;
      return { generationId, accountId: doc.accountId, createdAt: doc.createdAt.toISOString(), input: doc.input, output: doc.output };
    },
    async deleteAccount(accountId: string) {
      return (await content.deleteMany({ accountId })).deletedCount;
    },
    async purgeBefore(before: Date) {
      return (await content.deleteMany({ createdAt: { $lt: before } })).deletedCount;
    },
    async close() {
      await client.close();
    },
  };
}

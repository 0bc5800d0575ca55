/**
 * The MongoDB half of a contract suite: run when MONGODB_URL is set, reported as skipped (and said so on stderr) when
 * not, each location a fresh database dropped at its disposal.
 */
import { MongoClient } from 'mongodb';
import { describe } from 'vitest';

const mongoUrl = process.env['MONGODB_URL'];

export const describeMongo = <T>(suite: string, contract: (newLocation: () => Promise<{ open(): Promise<T>; dispose(): Promise<void> }>) => void, open: (url: string, dbName: string) => Promise<T>): void => {
  if (!mongoUrl) console.warn(`${suite}: MongoDB adapter skipped because MONGODB_URL is not set`);
  describe.skipIf(!mongoUrl)(mongoUrl ? 'MongoDB adapter' : 'MongoDB adapter (skipped: MONGODB_URL is not set)', () => {
    let run = 0;
    contract(async () => {
      const dbName = `switchyard_test_${process.pid}_${Date.now()}_${run++}`;
      return {
        open: () => open(mongoUrl!, dbName),
        async dispose() {
          const client = await MongoClient.connect(mongoUrl!);
          try {
            await client.db(dbName).dropDatabase();
          } finally {
            await client.close();
          }
        },
      };
    });
  });
};

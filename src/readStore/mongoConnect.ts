import { MongoClient } from 'mongodb';
import { UnavailableError } from '../errors.js';

/** A connected MongoDB client, or an UnavailableError naming what could not connect (never the URL: it may hold credentials). */
export const connectMongo = async (url: string, what: string): Promise<MongoClient> => {
  const client = new MongoClient(url);
  try {
    await client.connect();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnavailableError(`Cannot connect to ${what}`, { reason });
  }
  return client;
};

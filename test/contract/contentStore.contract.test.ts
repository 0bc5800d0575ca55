/**
 * The ContentStore contract, run against the embedded adapter (a real SQLite file) and, when MONGODB_URL is set, the
 * MongoDB one: content is stored once per generation, survives a reopen, is deleted per account and purged by age;
 * Idempotency-Key replays likewise (stored once, read back, purged by age on their own).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContentStore, StoredContent, StoredReplay } from '../../src/contentStore/contentStore.js';
import { openMongoContentStore } from '../../src/contentStore/mongoContentStore.js';
import { CONTENT_FILE, openSqliteContentStore } from '../../src/contentStore/sqliteContentStore.js';
import { describeMongo } from '../support/mongoTest.js';

interface StoreLocation {
  open(): Promise<ContentStore>;
  dispose(): Promise<void>;
  /** The embedded adapter's file, to check its mode. */
  readonly file?: string;
}

const content = (generationId: string, accountId: string, createdAt: string, text = `answer of ${generationId}`): StoredContent => ({
  generationId,
  accountId,
  createdAt,
  input: { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: `question ${generationId} — “quoted”, 🚀` }] }] },
  output: { completion: text, reasoning: generationId.endsWith('r') ? 'thought about it' : null },
});

function contentStoreContract(newLocation: () => Promise<StoreLocation>) {
  let location: StoreLocation;
  let store: ContentStore;
  const one = async (id: string) => (await store.get([id]))[0];
  beforeEach(async () => {
    location = await newLocation();
    store = await location.open();
  });
  afterEach(async () => {
    await store.close();
    await location.dispose();
  });

  it('stores a generation’s content once and reads it back as stored, after a reopen too', async () => {
    const first = content('gen-1r', 'acc_a', '2026-12-01T10:00:00.000Z');
    await store.put(first);
    // Storing the id again (a retried write) keeps the first.
    await store.put({ ...first, output: { completion: 'other', reasoning: null } });
    expect(await one('gen-1r')).toEqual(first);
    expect(await one('gen-missing')).toBeNull();
    await store.close();
    store = await location.open();
    expect(await one('gen-1r')).toEqual(first);
  });

  it('reads several at once, in the order asked, with null where there is none', async () => {
    const a = content('gen-x1', 'acc_a', '2026-12-01T10:00:00.000Z');
    const b = content('gen-x2', 'acc_b', '2026-12-01T10:00:01.000Z');
    await store.put(a);
    await store.put(b);
    expect(await store.get(['gen-x2', 'gen-none', 'gen-x1', 'gen-x2'])).toEqual([b, null, a, b]);
    expect(await store.get([])).toEqual([]);
  });

  it('keeps a null completion and large content', async () => {
    const failed: StoredContent = { ...content('gen-2', 'acc_a', '2026-12-01T10:00:00.000Z'), output: { completion: null, reasoning: null } };
    const large = content('gen-3', 'acc_a', '2026-12-01T10:00:01.000Z', 'x'.repeat(2_000_000));
    await store.put(failed);
    await store.put(large);
    expect(await one('gen-2')).toEqual(failed);
    expect((await one('gen-3'))?.output.completion).toHaveLength(2_000_000);
  });

  it('deletes one account’s content and nobody else’s', async () => {
    await store.put(content('gen-a1', 'acc_a', '2026-12-01T10:00:00.000Z'));
    await store.put(content('gen-a2', 'acc_a', '2026-12-01T10:00:01.000Z'));
    await store.put(content('gen-b1', 'acc_b', '2026-12-01T10:00:02.000Z'));
    expect(await store.deleteAccount('acc_a', new Date('2026-12-05T00:00:00.000Z'))).toBe(2);
    expect(await one('gen-a1')).toBeNull();
    expect(await one('gen-a2')).toBeNull();
    expect(await one('gen-b1')).not.toBeNull();
    expect(await store.deleteAccount('acc_a', new Date('2026-12-05T00:00:00.000Z'))).toBe(0);
  });

  it('stores a replay once and reads it back, after a reopen too; purges replays by age apart from content', async () => {
    const replay = (generationId: string, createdAt: string): StoredReplay => ({ generationId, accountId: 'acc_a', createdAt, sealed: `sealed-${generationId}-${'x'.repeat(100_000)}` });
    const old = replay('gen-r-old', '2026-12-01T09:00:00.000Z');
    const kept = replay('gen-r-kept', '2026-12-02T10:00:00.000Z');
    await store.putReplay(old, '2026-12-01T00:00:00.000Z');
    await store.putReplay(kept, '2026-12-01T00:00:00.000Z');
    // Storing the id again (a retried write) keeps the first.
    await store.putReplay({ ...kept, sealed: 'other' }, '2026-12-01T00:00:00.000Z');
    await store.put(content('gen-c', 'acc_a', '2026-11-01T00:00:00.000Z'));
    expect(await store.getReplay('gen-r-kept')).toEqual(kept);
    expect(await store.getReplay('gen-r-none')).toBeNull();
    await store.close();
    store = await location.open();
    expect(await store.getReplay('gen-r-old')).toEqual(old);
    expect(await store.purgeReplaysBefore(new Date('2026-12-02T10:00:00.000Z'))).toBe(1);
    expect(await store.getReplay('gen-r-old')).toBeNull();
    expect(await store.getReplay('gen-r-kept')).toEqual(kept);
    // Content is not a replay: older, and kept.
    expect(await one('gen-c')).not.toBeNull();
    expect(await store.purgeBefore(new Date('2026-12-03T00:00:00.000Z'))).toBe(1);
    expect(await store.getReplay('gen-r-kept')).toEqual(kept);
  });

  it('deletes an account’s replays with its content, not another account’s', async () => {
    const replay = (generationId: string, accountId: string): StoredReplay => ({ generationId, accountId, createdAt: '2026-12-02T10:00:00.000Z', sealed: `sealed-${generationId}` });
    await store.putReplay(replay('gen-r-a', 'acc_a'), '2026-12-01T00:00:00.000Z');
    await store.putReplay(replay('gen-r-b', 'acc_b'), '2026-12-01T00:00:00.000Z');
    await store.put(content('gen-c-a', 'acc_a', '2026-12-02T10:00:00.000Z'));
    expect(await store.deleteAccount('acc_a', new Date('2026-12-05T00:00:00.000Z'))).toBe(1);
    expect(await store.getReplay('gen-r-a')).toBeNull();
    expect(await store.getReplay('gen-r-b')).toEqual(replay('gen-r-b', 'acc_b'));
  });

  it('refuses the content of a call started at or before the account turned logging off, whoever writes it; not another account’s, nor a later call’s', async () => {
    await store.put(content('gen-kept', 'acc_a', '2026-12-01T09:00:00.000Z'));
    await store.cut('acc_a', new Date('2026-12-01T10:00:00.000Z'));
    // A call in flight then, in this process or another one sharing the store.
    await store.put(content('gen-in-flight', 'acc_a', '2026-12-01T09:59:59.000Z'));
    await store.put(content('gen-same-ms', 'acc_a', '2026-12-01T10:00:00.000Z'));
    await store.put(content('gen-other', 'acc_b', '2026-12-01T09:59:59.000Z'));
    await store.put(content('gen-later', 'acc_a', '2026-12-01T10:00:00.001Z'));
    // A second put of content kept before the cut is refused, and leaves what was kept.
    await store.put(content('gen-kept', 'acc_a', '2026-12-01T09:00:00.000Z', 'other'));
    expect(await store.get(['gen-kept', 'gen-in-flight', 'gen-same-ms'])).toEqual([content('gen-kept', 'acc_a', '2026-12-01T09:00:00.000Z'), null, null]);
    expect(await one('gen-other')).not.toBeNull();
    expect(await one('gen-later')).not.toBeNull();
    // An earlier cut after a later one changes nothing; the replays are not cut by it.
    await store.cut('acc_a', new Date('2026-12-01T08:00:00.000Z'));
    await store.put(content('gen-in-flight-2', 'acc_a', '2026-12-01T09:30:00.000Z'));
    expect(await one('gen-in-flight-2')).toBeNull();
    await store.putReplay({ generationId: 'gen-r', accountId: 'acc_a', createdAt: '2026-12-01T10:00:01.000Z', sealed: 'sealed' }, '2026-12-01T09:59:00.000Z');
    expect(await store.getReplay('gen-r')).not.toBeNull();
  });

  it('refuses, after a delete, the content and replays of the account’s calls started at or before it, after a reopen too', async () => {
    await store.put(content('gen-before', 'acc_a', '2026-12-01T09:00:00.000Z'));
    expect(await store.deleteAccount('acc_a', new Date('2026-12-01T10:00:00.000Z'))).toBe(1);
    await store.close();
    store = await location.open();
    const replay = (generationId: string, accountId = 'acc_a'): StoredReplay => ({ generationId, accountId, createdAt: '2026-12-01T10:00:05.000Z', sealed: `sealed-${generationId}` });
    await store.put(content('gen-in-flight', 'acc_a', '2026-12-01T09:59:00.000Z'));
    await store.putReplay(replay('gen-r-in-flight'), '2026-12-01T09:59:00.000Z');
    await store.putReplay(replay('gen-r-other', 'acc_b'), '2026-12-01T09:59:00.000Z');
    await store.put(content('gen-after', 'acc_a', '2026-12-01T10:00:01.000Z'));
    await store.putReplay(replay('gen-r-after'), '2026-12-01T10:00:01.000Z');
    expect(await store.get(['gen-before', 'gen-in-flight', 'gen-after'])).toEqual([null, null, content('gen-after', 'acc_a', '2026-12-01T10:00:01.000Z')]);
    expect(await store.getReplay('gen-r-in-flight')).toBeNull();
    expect(await store.getReplay('gen-r-other')).not.toBeNull();
    expect(await store.getReplay('gen-r-after')).toEqual(replay('gen-r-after'));
    // Past the retention the cut is purged with the content (no call runs that long): it no longer refuses.
    expect(await store.purgeBefore(new Date('2026-12-01T10:00:00.500Z'))).toBe(0);
    await store.put(content('gen-ancient', 'acc_a', '2026-12-01T09:00:00.000Z'));
    expect(await one('gen-ancient')).not.toBeNull();
  });

  it('purges what was created before a time, keeping the rest', async () => {
    await store.put(content('gen-old', 'acc_a', '2026-10-01T00:00:00.000Z'));
    await store.put(content('gen-edge', 'acc_b', '2026-11-01T00:00:00.000Z'));
    await store.put(content('gen-new', 'acc_a', '2026-11-20T00:00:00.000Z'));
    expect(await store.purgeBefore(new Date('2026-11-01T00:00:00.000Z'))).toBe(1);
    expect(await one('gen-old')).toBeNull();
    expect(await one('gen-edge')).not.toBeNull();
    expect(await one('gen-new')).not.toBeNull();
  });
}

describe('embedded adapter (SQLite file)', () => {
  contentStoreContract(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'content-store-'));
    return { open: async () => openSqliteContentStore({ dir }), dispose: () => rm(dir, { recursive: true, force: true }), file: join(dir, CONTENT_FILE) };
  });

  it('keeps its file readable by the server’s user only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'content-store-'));
    const store = openSqliteContentStore({ dir });
    try {
      expect((await stat(join(dir, CONTENT_FILE))).mode & 0o777).toBe(0o600);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describeMongo('contentStore contract', contentStoreContract, (url, dbName) => openMongoContentStore(url, { dbName }));

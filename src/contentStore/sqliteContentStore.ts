import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateDatabaseFile, ensurePrivateDir, openingDataFile } from '../sqlite/privateFiles.js';
import type { ContentStore, StoredContent, StoredReplay } from './contentStore.js';

export const CONTENT_FILE = 'content.db';

/**
 * The embedded ContentStore: `content.db` in DATA_DIR (0600, like the stores beside it), WAL with
 * `synchronous = NORMAL`: a commit does not wait for the disk (see the port); the accounts' cuts in `cut`. Its statements are synchronous and
 * run only for accounts that log content, after their answer has been written, and for calls with an Idempotency-Key
 * (the `replay` table).
 */
export const openSqliteContentStore = (options: { dir: string }): ContentStore => {
  ensurePrivateDir(options.dir);
  const path = join(options.dir, CONTENT_FILE);
  ensurePrivateDatabaseFile(path);
  const db = openingDataFile(path, () => {
    const opened = new Database(path, { timeout: 5000 });
    opened.pragma('journal_mode = WAL');
    return opened;
  });
  db.pragma('synchronous = NORMAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS content (
      generation_id TEXT PRIMARY KEY,
      account_id TEXT NOT NULL,
      created_at TEXT NOT NULL,
      input TEXT NOT NULL,
      output TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS content_account ON content (account_id);
    CREATE INDEX IF NOT EXISTS content_created ON content (created_at);
    CREATE TABLE IF NOT EXISTS replay (
      generation_id TEXT PRIMARY KEY,
      account_id TEXT NOT NULL,
      created_at TEXT NOT NULL,
      sealed TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS replay_created ON replay (created_at);
    CREATE TABLE IF NOT EXISTS cut (
      account_id TEXT PRIMARY KEY,
      content_at TEXT NOT NULL,
      replay_at TEXT NOT NULL
    ) WITHOUT ROWID;
  `);
  // One statement each: the cut is read where the row is written, so a put is before a cut (and deleted by it) or
  // after it (and refused), never in between. ISO times in UTC sort as strings; '' is no cut.
  const insert = db.prepare(
    'INSERT OR IGNORE INTO content (generation_id, account_id, created_at, input, output) SELECT @id, @account, @at, @input, @output WHERE NOT EXISTS (SELECT 1 FROM cut WHERE account_id = @account AND content_at >= @at)',
  );
  const cutAt = db.prepare(
    'INSERT INTO cut (account_id, content_at, replay_at) VALUES (@account, @content, @replay) ON CONFLICT (account_id) DO UPDATE SET content_at = max(content_at, excluded.content_at), replay_at = max(replay_at, excluded.replay_at)',
  );
  const select = db.prepare<[string], { generation_id: string; account_id: string; created_at: string; input: string; output: string }>(
    'SELECT generation_id, account_id, created_at, input, output FROM content WHERE generation_id IN (SELECT value FROM json_each(?))',
  );
  const deleteContentOf = db.prepare('DELETE FROM content WHERE account_id = ?');
  const deleteReplaysOf = db.prepare('DELETE FROM replay WHERE account_id = ?');
  const deleteAccount = db.transaction((accountId: string, at: string) => {
    cutAt.run({ account: accountId, content: at, replay: at });
    deleteReplaysOf.run(accountId);
    return deleteContentOf.run(accountId).changes;
  });
  const deleteBefore = db.prepare('DELETE FROM content WHERE created_at < ?');
  const deleteCutsBefore = db.prepare('DELETE FROM cut WHERE content_at < @before AND replay_at < @before');
  const insertReplay = db.prepare(
    'INSERT OR IGNORE INTO replay (generation_id, account_id, created_at, sealed) SELECT @id, @account, @at, @sealed WHERE NOT EXISTS (SELECT 1 FROM cut WHERE account_id = @account AND replay_at >= @started)',
  );
  const selectReplay = db.prepare<[string], { generation_id: string; account_id: string; created_at: string; sealed: string }>('SELECT generation_id, account_id, created_at, sealed FROM replay WHERE generation_id = ?');
  const deleteReplaysBefore = db.prepare('DELETE FROM replay WHERE created_at < ?');

  return {
    kind: 'embedded',
    put: async (content: StoredContent) => {
      insert.run({ id: content.generationId, account: content.accountId, at: content.createdAt, input: JSON.stringify(content.input), output: JSON.stringify(content.output) });
    },
    get: async (generationIds: readonly string[]) => {
      const found = new Map<string, StoredContent>();
      for (const row of select.all(JSON.stringify(generationIds))) {
        found.set(row.generation_id, { generationId: row.generation_id, accountId: row.account_id, createdAt: row.created_at, input: JSON.parse(row.input), output: JSON.parse(row.output) } as StoredContent);
      }
      return generationIds.map((id) => found.get(id) ?? null);
    },
    cut: async (accountId: string, at: Date) => {
      cutAt.run({ account: accountId, content: at.toISOString(), replay: '' });
    },
    deleteAccount: async (accountId: string, at: Date) => deleteAccount(accountId, at.toISOString()),
    purgeBefore: async (before: Date) => {
      deleteCutsBefore.run({ before: before.toISOString() });
      return deleteBefore.run(before.toISOString()).changes;
    },
    putReplay: async (replay: StoredReplay, callStartedAt: string) => {
      insertReplay.run({ id: replay.generationId, account: replay.accountId, at: replay.createdAt, sealed: replay.sealed, started: callStartedAt });
    },
    getReplay: async (generationId: string) => {
      const row = selectReplay.get(generationId);
      return row ? { generationId: row.generation_id, accountId: row.account_id, createdAt: row.created_at, sealed: row.sealed } : null;
    },
    purgeReplaysBefore: async (before: Date) => deleteReplaysBefore.run(before.toISOString()).changes,
    close: async () => {
      db.close();
    },
  };
};

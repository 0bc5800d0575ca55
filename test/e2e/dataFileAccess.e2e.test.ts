/**
 * A start that cannot open its data files (QA s44 disk #3), run as the operator runs it (`src/main.ts` in its own
 * process): README's own upgrade case, a DATA_DIR or a file in it owned by root (an image that ran as root, a
 * `chown -R` mistake), said in one line naming the folder or file, what is wrong and what to do, with exit 78 as for
 * the rest of the configuration; not an EACCES stack from `openSync`, nor SQLite's "unable to open database file"
 * (SQLITE_CANTOPEN), which named no file.
 *
 * Permissions bind a server that is not root: run as root (a container, CI), the test starts it as root without the
 * capabilities that bypass them (setpriv's bounding set without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER and CAP_CHOWN), and the
 * files it must not open belong to `nobody`; not as root, the files are simply made unreadable to their owner. (Starting
 * it as `nobody` instead would need the checkout readable by nobody, which a clone in a private temporary folder is not.)
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { expectOneLine, spawnedSwitchyards, startToExit } from '../support/spawnedServer.js';

const NOBODY = 65534;
const root = process.getuid?.() === 0;
/** What the server runs under: as root, without the capabilities that let root open any file. */
const under = root ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search,-fowner,-chown'] : [];
const canDrop = !root || spawnSync(under[0]!, [...under.slice(1), 'true']).status === 0;
/** The user the server runs as. */
const serverUid = process.getuid?.() ?? 0;
const skip = !canDrop;
if (skip) console.warn('dataFileAccess: running as root without setpriv to drop CAP_DAC_OVERRIDE: root opens every file, so nothing here can be shown');
/** As root: `path` given to another user (nobody), as a root-owned file is to a server that is not root. */
const giveAway = (path: string): void => {
  if (root) chownSync(path, NOBODY, NOBODY);
};

const servers = spawnedSwitchyards();
const MASTER = { SWITCHYARD_MASTER_KEY: 'test-master-key-0123456789abcdef0123456789' };

/** A DATA_DIR the server's user can reach (its parent is searchable). */
const dataDir = (): string => {
  const parent = servers.dataDir('switchyard-files-');
  chmodSync(parent, 0o755);
  return join(parent, 'data');
};
/** `dir` made, the server's user's (as `chown -R <uid>` would leave it). */
const ownedByServer = (dir: string): string => {
  spawnSync('mkdir', ['-p', '-m', '700', dir]);
  return dir;
};
/** A file in `dir` the server's user cannot use as `mode` allows: another user's (0600 or 0444), or its own with that mode. */
const notTheServers = (file: string, mode: number): void => {
  writeFileSync(file, '');
  giveAway(file);
  chmodSync(file, mode);
};

describe.skipIf(skip)('a start that cannot open its data files', () => {
  it('on a DATA_DIR owned by another user (root after an upgrade) says so in one line naming DATA_DIR and the chown to run (exit 78)', async () => {
    const dir = dataDir();
    spawnSync('mkdir', ['-m', '700', dir]);
    writeFileSync(join(dir, 'events.db'), '');
    giveAway(join(dir, 'events.db'));
    giveAway(dir);
    if (!root) chmodSync(dir, 0o000);
    try {
      const { code, stderr } = await startToExit(dir, MASTER, 20_000, under);
      expectOneLine(stderr);
      expect(stderr.trim()).toBe(
        `Switchyard could not start: DATA_DIR (${dir}) cannot be created or used: permission denied. It and every file in it must belong to the user Switchyard runs as (uid ${serverUid}): chown -R ${serverUid} ${dir}`,
      );
      expect(code).toBe(78);
    } finally {
      chmodSync(dir, 0o700);
    }
  });

  // A DATA_DIR that does not exist yet: what stops its creation is the folder it would be made in, which is what the line
  // names (a `chown -R` of DATA_DIR itself, which is not there, cannot help).
  it('on a DATA_DIR that does not exist, in a folder the server may not write, names that folder and how to make DATA_DIR (exit 78)', async () => {
    const dir = join(dataDir(), 'sub');
    const parent = dirname(dir);
    spawnSync('mkdir', ['-m', root ? '755' : '555', parent]);
    giveAway(parent);
    try {
      const { code, stderr } = await startToExit(dir, MASTER, 20_000, under);
      expectOneLine(stderr);
      expect(stderr).not.toContain(`chown -R ${serverUid} ${dir}`);
      expect(stderr.trim()).toBe(
        `Switchyard could not start: DATA_DIR (${dir}) does not exist and cannot be created in ${parent}: permission denied. ` +
          `Create it owned by the user Switchyard runs as (uid ${serverUid}): mkdir -p ${dir} && chown ${serverUid} ${dir}; or let that user write to ${parent}`,
      );
      expect(code).toBe(78);
    } finally {
      chmodSync(parent, 0o755);
    }
  });

  it('on a DATA_DIR in a folder the server may not enter names that folder (exit 78)', async () => {
    const dir = join(dataDir(), 'data');
    const parent = dirname(dir);
    spawnSync('mkdir', ['-m', root ? '700' : '600', parent]);
    giveAway(parent);
    try {
      const { code, stderr } = await startToExit(dir, MASTER, 20_000, under);
      expectOneLine(stderr);
      expect(stderr.trim()).toBe(
        `Switchyard could not start: DATA_DIR (${dir}) cannot be reached: the user Switchyard runs as (uid ${serverUid}) may not enter ${parent} (permission denied). ` +
          `Let that user enter ${parent} (x permission) and own DATA_DIR (chown -R ${serverUid}), or set DATA_DIR to a folder it can reach`,
      );
      expect(code).toBe(78);
    } finally {
      chmodSync(parent, 0o755);
    }
  });

  const unreadable = root ? '600' : '000';
  it.each([
    ['events.db', unreadable],
    ['events.db', '444'],
    ['readmodels.db', unreadable],
    ['content.db', unreadable],
    ['master.key', unreadable],
    ['readmodels.db.lock.db', unreadable],
  ])('on a %s the server cannot read and write (mode %s) says so in one line naming the file and the chown to run (exit 78)', async (name, mode) => {
    const dir = ownedByServer(dataDir());
    const file = join(dir, name);
    notTheServers(file, Number.parseInt(mode, 8));
    // master.key is read only without SWITCHYARD_MASTER_KEY.
    const { code, stderr } = await startToExit(dir, name === 'master.key' ? {} : MASTER, 20_000, under);
    expectOneLine(stderr);
    expect(stderr).not.toMatch(/SQLITE_|unable to open database file|EACCES/);
    expect(stderr.trim()).toBe(
      `Switchyard could not start: ${file} cannot be ${mode === '444' ? 'written' : 'opened'}: permission denied. DATA_DIR and every file in it must belong to the user Switchyard runs as (uid ${serverUid}): chown -R ${serverUid} ${dir}`,
    );
    expect(code).toBe(78);
  });

  // The read store's pid file (the lock's owner, readmodels.db.lock): root's after a run as root, 0600. Read when its lock
  // (readmodels.db.lock.db) was never taken, written once it is taken.
  it.each([
    ['a lock never taken (the pid file is read)', false, 'opened'],
    ['a lock taken before (the pid file is written)', true, 'written'],
  ])('on a readmodels.db.lock (the pid file) the server cannot read and write, with %s, says so in one line naming it (exit 78)', async (_, used, doing) => {
    const dir = ownedByServer(dataDir());
    if (used) {
      const lockDb = join(dir, 'readmodels.db.lock.db');
      const db = new Database(lockDb);
      db.pragma('user_version = 4242');
      db.close();
      chmodSync(lockDb, 0o600);
    }
    const file = join(dir, 'readmodels.db.lock');
    notTheServers(file, Number.parseInt(unreadable, 8));
    const { code, stderr } = await startToExit(dir, MASTER, 20_000, under);
    expectOneLine(stderr);
    expect(stderr).not.toMatch(/EACCES/);
    expect(stderr.trim()).toBe(
      `Switchyard could not start: ${file} cannot be ${doing}: permission denied. DATA_DIR and every file in it must belong to the user Switchyard runs as (uid ${serverUid}): chown -R ${serverUid} ${dir}`,
    );
    expect(code).toBe(78);
  });

  it('on a readmodels.db SQLite cannot open (SQLITE_CANTOPEN: here a folder) says so in one line naming the file (exit 78)', async () => {
    const dir = ownedByServer(dataDir());
    const file = join(dir, 'readmodels.db');
    ownedByServer(file);
    const { code, stderr } = await startToExit(dir, MASTER, 20_000, under);
    expectOneLine(stderr);
    expect(stderr.trim()).toBe(
      `Switchyard could not start: ${file} cannot be opened (unable to open database file): it must be a file, and DATA_DIR and every file in it must belong to the user Switchyard runs as (uid ${serverUid}): chown -R ${serverUid} ${dir}`,
    );
    expect(code).toBe(78);
  });
});

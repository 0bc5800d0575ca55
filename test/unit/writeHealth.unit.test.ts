/**
 * A store's last write outcome (QA s44 disk #4): what /health shows of a store whose writes are refused by its storage,
 * and the log lines of such a fault, once per change of state rather than one stack per refused write.
 */
import { describe, expect, it } from 'vitest';
import { asStorageError, ConflictError, StorageFullError, storageFailureOf } from '../../src/errors.js';
import { createWriteHealth } from '../../src/storage/writeHealth.js';

const sqlite = (code: string, message = code) => Object.assign(new Error(message), { name: 'SqliteError', code });

describe('storageFailureOf', () => {
  it('names the storage failures of SQLite (extended codes too), the system and MongoDB, and nothing else', () => {
    expect(storageFailureOf(sqlite('SQLITE_FULL'))).toBe('disk_full');
    expect(storageFailureOf(new StorageFullError())).toBe('disk_full');
    expect(storageFailureOf(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe('disk_full');
    expect(storageFailureOf(Object.assign(new Error('x'), { code: 14031, codeName: 'OutOfDiskSpace' }))).toBe('disk_full');
    expect(storageFailureOf(sqlite('SQLITE_READONLY_DBMOVED'))).toBe('read_only');
    expect(storageFailureOf(Object.assign(new Error('x'), { code: 'EROFS' }))).toBe('read_only');
    expect(storageFailureOf(sqlite('SQLITE_IOERR_WRITE'))).toBe('io_error');
    expect(storageFailureOf(sqlite('SQLITE_CANTOPEN'))).toBe('cannot_open');
    expect(storageFailureOf(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe('permission_denied');
    expect(storageFailureOf(sqlite('SQLITE_CONSTRAINT_UNIQUE'))).toBeNull();
    expect(storageFailureOf(new ConflictError('taken'))).toBeNull();
    expect(storageFailureOf('SQLITE_FULL')).toBeNull();
  });
});

describe('asStorageError', () => {
  it('answers what storageFailureOf calls a full disk as StorageFullError, and leaves the rest as they are', () => {
    for (const full of [sqlite('SQLITE_FULL'), Object.assign(new Error('x'), { code: 'EDQUOT' }), Object.assign(new Error('x'), { code: 14031, codeName: 'OutOfDiskSpace' })]) {
      expect(asStorageError(full)).toBeInstanceOf(StorageFullError);
    }
    for (const other of [sqlite('SQLITE_READONLY'), sqlite('SQLITE_CONSTRAINT_UNIQUE'), new ConflictError('taken'), new StorageFullError(), { code: 'ENOSPC' }]) {
      expect(asStorageError(other)).toBe(other);
    }
  });
});

describe('a store’s write health', () => {
  const setUp = () => {
    const lines: { level: 'error' | 'warn'; fields: Record<string, unknown>; msg: string }[] = [];
    const clock = { ms: Date.parse('2025-01-01T00:00:00Z') };
    const logger = {
      error: (fields: Record<string, unknown>, msg: string) => void lines.push({ level: 'error', fields, msg }),
      warn: (fields: Record<string, unknown>, msg: string) => void lines.push({ level: 'warn', fields, msg }),
    };
    const health = createWriteHealth('event store', { logger: logger as never, summaryEveryMs: 60_000, now: () => clock.ms });
    return { lines, clock, health };
  };

  it('is failing from the first refused write until one succeeds, logged once as it begins, as a count each minute and once as it ends', () => {
    const { lines, clock, health } = setUp();
    health.succeeded();
    expect(health.failure()).toBeNull();
    for (let i = 0; i < 100; i += 1) health.failed(sqlite('SQLITE_FULL', 'database or disk is full'));
    expect(health.failure()).toEqual({ reason: 'disk_full', message: 'database or disk is full', since: '2025-01-01T00:00:00.000Z', refused: 100 });
    expect(lines.map((line) => line.level)).toEqual(['error']);
    expect(lines[0]!.msg).toMatch(/event store: a write failed \(the server's disk is full\)/);

    clock.ms += 60_000;
    health.failed(sqlite('SQLITE_FULL'));
    health.failed(sqlite('SQLITE_FULL'));
    expect(lines.slice(1)).toEqual([{ level: 'warn', fields: { reason: 'disk_full', refused: 100, total: 101, sinceMs: 60_000 }, msg: "event store: writes still failing (the server's disk is full)" }]);

    clock.ms += 5_000;
    health.succeeded();
    health.succeeded();
    expect(health.failure()).toBeNull();
    expect(lines.slice(2)).toEqual([{ level: 'warn', fields: { reason: 'disk_full', refused: 102, forMs: 65_000 }, msg: "event store: writes succeed again, after 102 refused (the server's disk is full)" }]);
  });

  it('ignores a write refused for what it is (a conflict), not for the storage', () => {
    const { lines, health } = setUp();
    health.failed(new ConflictError('expected revision 3'));
    health.failed(sqlite('SQLITE_CONSTRAINT_UNIQUE'));
    expect(health.failure()).toBeNull();
    expect(lines).toEqual([]);
  });
});

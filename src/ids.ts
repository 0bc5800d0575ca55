import { randomFillSync } from 'node:crypto';

// Random bytes come from a pool refilled 4 KiB at a time: one `randomBytes(8)` call per id cost ~20 µs on the
// request path (a generation id per call).
const pool = Buffer.alloc(4096);
let offset = pool.length;

const randomHex8 = (): string => {
  if (offset + 8 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + 8);
  offset += 8;
  return hex;
};

/**
 * Time-ordered ids (`acc_0mf3k2x1a9c4e5f6a7b8`): sorting by id sorts by creation time, which gives stable cursor
 * paging, and 64 random bits keep them unguessable enough for ids (ids are not secrets).
 */
export const newId = (prefix: string, now: number = Date.now()): string => `${prefix}_${now.toString(36).padStart(9, '0')}${randomHex8()}`;

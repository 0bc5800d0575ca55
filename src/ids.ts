import { randomBytes } from 'node:crypto';

/**
 * Time-ordered ids (`acc_0mf3k2x1a9c4e5f6a7b8`): sorting by id sorts by creation time, which gives stable cursor
 * paging, and 64 random bits keep them unguessable enough for ids (ids are not secrets).
 */
export const newId = (prefix: string, now: number = Date.now()): string =>
  `${prefix}_${now.toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`;

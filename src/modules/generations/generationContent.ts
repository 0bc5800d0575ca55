/**
 * Input & output logging (OpenRouter's "Input & Output Logging" and `GET /api/v1/generation/content`): an account
 * that turns it on (`setContentLogging`) has each later generation's messages and answer kept in the content store,
 * readable by the account itself only (not by admins: a generation's record is theirs to see, its prompt is not),
 * deleted on request (`deleteGenerationContent`) and purged after CONTENT_RETENTION_DAYS.
 *
 * The gateway asks `enabled` per generation (the auth directory, in memory: no store read on the request path) and
 * stores through `store.put` after the answer has been written, if logging is still on then. A read right after an
 * answer waits for that put. Turning logging off (`cut`) and deleting the content cut the account in the store: a put
 * of a call started before is refused there, whichever process makes it (see the port), so once either has answered,
 * the calls that were in flight store nothing.
 * Its hourly purge also drops the Idempotency-Key answers kept in the same store past their 24 hours.
 */
import type { ContentStore, StoredContent } from '../../contentStore/contentStore.js';
import type { ContentLog } from '../../gateway/gateway.js';
import type { Logger } from '../../logger.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { Principal } from '../auth/principal.js';
import { REPLAY_WINDOW_MS } from './requestIdempotency.js';

const DAY_MS = 86_400_000;
const PURGE_EVERY_MS = 3_600_000;

export const createGenerationContent = (deps: {
  store: ContentStore;
  directory: Pick<AuthDirectory, 'account'>;
  retentionDays: number;
  logger: Logger;
  now: () => Date;
}) => {
  const { store, logger } = deps;
  /** Puts under way, by generation id: a read of that id waits for its put, a delete of its account too. */
  const storing = new Map<string, { accountId: string; put: Promise<void> }>();
  let timer: NodeJS.Timeout | null = null;

  const purge = async () => {
    const before = new Date(deps.now().getTime() - deps.retentionDays * DAY_MS);
    try {
      const deleted = await store.purgeBefore(before);
      if (deleted > 0) logger.info({ deleted, before: before.toISOString() }, 'content store: purged generations’ content past the retention');
    } catch (error) {
      logger.error({ err: error }, 'content store: could not purge content past the retention; trying again in an hour');
    }
    // The answers kept for Idempotency-Key retries, past their window (requestIdempotency.ts).
    const replaysBefore = new Date(deps.now().getTime() - REPLAY_WINDOW_MS);
    try {
      const deleted = await store.purgeReplaysBefore(replaysBefore);
      if (deleted > 0) logger.info({ deleted, before: replaysBefore.toISOString() }, 'content store: purged Idempotency-Key answers past their 24 hours');
    } catch (error) {
      logger.error({ err: error }, 'content store: could not purge Idempotency-Key answers past their 24 hours; trying again in an hour');
    }
  };

  const log: ContentLog = {
    enabled: (accountId) => deps.directory.account(accountId)?.contentLogging === true,
    store: {
      put(content: StoredContent) {
        const put = store.put(content).finally(() => storing.delete(content.generationId));
        storing.set(content.generationId, { accountId: content.accountId, put: put.catch(() => undefined) });
        return put;
      },
    },
  };

  return {
    /** For the gateway. */
    log,
    /** Purge now, then every hour. */
    async start() {
      await purge();
      timer = setInterval(() => void purge(), PURGE_EVERY_MS);
      timer.unref();
    },
    /**
     * The content of each of the caller's generations asked for, in order: null where it is not theirs or nothing was
     * stored for it. One store query for the lot (GraphQL batches a page of generations' `content` into one call).
     */
    async find(actor: Principal, generationIds: readonly string[]): Promise<(StoredContent | null)[]> {
      await Promise.all(generationIds.map((id) => storing.get(id)?.put));
      return (await store.get(generationIds)).map((content) => (content && content.accountId === actor.accountId ? content : null));
    },
    /**
     * Delete every stored content of the account (the caller's own, checked by the API's edges), and what its calls in
     * flight would store (they started before); how many. It answers once this process's puts under way for the
     * account are done too (on MongoDB one may be taking its write back).
     */
    async deleteAll(accountId: string): Promise<number> {
      const deleted = await store.deleteAccount(accountId, deps.now());
      await Promise.all([...storing.values()].filter((p) => p.accountId === accountId).map((p) => p.put));
      return deleted;
    },
    /** Input & output logging is being turned off: what the account's calls in flight would store is not stored. */
    cut: (accountId: string): Promise<void> => store.cut(accountId, deps.now()),
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await Promise.all([...storing.values()].map((p) => p.put));
      await store.close();
    },
  };
};

export type GenerationContent = ReturnType<typeof createGenerationContent>;

import { RateLimitedError } from '../../errors.js';
import { createRateWindow } from '../../rateWindow.js';
import { isAdmin, type Principal } from './principal.js';

const MINUTE_MS = 60_000;

/**
 * What an account may change through the API in any minute (WRITES_PER_MINUTE), counted per process: each GraphQL
 * mutation field run (every alias one; those that call a model are billed instead, see graphql/plugins/writeBudget.ts)
 * and each REST change made with a key (a key's, a preset's, a table entry added, a run started). Every such change is
 * an event kept for good, at no cost to its caller, so without a bound one account could grow the log (and the read
 * models) as fast as the server takes requests: a table entry of 64 KB updated in a loop, a provider's proposal filed
 * again and again. Admins are not counted. A webhook's runs are counted per workflow (takeWebhookRun).
 */
export const createWriteBudget = (perMinute: number, now: () => Date) => {
  const window = createRateWindow(perMinute, MINUTE_MS);
  const takeOrRefuse = (key: string, count: number, what: string): void => {
    const slot = window.take(key, now().getTime(), count);
    if (!slot.taken) {
      throw new RateLimitedError(`${what}: try again in ${Math.ceil(slot.retryAfterMs / 1000)} s`, slot.retryAfterMs, { reason: 'write_rate', limit: perMinute });
    }
  };
  return {
    perMinute,
    /** Takes `count` of the account's writes now, all or none; else RATE_LIMITED (nothing of the request runs). */
    take(principal: Principal, count = 1): void {
      if (count === 0 || isAdmin(principal)) return;
      takeOrRefuse(
        `account:${principal.accountId}`,
        count,
        `An account makes at most ${perMinute} changes a minute through the API (WRITES_PER_MINUTE)${count > 1 ? `, and this request makes ${count}` : ''}`,
      );
    },
    /**
     * A run a workflow's webhook starts, counted per workflow, not against its account: the sender holds the webhook's
     * secret, not a key, and one who should not (a leaked secret) must not use up the owner's changes, rotating the
     * secret among them.
     */
    takeWebhookRun(workflowId: string): void {
      takeOrRefuse(`webhook:${workflowId}`, 1, `A workflow's webhook starts at most ${perMinute} runs a minute (WRITES_PER_MINUTE)`);
    },
  };
};
export type WriteBudget = ReturnType<typeof createWriteBudget>;

import { GENERATIONS } from '../../../projections/generations.js';
import { ValidationError } from '../../errors.js';
import type { ReadStore } from '../../readStore/readStore.js';

/** One endpoint's traffic on one UTC day, from the attempts the gateway made on it. */
export interface EndpointTrafficRow {
  readonly endpointId: string;
  readonly provider: string;
  readonly model: string;
  readonly day: string;
  /** Attempts routed to the endpoint (a generation that fell back counts once on each endpoint it tried). */
  readonly requests: number;
  /** Attempts that failed upstream. */
  readonly errors: number;
  /** Attempts that answered: the generation's outcome came from this endpoint. */
  readonly served: number;
  /** Time to the first token of the served attempts, summed and counted (the mean is latencySumMs / latencyCount). */
  readonly latencySumMs: number;
  readonly latencyCount: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /**
   * What the ledger charged for the provider's service on this endpoint, integer nano-dollars: the cost of every
   * generation its last attempt ended here, whatever the outcome (a stream cut after some tokens is failed, and
   * charged for what was sent), which the billing audit checks against the ledger. Calls on an account's own key
   * (BYOK) earn the provider nothing through Switchyard (the account paid it on that key; the fee is Switchyard's).
   * A charge whose record was lost (`unrecorded`: no attempts known) counts on the endpoint its model and provider
   * name (endpoint ids are `{model}@{provider}`), in earnings only: its attempts are not known.
   */
  readonly earnings: number;
}

/**
 * The end of a day range, exclusive, as a bound on ISO `createdAt` strings: the next day, or none after 9999-12-31
 * (whose next day, `+010000-01-01`, sorts before every four-digit year and would have matched nothing).
 */
const endOfDay = (day: string): { $lt: string } | null => {
  const next = new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString();
  return /^\d{4}-/.test(next) ? { $lt: next.slice(0, 10) } : null;
};

/**
 * Traffic and earnings of the given providers' endpoints per day, between two days (inclusive, UTC), in day then
 * endpoint order. One pass over the generations read model: each attempt on one of the providers counts.
 */
export const endpointTraffic = async (readStore: ReadStore, providerSlugs: readonly string[], range: { from?: string | null; to?: string | null }): Promise<EndpointTrafficRow[]> => {
  const { from, to } = range;
  if (from && to && from > to) throw new ValidationError('from must not be after to', { argument: 'from' });
  if (providerSlugs.length === 0) return [];
  const slugs = { $in: [...providerSlugs] };
  const created = { ...(from ? { $gte: from } : {}), ...(to ? endOfDay(to) : {}) };
  // The attempt that served the generation: it did not fail, and the outcome names its endpoint.
  const served = { $and: [{ $eq: ['$attempts.ok', true] }, { $eq: ['$attempts.endpointId', '$endpointId'] }, { $ne: ['$status', 'pending'] }] };
  // The attempt the generation was charged for: its last (a fallback comes only before the first token), on the
  // endpoint the outcome names, failed or not; on the provider's shared key (a BYOK call's cost is Switchyard's fee).
  const charged = {
    $and: [
      { $eq: ['$attempts.attempt', '$lastAttempt'] },
      { $eq: ['$attempts.endpointId', '$endpointId'] },
      { $ne: ['$status', 'pending'] },
      { $eq: [{ $ifNull: ['$upstreamCost', null] }, null] },
    ],
  };
  // A charge whose record was lost: the settlement knew the model and the provider, not the attempts.
  const unrecorded = { $eq: ['$status', 'unrecorded'] };
  const unrecordedCharged = { $and: [unrecorded, { $eq: [{ $ifNull: ['$upstreamCost', null] }, null] }] };
  // Its endpoint, as endpoint ids are made (endpointId): `{model}@{provider}`, the model without a `:free` variant
  // suffix (model ids hold no other colon).
  const unrecordedEndpoint = { $concat: [{ $arrayElemAt: [{ $split: ['$model', ':'] }, 0] }, '@', '$providerSlug'] };
  const rows = await readStore.collection(GENERATIONS).aggregate<Omit<EndpointTrafficRow, 'endpointId' | 'day' | 'provider' | 'model'> & { _id: { endpointId: string; day: string; provider: string; model: string } }>([
    {
      $match: {
        $or: [{ 'attempts.providerSlug': slugs }, { status: 'unrecorded', providerSlug: slugs, model: { $type: 'string' } }],
        ...(Object.keys(created).length > 0 ? { createdAt: created } : {}),
      },
    },
    { $addFields: { lastAttempt: { $max: '$attempts.attempt' } } },
    // An unrecorded charge has no attempts: kept, as one document without `attempts`.
    { $unwind: { path: '$attempts', preserveNullAndEmptyArrays: true } },
    { $match: { $or: [{ 'attempts.providerSlug': slugs }, { status: 'unrecorded' }] } },
    {
      $group: {
        _id: {
          endpointId: { $ifNull: ['$attempts.endpointId', unrecordedEndpoint] },
          day: { $substr: ['$createdAt', 0, 10] },
          provider: { $ifNull: ['$attempts.providerSlug', '$providerSlug'] },
          model: { $ifNull: ['$attempts.model', '$model'] },
        },
        requests: { $sum: { $cond: [unrecorded, 0, 1] } },
        errors: { $sum: { $cond: [{ $eq: ['$attempts.ok', false] }, 1, 0] } },
        served: { $sum: { $cond: [served, 1, 0] } },
        latencySumMs: { $sum: { $cond: [{ $and: [served, { $ne: [{ $ifNull: ['$latencyMs', null] }, null] }] }, '$latencyMs', 0] } },
        latencyCount: { $sum: { $cond: [{ $and: [served, { $ne: [{ $ifNull: ['$latencyMs', null] }, null] }] }, 1, 0] } },
        promptTokens: { $sum: { $cond: [served, { $ifNull: ['$usage.prompt', 0] }, 0] } },
        completionTokens: { $sum: { $cond: [served, { $ifNull: ['$usage.completion', 0] }, 0] } },
        earnings: { $sum: { $cond: [{ $or: [charged, unrecordedCharged] }, '$cost', 0] } },
      },
    },
    { $sort: { '_id.day': 1, '_id.endpointId': 1 } },
  ]);
  return rows.map(({ _id, ...row }) => ({ ..._id, ...row }));
};

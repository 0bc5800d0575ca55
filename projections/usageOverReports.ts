import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { TokenUsage, UsageOverReported, UsageSource } from '../src/modules/generations/generation.events.js';
import { defineProjection } from './projection.js';

/** One generation whose provider reported more usage than was billed (admins review these). */
export type UsageOverReportDoc = {
  /** The generation id (time-ordered, so paging by `_id` is by time). */
  _id: string;
  accountId: string;
  keyId: string | null;
  endpointId: string;
  providerSlug: string;
  providerName: string;
  model: string;
  usageSource: UsageSource;
  reported: TokenUsage;
  billed: TokenUsage;
  caps: { promptTokens: number; completionTokens: number; cost: number };
  reportedCost: number;
  billedCost: number;
  at: string;
};

export const USAGE_OVER_REPORTS = 'usageOverReports';

export const usageOverReportsProjection = defineProjection<UsageOverReportDoc>({
  name: 'usageOverReports',
  version: 1,
  collection: USAGE_OVER_REPORTS,
  filter: { categories: ['generation'], eventTypes: ['UsageOverReported'] },
  indexes: [{ keys: { providerSlug: 1 } }],
  // A provider can produce one per request.
  onDisk: true,
  documentId: (event) => (event.type === 'UsageOverReported' ? (event as RecordedEvent<UsageOverReported>).data.generationId : null),
  evolve: (_doc, recorded) => {
    const { generationId, ...data } = (recorded as RecordedEvent<UsageOverReported>).data;
    return { _id: generationId, ...data, reported: { ...data.reported }, billed: { ...data.billed }, caps: { ...data.caps } };
  },
});

import { summarizeStats, type EndpointStatsSummary, type Percentiles, type ProviderStatsDoc } from '../../projections/providerStats.js';

/**
 * What routing reads per endpoint: a snapshot of the providerStats read model. Sorting by latency / throughput reads
 * the 30-minute medians; the performance thresholds the 5-minute percentiles (OpenRouter's window for them).
 */
export interface EndpointStats {
  readonly latencyP50Ms: number | null;
  readonly throughputP50: number | null;
  readonly uptime30m: number | null;
  /** Time to first token (ms) and tokens per second over the last 5 minutes; null without samples there. */
  readonly latency5m: Percentiles | null;
  readonly throughput5m: Percentiles | null;
}

export interface EndpointStatsView {
  get(endpointId: string): EndpointStats | undefined;
}

export interface StatsSnapshot extends EndpointStatsView {
  /** Reload from the read model now. */
  refresh(): Promise<void>;
  /** Refresh every `intervalMs` in the background (routing never awaits it). */
  start(intervalMs: number): void;
  stop(): void;
  summary(endpointId: string): EndpointStatsSummary | undefined;
}

/**
 * The providerStats projection, summarised into a map the router reads synchronously. Refreshed off the hot path on
 * a timer: routing by latency or throughput needs trends, not the last millisecond.
 */
export const createStatsSnapshot = (load: () => Promise<ProviderStatsDoc[]>, now: () => number = Date.now): StatsSnapshot => {
  let summaries = new Map<string, EndpointStatsSummary>();
  let stats = new Map<string, EndpointStats>();
  let timer: NodeJS.Timeout | null = null;
  const refresh = async () => {
    const docs = await load();
    const t = now();
    const nextSummaries = new Map<string, EndpointStatsSummary>();
    const nextStats = new Map<string, EndpointStats>();
    for (const doc of docs) {
      const summary = summarizeStats(doc, t);
      nextSummaries.set(doc._id, summary);
      nextStats.set(doc._id, {
        latencyP50Ms: summary.latency30m?.p50 ?? null,
        throughputP50: summary.throughput30m?.p50 ?? null,
        uptime30m: summary.uptime30m,
        latency5m: summary.latency5m,
        throughput5m: summary.throughput5m,
      });
    }
    summaries = nextSummaries;
    stats = nextStats;
  };
  return {
    get: (id) => stats.get(id),
    summary: (id) => summaries.get(id),
    refresh,
    start(intervalMs) {
      timer = setInterval(() => void refresh().catch(() => undefined), intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
};

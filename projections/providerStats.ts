import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { GenerationEvent } from '../src/modules/generations/generation.events.js';
import type { ReadStore } from '../src/readStore/readStore.js';
import { defineProjection } from './projection.js';

/**
 * Health and speed per endpoint over rolling windows, from generation events: outcomes per minute for uptime and
 * error rate (5 min, 30 min, 1 day), and recent samples of latency to first token and throughput for percentiles
 * (30 min). Windows are trimmed relative to the newest event, so evolve stays pure; queries apply the clock.
 */
export type ProviderStatsDoc = {
  _id: string;
  provider: string;
  model: string;
  /** [minute since epoch, ok, errors], ascending, at most one day. */
  minutes: [number, number, number][];
  /** [time ms, latency to first token ms, tokens per second], ascending, at most MAX_SAMPLES over 30 min. */
  samples: [number, number, number][];
  lastAt: string;
};

export const PROVIDER_STATS = 'providerStats';
const MINUTE = 60_000;
const DAY_MINUTES = 24 * 60;
const SAMPLE_WINDOW_MS = 30 * MINUTE;
/**
 * Percentiles come from the latest MAX_SAMPLES samples within the 30-minute window. The document is rewritten (and
 * serialised) with every batch of generations, so its size is on the request path's bill: 512 samples cost 0.7 ms of
 * JSON per batch, 128 cost 0.2 ms.
 */
const MAX_SAMPLES = 128;

const record = (doc: ProviderStatsDoc | null, id: string, provider: string, model: string, at: string, ok: boolean, sample: [number, number] | null): ProviderStatsDoc => {
  const t = Date.parse(at);
  const minute = Math.floor(t / MINUTE);
  const base: ProviderStatsDoc = doc ?? { _id: id, provider, model, minutes: [], samples: [], lastAt: at };
  // Runs for every generation: both lists are ascending, so trim from the front and copy with one slice.
  const minutes = base.minutes.slice(firstAfter(base.minutes, minute - DAY_MINUTES));
  const last = minutes[minutes.length - 1];
  if (last && last[0] === minute) minutes[minutes.length - 1] = [minute, last[1] + (ok ? 1 : 0), last[2] + (ok ? 0 : 1)];
  else minutes.push([minute, ok ? 1 : 0, ok ? 0 : 1]);
  let samples = base.samples;
  if (sample) {
    samples = samples.slice(Math.max(firstAfter(samples, t - SAMPLE_WINDOW_MS), samples.length + 1 - MAX_SAMPLES));
    samples.push([t, sample[0], sample[1]]);
  }
  return { ...base, minutes, samples, lastAt: at };
};

/** Index of the first entry whose key (its first element) is after `bound`, in an ascending list. */
const firstAfter = (list: readonly (readonly number[])[], bound: number): number => {
  let i = 0;
  while (i < list.length && list[i]![0]! <= bound) i++;
  return i;
};

export const providerStatsProjection = defineProjection<ProviderStatsDoc>({
  name: 'providerStats',
  version: 1,
  collection: PROVIDER_STATS,
  filter: { categories: ['generation'], eventTypes: ['AttemptFailed', 'GenerationCompleted', 'GenerationCancelled'] },
  documentId: (recorded) => {
    const event = recorded as RecordedEvent<GenerationEvent>;
    if (event.type === 'AttemptFailed') return event.data.countsAgainstUptime ? event.data.endpointId : null;
    // An answer its provider ended with an error mid-generation was its attempt's failure: that AttemptFailed is the
    // endpoint's outcome (an error when it counts against uptime, nothing for a request error), not this success.
    if (event.type === 'GenerationCompleted') return event.data.error === undefined ? event.data.endpointId : null;
    if (event.type === 'GenerationCancelled') return event.data.endpointId;
    return null;
  },
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<GenerationEvent>;
    switch (event.type) {
      case 'AttemptFailed':
        return record(doc, event.data.endpointId, event.data.providerSlug, event.data.model, event.data.at, false, null);
      case 'GenerationCompleted':
      case 'GenerationCancelled': {
        const d = event.data;
        if (event.type === 'GenerationCompleted' && event.data.error !== undefined) return doc;
        if (!d.endpointId || !d.providerSlug || !d.model) return doc;
        // A cancelled generation that had started streaming still shows the endpoint was up and how fast it began.
        const streaming = d.generationTimeMs - (d.latencyMs ?? 0);
        const throughput = d.latencyMs !== null && streaming > 0 && d.usage.completion > 1 ? Math.round(((d.usage.completion - 1) * 1000) / streaming) : null;
        const sample: [number, number] | null = d.latencyMs === null ? null : [d.latencyMs, throughput ?? -1];
        if (event.type === 'GenerationCancelled' && d.latencyMs === null) return doc;
        return record(doc, d.endpointId, d.providerSlug, d.model.replace(/:free$/, ''), d.at, true, sample);
      }
      default:
        return doc;
    }
  },
});

export interface Percentiles {
  readonly p50: number;
  readonly p75: number;
  readonly p90: number;
  readonly p99: number;
}

export interface EndpointStatsSummary {
  readonly uptime5m: number | null;
  readonly uptime30m: number | null;
  readonly uptime1d: number | null;
  readonly errorRate30m: number | null;
  readonly requests30m: number;
  readonly latency30m: Percentiles | null;
  readonly throughput30m: Percentiles | null;
  /** The same over the last 5 minutes: what routing's performance thresholds (`preferred_max_latency`, ...) compare. */
  readonly latency5m: Percentiles | null;
  readonly throughput5m: Percentiles | null;
}

const percentiles = (values: number[]): Percentiles | null => {
  if (values.length === 0) return null;
  const sorted = values.sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return { p50: at(50), p75: at(75), p90: at(90), p99: at(99) };
};

/** Uptime in percent (two decimals) and percentiles over the windows ending at `nowMs`. */
export const summarizeStats = (doc: ProviderStatsDoc | null | undefined, nowMs: number): EndpointStatsSummary => {
  const nowMinute = Math.floor(nowMs / MINUTE);
  const window = (minutes: number) => {
    let ok = 0;
    let err = 0;
    for (const [m, o, e] of doc?.minutes ?? []) {
      if (m > nowMinute - minutes) {
        ok += o;
        err += e;
      }
    }
    return { ok, err, total: ok + err };
  };
  const uptime = (minutes: number) => {
    const w = window(minutes);
    return w.total === 0 ? null : Math.round((w.ok / w.total) * 10_000) / 100;
  };
  const w30 = window(30);
  const recent = (doc?.samples ?? []).filter(([t]) => t > nowMs - SAMPLE_WINDOW_MS);
  const last5m = recent.filter(([t]) => t > nowMs - 5 * MINUTE);
  return {
    uptime5m: uptime(5),
    uptime30m: uptime(30),
    uptime1d: uptime(DAY_MINUTES),
    errorRate30m: w30.total === 0 ? null : Math.round((w30.err / w30.total) * 10_000) / 10_000,
    requests30m: w30.total,
    latency30m: percentiles(recent.map(([, latency]) => latency)),
    throughput30m: percentiles(recent.map(([, , tps]) => tps).filter((tps) => tps >= 0)),
    latency5m: percentiles(last5m.map(([, latency]) => latency)),
    throughput5m: percentiles(last5m.map(([, , tps]) => tps).filter((tps) => tps >= 0)),
  };
};

export const providerStatsQueries = (store: ReadStore) => {
  const stats = store.collection<ProviderStatsDoc>(PROVIDER_STATS);
  return {
    all: () => stats.find({}),
    byIds: (ids: readonly string[]) => stats.find({ _id: { $in: [...ids] } }),
  };
};

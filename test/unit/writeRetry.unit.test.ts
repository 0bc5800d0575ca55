/**
 * Writes already answered for (settlements, releases, generation records) tried again while the store refuses them
 * (QA s44 disk #2), within one bound, and a record whose append committed but was answered as failed written once.
 */
import { describe, expect, it } from 'vitest';
import { StorageFullError, UnavailableError, WrongExpectedVersionError } from '../../src/errors.js';
import type { EventStore, NewEvent, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { createWriteRetry, type Write } from '../../src/eventStore/writeRetry.js';
import { createLogger } from '../../src/logger.js';
import { createGenerationRecorder, type GenerationFacts } from '../../src/modules/generations/generation.api.js';

const logger = createLogger('silent');
const write: Write = { what: 'test write', ids: {}, passes: (error) => error instanceof StorageFullError };
const policy = { baseMs: 1, maxMs: 1 };
/** A write the store refuses until `works` is set, counting its attempts. */
const refusedUntil = () => {
  const state = { works: false, attempts: 0 };
  const attempt = async () => {
    state.attempts++;
    if (!state.works) throw new StorageFullError();
    return 'written';
  };
  return { state, attempt };
};

describe('writeRetry', () => {
  it('tries a refused write again until it is written', async () => {
    const retry = createWriteRetry({ logger, policy });
    const { state, attempt } = refusedUntil();
    const written = retry.untilWritten(write, attempt);
    await expect.poll(() => state.attempts).toBeGreaterThan(2);
    expect(retry.waiting).toBe(1);
    state.works = true;
    await expect(written).resolves.toBe('written');
    expect(retry.waiting).toBe(0);
  });

  it('gives up a failure that does not pass at once', async () => {
    const retry = createWriteRetry({ logger, policy });
    const wrong = new WrongExpectedVersionError('s', 'no_stream', 0);
    await expect(retry.untilWritten(write, () => Promise.reject(wrong))).rejects.toBe(wrong);
  });

  it('holds at most maxWaiting writes: past it a refused write fails with its error at once, and those waiting are written later', async () => {
    const retry = createWriteRetry({ logger, policy, maxWaiting: 2 });
    const first = refusedUntil();
    const second = refusedUntil();
    const waiting = [retry.untilWritten(write, first.attempt), retry.untilWritten(write, second.attempt)];
    await expect.poll(() => retry.waiting).toBe(2);
    const third = refusedUntil();
    await expect(retry.untilWritten(write, third.attempt)).rejects.toBeInstanceOf(StorageFullError);
    expect(third.state.attempts).toBe(1);
    first.state.works = second.state.works = true;
    await expect(Promise.all(waiting)).resolves.toEqual(['written', 'written']);
  });

  it('fails the writes waiting with their error once stopped, and tries none again after', async () => {
    const retry = createWriteRetry({ logger, policy: { baseMs: 60_000, maxMs: 60_000 } });
    const { attempt } = refusedUntil();
    const waiting = retry.untilWritten(write, attempt);
    await expect.poll(() => retry.waiting).toBe(1);
    retry.stop();
    await expect(waiting).rejects.toBeInstanceOf(StorageFullError);
    const later = refusedUntil();
    await expect(retry.untilWritten(write, later.attempt)).rejects.toBeInstanceOf(StorageFullError);
    expect(later.state.attempts).toBe(1);
  });
});

describe('a generation record tried again', () => {
  /** A store of one stream in memory whose first append commits and is then answered as unavailable (a timeout). */
  const ambiguousStore = () => {
    const events: RecordedEvent[] = [];
    let appends = 0;
    const store = {
      kind: 'eventstoredb',
      async append(stream: string, toAppend: readonly NewEvent[], options?: { expectedRevision?: unknown }) {
        appends++;
        if (options?.expectedRevision === 'no_stream' && events.length > 0) throw new WrongExpectedVersionError(stream, 'no_stream', events.length - 1);
        for (const e of toAppend) events.push({ id: `${events.length}`, stream, revision: events.length, position: 100 + events.length, type: e.type, data: e.data, metadata: e.metadata ?? {}, recordedAt: new Date() } as unknown as RecordedEvent);
        if (appends === 1) throw new UnavailableError('injected: timed out after the commit');
        return { nextExpectedRevision: events.length - 1, position: events[events.length - 1]!.position, durable: Promise.resolve() };
      },
      readStream: async (_stream: string, options?: { direction?: string; maxCount?: number }) => (options?.direction === 'backwards' ? [...events].reverse().slice(0, options.maxCount) : events),
    } as unknown as EventStore;
    return { store, events, appends: () => appends };
  };
  const facts: GenerationFacts = {
    generationId: 'gen-ambiguous',
    principal: { accountId: 'acc_1', keyId: null },
    correlationId: 'c',
    apiType: 'completions',
    models: ['m'],
    provider: null,
    stream: false,
    user: null,
    router: null,
    workflow: null,
    app: null,
    promptTokensEstimate: 1,
    promptMedia: { images: 0, files: 0, audio: 0 },
    sessionId: null,
    reserved: 10,
    startedAt: 1_000,
    attempts: [],
    end: {
      kind: 'completed',
      target: null,
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      usageSource: 'provider',
      cost: 5,
      cacheDiscount: 0,
      firstTokenAt: 1_100,
      endedAt: 1_200,
      upstreamId: null,
      finishReason: 'stop',
      nativeFinishReason: null,
      error: null,
      committed: true,
      clientGone: false,
    },
    overReport: null,
    at: 1_300,
  };

  it('takes the record an ambiguous failure wrote for written: its position, no second copy', async () => {
    const { store, events, appends } = ambiguousStore();
    const recorder = createGenerationRecorder({ eventStore: store, logger, writeRetry: createWriteRetry({ logger, policy }) });
    const position = await recorder.record(facts);
    expect(appends()).toBe(2);
    expect(position).toBe(events[events.length - 1]!.position);
    expect(events.filter((e) => e.type === 'GenerationRequested')).toHaveLength(1);
  });
});

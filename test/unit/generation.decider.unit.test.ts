import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { generationCommands, type GenerationFacts } from '../../src/modules/generations/generation.api.js';
import { decideAll, generationDecider } from '../../src/modules/generations/generation.decider.js';
import type { GenerationEvent } from '../../src/modules/generations/generation.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const at = '2026-11-25T10:00:00.000Z';
const generation = deciderSpec(generationDecider);
const requested: GenerationEvent = {
  type: 'GenerationRequested',
  data: {
    generationId: 'gen-1',
    accountId: 'acc_a',
    keyId: 'key_a',
    models: ['d/cheap', 'd/dear'],
    provider: null,
    stream: true,
    user: null,
    apiType: 'chat',
    router: null,
    promptTokensEstimate: 7,
    reserved: 5_000,
    at,
  },
};
const ref = { generationId: 'gen-1', attempt: 1, endpointId: 'demo/d/cheap', providerSlug: 'demo', model: 'd/cheap' };
const started: GenerationEvent = { type: 'AttemptStarted', data: { ...ref, upstreamModel: 'cheap', at } };
const failure = { errorCode: 'server_error' as const, status: 502, retryable: true, countsAgainstUptime: true, afterFirstToken: false, latencyMs: 40, message: 'upstream broke', at };
const attemptFailed: GenerationEvent = { type: 'AttemptFailed', data: { ...ref, ...failure } };
const usage = { prompt: 7, completion: 3, reasoning: 0, cached: 0, cacheWrite: 0 };
const identity = { generationId: 'gen-1', accountId: 'acc_a', keyId: 'key_a', streamed: true };
const outcome = {
  ...identity,
  endpointId: 'demo/d/cheap',
  providerSlug: 'demo',
  providerName: 'Demo',
  model: 'd/cheap',
  usage,
  usageSource: 'provider' as const,
  cost: 1_200,
  latencyMs: 30,
  generationTimeMs: 90,
  at,
};
const completed: GenerationEvent = { type: 'GenerationCompleted', data: { ...outcome, upstreamId: 'up-1', finishReason: 'stop', nativeFinishReason: 'stop' } };
const overReport = {
  generationId: 'gen-1',
  accountId: 'acc_a',
  keyId: 'key_a',
  endpointId: 'demo/d/cheap',
  providerSlug: 'demo',
  providerName: 'Demo',
  model: 'd/cheap',
  usageSource: 'provider' as const,
  reported: { ...usage, completion: 9_999 },
  billed: usage,
  caps: { promptTokens: 1_000, completionTokens: 500, cost: 5_000 },
  reportedCost: 99_999,
  billedCost: 1_200,
  at,
};

describe('generation decider', () => {
  it('records a request once', () => {
    generation([]).when({ type: 'RequestGeneration', data: requested.data }).then([requested]);
    generation([requested]).when({ type: 'RequestGeneration', data: requested.data }).thenThrows(ConflictError, /already requested/);
  });

  it('refuses every other step before the request', () => {
    generation([]).when({ type: 'StartAttempt', data: { ...ref, upstreamModel: 'cheap', at } }).thenThrows(ConflictError, /never requested/);
    generation([]).when({ type: 'CompleteGeneration', data: completed.data }).thenThrows(ConflictError, /never requested/);
    generation([]).when({ type: 'ReportUsageOverReported', data: overReport }).thenThrows(ConflictError, /never requested/);
  });

  it('starts attempts in order, one at a time', () => {
    generation([requested]).when({ type: 'StartAttempt', data: { ...ref, upstreamModel: 'cheap', at } }).then([started]);
    generation([requested]).when({ type: 'StartAttempt', data: { ...ref, attempt: 2, upstreamModel: 'cheap', at } }).thenThrows(ConflictError, /out of order/);
    // The router tries one target at a time: a second attempt while the first is in flight is a broken record.
    generation([requested, started]).when({ type: 'StartAttempt', data: { ...ref, attempt: 2, upstreamModel: 'cheap', at } }).thenThrows(ConflictError, /has not ended/);
    generation([requested, started, attemptFailed])
      .when({ type: 'StartAttempt', data: { ...ref, attempt: 2, endpointId: 'demo/d/dear', model: 'd/dear', upstreamModel: 'dear', at } })
      .then([{ type: 'AttemptStarted', data: { ...ref, attempt: 2, endpointId: 'demo/d/dear', model: 'd/dear', upstreamModel: 'dear', at } }]);
  });

  it('fails only the attempt in flight, keeping at most 500 characters of its message', () => {
    generation([requested, started]).when({ type: 'FailAttempt', data: { ...ref, ...failure } }).then([attemptFailed]);
    generation([requested, started])
      .when({ type: 'FailAttempt', data: { ...ref, ...failure, message: 'x'.repeat(5_000) } })
      .then([{ type: 'AttemptFailed', data: { ...ref, ...failure, message: 'x'.repeat(500) } }]);
    generation([requested]).when({ type: 'FailAttempt', data: { ...ref, ...failure } }).thenThrows(ConflictError, /not in flight/);
    generation([requested, started, attemptFailed]).when({ type: 'FailAttempt', data: { ...ref, ...failure } }).thenThrows(ConflictError, /not in flight/);
  });

  it('completes the generation it was requested as: same generation, account, key and streaming', () => {
    generation([requested, started]).when({ type: 'CompleteGeneration', data: completed.data }).then([completed]);
    const as = (change: Partial<{ generationId: string; accountId: string; keyId: string | null; streamed: boolean }>) => ({ type: 'CompleteGeneration' as const, data: { ...completed.data, ...change } });
    generation([requested, started]).when(as({ generationId: 'gen-2' })).thenThrows(ConflictError, /another generation/);
    generation([requested, started]).when(as({ accountId: 'acc_b' })).thenThrows(ConflictError, /another generation, account or key/);
    generation([requested, started]).when(as({ keyId: null })).thenThrows(ConflictError, /another generation, account or key/);
    generation([requested, started]).when(as({ streamed: false })).thenThrows(ConflictError, /was requested streamed/);
    generation([requested]).when({ type: 'StartAttempt', data: { ...ref, generationId: 'gen-2', upstreamModel: 'cheap', at } }).thenThrows(ConflictError, /another generation/);
  });

  it('fails with at most 1000 characters of the message, and records whether tokens had reached the client', () => {
    const data = { ...outcome, errorType: 'provider_unavailable', status: 503, message: 'm'.repeat(3_000), afterFirstToken: true };
    generation([requested, started, attemptFailed])
      .when({ type: 'FailGeneration', data })
      .then([{ type: 'GenerationFailed', data: { ...data, message: 'm'.repeat(1_000) } }]);
  });

  it('completes with the error its provider ended the answer with, keeping at most 1000 characters of its message', () => {
    const error = { errorType: 'provider_unavailable', status: 502, message: 'e'.repeat(3_000) };
    const data = { ...completed.data, finishReason: 'error' as const, error };
    generation([requested, started]).when({ type: 'CompleteGeneration', data }).then([{ type: 'GenerationCompleted', data: { ...data, error: { ...error, message: 'e'.repeat(1_000) } } }]);
  });

  it('cancels with the reason given', () => {
    generation([requested, started])
      .when({ type: 'CancelGeneration', data: { ...outcome, reason: 'client disconnected' } })
      .then([{ type: 'GenerationCancelled', data: { ...outcome, reason: 'client disconnected' } }]);
  });

  it('ends once: nothing starts, completes, fails or cancels after the end', () => {
    const ended = [requested, started, completed];
    generation(ended).when({ type: 'CompleteGeneration', data: completed.data }).thenThrows(ConflictError, /already completed/);
    generation(ended).when({ type: 'CancelGeneration', data: { ...outcome, reason: 'late' } }).thenThrows(ConflictError, /already completed/);
    generation(ended).when({ type: 'StartAttempt', data: { ...ref, attempt: 2, upstreamModel: 'cheap', at } }).thenThrows(ConflictError, /already completed/);
  });

  it('reports over-reported usage only after the end, and only once', () => {
    generation([requested, started]).when({ type: 'ReportUsageOverReported', data: overReport }).thenThrows(ConflictError, /not ended/);
    const report: GenerationEvent = { type: 'UsageOverReported', data: overReport };
    generation([requested, started, completed]).when({ type: 'ReportUsageOverReported', data: overReport }).then([report]);
    generation([requested, started, completed, report]).when({ type: 'ReportUsageOverReported', data: overReport }).then([]);
  });
});

describe("a generation's record, from what the gateway saw", () => {
  const target = { model: 'd/cheap', endpoint: { id: 'demo/d/cheap', upstreamModel: 'cheap', provider: { slug: 'demo', name: 'Demo' } } };
  const dear = { model: 'd/dear', endpoint: { id: 'demo/d/dear', upstreamModel: 'dear', provider: { slug: 'demo', name: 'Demo' } } };
  const t0 = Date.parse(at);
  const facts: GenerationFacts = {
    generationId: 'gen-1',
    principal: { accountId: 'acc_a', keyId: 'key_a' },
    correlationId: 'req-1',
    apiType: 'chat',
    models: ['d/cheap', 'd/dear'],
    provider: null,
    stream: true,
    user: null,
    router: null,
    workflow: null,
    app: null,
    promptTokensEstimate: 7,
    promptMedia: { images: 2, files: 1, audio: 1 },
    sessionId: null,
    reserved: 5_000,
    startedAt: t0,
    attempts: [
      { attempt: 1, target, startedAt: t0, endedAt: t0 + 40, error: { code: 'server_error', status: 502, retryable: true, message: 'upstream broke' }, countsAgainstUptime: true, afterFirstToken: false },
      { attempt: 2, target: dear, startedAt: t0 + 50, endedAt: t0 + 90, error: null, countsAgainstUptime: false, afterFirstToken: false },
    ],
    end: {
      kind: 'completed',
      target: dear,
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
      usageSource: 'provider',
      cost: 1_200,
      cacheDiscount: -40,
      firstTokenAt: t0 + 80,
      endedAt: t0 + 90,
      upstreamId: 'up-1',
      finishReason: 'stop',
      nativeFinishReason: 'stop',
      error: null,
      committed: true,
      clientGone: false,
    },
    overReport: { reported: overReport.reported, billed: usage, caps: overReport.caps, reportedCost: 99_999, billedCost: 1_200 },
    at: t0 + 95,
  };

  it('tells a fallback as request, failed attempt, second attempt, completion and over-report, with times from the request', () => {
    const events = decideAll(generationCommands(facts));
    expect(events.map((e) => e.type)).toEqual(['GenerationRequested', 'AttemptStarted', 'AttemptFailed', 'AttemptStarted', 'GenerationCompleted', 'UsageOverReported']);
    const end = events[4]!;
    expect(end.type === 'GenerationCompleted' && end.data).toMatchObject({ ...identity, model: 'd/dear', cacheDiscount: -40, latencyMs: 80, generationTimeMs: 90, at: new Date(t0 + 95).toISOString() });
    expect(events[0]!.type === 'GenerationRequested' && events[0]!.data.promptMedia).toEqual({ images: 2, files: 1, audio: 1 });
    expect(events[2]!.type === 'AttemptFailed' && events[2]!.data.latencyMs).toBe(40);
  });

  it('says when the client went away and the answer, from a provider that cannot cancel, was read on (completed or failed)', () => {
    expect(decideAll(generationCommands(facts)).find((e) => e.type === 'GenerationCompleted')!.data).not.toHaveProperty('clientGone');
    for (const kind of ['completed', 'failed'] as const) {
      const events = decideAll(generationCommands({ ...facts, end: { ...facts.end, kind, clientGone: true }, overReport: null }));
      expect(events.at(-1)).toMatchObject({ type: kind === 'completed' ? 'GenerationCompleted' : 'GenerationFailed', data: { clientGone: true, cost: 1_200 } });
    }
  });

  it('records the error its provider ended a completed answer with, and none on an answer without one', () => {
    expect(decideAll(generationCommands(facts)).find((e) => e.type === 'GenerationCompleted')!.data).not.toHaveProperty('error');
    const error = { errorType: 'rate_limit_exceeded', status: 429, message: 'rate limited mid-answer' };
    const events = decideAll(generationCommands({ ...facts, end: { ...facts.end, finishReason: 'error', error }, overReport: null }));
    expect(events.at(-1)).toMatchObject({ type: 'GenerationCompleted', data: { finishReason: 'error', error } });
  });

  it('refuses a record whose attempts are out of order rather than storing it', () => {
    const [first, second] = facts.attempts;
    expect(() => decideAll(generationCommands({ ...facts, attempts: [second!, first!] }))).toThrow(/out of order/);
  });

  it('records a failure without a reported error as a server failure', () => {
    const events = decideAll(generationCommands({ ...facts, end: { ...facts.end, kind: 'failed', error: null }, overReport: null }));
    expect(events.at(-1)).toMatchObject({ type: 'GenerationFailed', data: { errorType: 'server', status: 500, afterFirstToken: true } });
  });
});

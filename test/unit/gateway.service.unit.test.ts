/**
 * The gateway service with an in-memory ledger and event store, over demo targets (in-process, no network): what it
 * reserves, settles and records.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InsufficientCreditsError } from '../../src/errors.js';
import type { EventStore, NewEvent } from '../../src/eventStore/eventStore.js';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import { createGateway, type ContentLog } from '../../src/gateway/gateway.js';
import type { StoredContent } from '../../src/contentStore/contentStore.js';
import { createGenerationRecorder } from '../../src/modules/generations/generation.api.js';
import { GatewayError } from '../../src/gateway/gatewayErrors.js';
import { worstCaseCost } from '../../src/gateway/pricing.js';
import type { StatsSnapshot } from '../../src/gateway/routeStats.js';
import type { ChatChunk } from '../../src/gateway/types.js';
import { createUpstreamClient } from '../../src/gateway/upstream.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { createCredentialVault, parseEnvAllowList } from '../../src/modules/catalog/credentials.js';
import { createOutboundPolicy } from '../../src/modules/outbound/outboundPolicy.js';
import type { Ledger } from '../../src/modules/ledger/ledger.js';
import { catalogOf, prices } from '../support/catalogFixture.js';
import { startFakeProvider, type FakeProvider } from '../support/fakeProviders.js';
import { DEADLINE_MS } from '../support/eventually.js';

interface LedgerCall {
  op: 'reserve' | 'settle' | 'release';
  input: Record<string, unknown>;
}

/**
 * A tiny ledger: one balance, reservations by generation id, and a log of calls. Like the real one it admits a
 * reservation (onAdmitted) before it is durable; `hold()` keeps the next ones between the two until the test makes
 * them durable or refuses them (as a concurrent process's append would make the real ledger do).
 */
const fakeLedger = (available: number) => {
  const calls: LedgerCall[] = [];
  let free = available;
  const reservations = new Map<string, number>();
  let held: { durable: Promise<void>; admitted: () => void; make: () => void; refuse: (error: unknown) => void } | null = null;
  const hold = () => {
    let make!: () => void;
    let refuse!: (error: unknown) => void;
    const durable = new Promise<void>((resolve, reject) => ((make = resolve), (refuse = reject)));
    let admitted!: () => void;
    const wasAdmitted = new Promise<void>((resolve) => (admitted = resolve));
    held = { durable, admitted, make, refuse };
    return { admitted: wasAdmitted, make, refuse };
  };
  const ledger: Ledger = {
    async reserve({ onAdmitted, ...input }) {
      calls.push({ op: 'reserve', input });
      if (input.amount > free) throw new InsufficientCreditsError('not enough', { required: input.amount, available: free });
      free -= input.amount;
      reservations.set(input.generationId, input.amount);
      onAdmitted?.();
      if (!held) return;
      held.admitted();
      await held.durable.catch((error: unknown) => {
        free += input.amount;
        reservations.delete(input.generationId);
        throw error;
      });
    },
    async settle(input) {
      calls.push({ op: 'settle', input });
      free += (reservations.get(input.generationId) ?? 0) - input.actual;
      reservations.delete(input.generationId);
      return { charged: input.actual, overrun: 0, uncollected: 0 };
    },
    async release(input) {
      calls.push({ op: 'release', input });
      free += reservations.get(input.generationId) ?? 0;
      reservations.delete(input.generationId);
    },
    balance: async () => ({ accountId: 'a', purchased: 0, granted: available, refunded: 0, settled: 0, reserved: 0, available: free, lifetimePurchased: 0, fees: 0, uncollected: 0, openReservations: reservations.size }),
    keyUsage: async () => ({ daily: 0, weekly: 0, monthly: 0, lifetime: 0 }),
  };
  return { ledger, calls, hold };
};

const fakeEventStore = () => {
  const appends: { stream: string; events: readonly NewEvent[] }[] = [];
  const store = {
    append: async (stream: string, events: readonly NewEvent[]) => {
      appends.push({ stream, events });
      return { nextExpectedRevision: events.length - 1, position: appends.length };
    },
  } as unknown as EventStore;
  return { store, appends };
};

const CHEAP = prices({ prompt: 150, completion: 600 });
const DEAR = prices({ prompt: 1_000, completion: 10_000 });
const catalog = catalogOf({
  providers: [{ slug: 'demo', name: 'Demo', protocol: 'demo' }],
  endpoints: [
    { model: 'd/cheap', provider: 'demo', prices: CHEAP, maxOutput: 500 },
    { model: 'd/dear', provider: 'demo', prices: DEAR, maxOutput: 500 },
    { model: 'd/gift', provider: 'demo', prices: prices({ prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }), variants: ['free'] },
  ],
});

const setup = (available = 1_000_000_000, gatewayCatalog = catalog, extra: { contentLog?: ContentLog; logger?: Logger } = {}) => {
  const { ledger, calls, hold } = fakeLedger(available);
  const events = fakeEventStore();
  const gateway = createGateway({
    ...extra,
    catalog: gatewayCatalog,
    vault: createCredentialVault({ masterKey: undefined, envAllow: parseEnvAllowList([]) }),
    upstream: createUpstreamClient(createOutboundPolicy()),
    ledger,
    generations: createGenerationRecorder({ eventStore: events.store, logger: createLogger('silent') }),
    stats: { get: () => undefined } as unknown as StatsSnapshot,
    logger: extra.logger ?? createLogger('silent'),
    config: { requestTimeoutMs: 5_000, firstTokenTimeoutMs: 1_000, idleTimeoutMs: 1_000, maxAttempts: 3, maxRetryAfterMs: 1_000, backoffBaseMs: 1, breakerFailures: 3, breakerCooldownMs: 1_000, demoTokenDelayMs: 0 },
  });
  const run = (body: Record<string, unknown>, onChunk?: (chunk: ChatChunk) => void) =>
    gateway.generate(
      { generationId: 'gen-test', principal: { accountId: 'acc_a', keyId: 'key_a', roles: new Set(['user']) }, parsed: parseChatBody({ messages: [{ role: 'user', content: 'Hello there' }], ...body }), rawProvider: null, apiType: 'chat', correlationId: 'c' },
      onChunk ? { onChunk } : {},
    );
  return { gateway, calls, hold, appends: events.appends, run };
};

/** The prompt tokens a reservation counts (maxPromptTokens): a token per UTF-8 byte, 4 for the message, 8 for the reply. */
const PROMPT = Buffer.byteLength('Hello there') + 4 + 8;

describe('the gateway service', () => {
  it('reserves the worst case, settles the actual cost, and records the generation in one append', async () => {
    const { gateway, calls, appends, run } = setup();
    const outcome = await run({ model: 'd/cheap' });
    await gateway.idle();
    expect(outcome.kind).toBe('completed');
    expect(calls[0]).toEqual({ op: 'reserve', input: { accountId: 'acc_a', keyId: 'key_a', generationId: 'gen-test', amount: worstCaseCost(PROMPT, 500, CHEAP), freeModel: false, syncWithinMs: 0 } });
    expect(calls[1]!.op).toBe('settle');
    expect(calls[1]!.input).toMatchObject({ generationId: 'gen-test', actual: outcome.cost, usage: { model: 'd/cheap', provider: 'demo', promptTokens: outcome.usage.prompt_tokens } });
    expect(outcome.cost).toBe(outcome.usage.prompt_tokens * 150 + outcome.usage.completion_tokens * 600);
    expect(appends).toHaveLength(1);
    expect(appends[0]!.stream).toBe('generation-gen-test');
    expect(appends[0]!.events.map((e) => e.type)).toEqual(['GenerationRequested', 'AttemptStarted', 'GenerationCompleted']);
  });

  it('reserves for the dearest target of a fallback list', async () => {
    const { calls, run } = setup();
    await run({ model: 'd/cheap', models: ['d/dear'] });
    expect(calls[0]!.input.amount).toBe(worstCaseCost(PROMPT, 500, DEAR));
  });

  it('a :free request reserves nothing and counts as a free-model request', async () => {
    const { calls, run } = setup();
    const outcome = await run({ model: 'd/gift:free' });
    expect(outcome.model).toBe('d/gift:free');
    expect(calls[0]!.input).toMatchObject({ amount: 0, freeModel: true });
  });

  it('without max_tokens, clamps to what the balance pays for and tells the model', async () => {
    const budget = PROMPT * 150 + 20 * 600;
    const { calls, run } = setup(budget);
    const outcome = await run({ model: 'd/cheap' });
    expect(calls.filter((c) => c.op === 'reserve').map((c) => c.input.amount)).toEqual([worstCaseCost(PROMPT, 500, CHEAP), worstCaseCost(PROMPT, 20, CHEAP)]);
    expect(outcome.finishReason).toBe('length');
    expect(outcome.usage.completion_tokens).toBeLessThanOrEqual(20);
  });

  it('with max_tokens, refuses with OpenRouter’s 402 message', async () => {
    const { run } = setup(PROMPT * 150 + 20 * 600);
    const error = await run({ model: 'd/cheap', max_tokens: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(402);
    expect((error as GatewayError).message).toContain('You requested up to 100 tokens, but can only afford 20');
  });

  it('streams the demo answer chunk by chunk through onChunk', async () => {
    const { run } = setup();
    const chunks: ChatChunk[] = [];
    const outcome = await run({ model: 'd/cheap', stream: true }, (chunk) => chunks.push(chunk));
    expect(outcome.kind).toBe('completed');
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')).toContain('You said: "Hello there"');
    expect(new Set(chunks.map((c) => c.id))).toEqual(new Set(['gen-test']));
  });
});

describe('input & output logging', () => {
  it('stores what an account that logs sent and got, after the answer; nothing for one that does not', async () => {
    const stored: StoredContent[] = [];
    const logs = { enabled: (accountId: string) => accountId === 'acc_a', store: { put: async (content: StoredContent) => void stored.push(content) } };
    const { gateway, run } = setup(undefined, undefined, { contentLog: logs });
    const outcome = await run({ model: 'd/cheap' });
    await gateway.idle();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ generationId: 'gen-test', accountId: 'acc_a', input: { messages: [{ role: 'user', content: 'Hello there' }] } });
    expect(stored[0]!.output.completion).toBe(outcome.response!.choices[0]!.message.content);
    const { gateway: other, run: runOther } = setup(undefined, undefined, { contentLog: { ...logs, enabled: () => false } });
    await runOther({ model: 'd/cheap' });
    await other.idle();
    expect(stored).toHaveLength(1);
  });

  it('a content store that fails costs the content only: the answer, the charge and the record stand, and the failure is logged', async () => {
    const lines: string[] = [];
    const logger = createLogger('error', { write: (line: string) => void lines.push(line) });
    const failing = { enabled: () => true, store: { put: async () => Promise.reject(new Error('disk full')) } };
    const { gateway, calls, appends, run } = setup(undefined, undefined, { contentLog: failing, logger });
    const outcome = await run({ model: 'd/cheap', stream: true }, () => undefined);
    await gateway.idle();
    expect(outcome.kind).toBe('completed');
    expect(calls.map((c) => c.op)).toEqual(['reserve', 'settle']);
    expect(appends).toHaveLength(1);
    expect(lines.map((l) => JSON.parse(l) as { msg: string; err: { message: string } })).toEqual([
      expect.objectContaining({ msg: 'could not store a generation’s content (input & output logging)', err: expect.objectContaining({ message: 'disk full' }) }),
    ]);
  });
});

describe('the reservation is made durable while the provider works', () => {
  let upstream: FakeProvider;
  let remote: ReturnType<typeof catalogOf>;
  beforeAll(async () => {
    upstream = await startFakeProvider('openai');
    remote = catalogOf({ providers: [{ slug: 'up', protocol: 'openai', baseUrl: upstream.baseUrl }], endpoints: [{ model: 'u/fast', provider: 'up', prices: CHEAP, maxOutput: 500 }] });
  });
  afterAll(() => upstream.close());

  it('calls the provider once the reservation is admitted, and answers only once it is durable', async () => {
    const { gateway, calls, hold, run } = setup(1_000_000_000, remote);
    const reservation = hold();
    const before = upstream.requests.length;
    let answered = false;
    const outcome = run({ model: 'u/fast' }).then((o) => ((answered = true), o));
    await reservation.admitted;
    await vi.waitFor(() => expect(upstream.requests.length).toBe(before + 1), { timeout: DEADLINE_MS });
    await upstream.requests.at(-1)!.outcome;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answered).toBe(false);
    reservation.make();
    expect((await outcome).kind).toBe('completed');
    await gateway.idle();
    expect(calls.map((c) => c.op)).toEqual(['reserve', 'settle']);
  });

  it('a call that fails before its reservation is durable: released once durable; nothing to release if refused', async () => {
    for (const end of ['durable', 'refused'] as const) {
      upstream.script({ status: 400 });
      const { gateway, calls, hold, run } = setup(1_000_000_000, remote);
      const reservation = hold();
      const outcome = await run({ model: 'u/fast' });
      expect(outcome.kind).toBe('failed');
      expect(outcome.error?.status).toBe(400);
      if (end === 'durable') reservation.make();
      else reservation.refuse(new InsufficientCreditsError('spent by another process', { required: 1, available: 0 }));
      await gateway.idle();
      expect(calls.map((c) => c.op)).toEqual(end === 'durable' ? ['reserve', 'release'] : ['reserve']);
    }
  });

  it('refused after admission: the upstream call is aborted, nothing is streamed, charged or released; a typed 402', async () => {
    upstream.script({ slowTokenMs: 50 });
    const { gateway, calls, hold, appends, run } = setup(1_000_000_000, remote);
    const reservation = hold();
    const chunks: ChatChunk[] = [];
    const outcome = run({ model: 'u/fast', stream: true }, (chunk) => chunks.push(chunk));
    await reservation.admitted;
    await vi.waitFor(() => expect(upstream.requests.at(-1)?.stream).toBe(true), { timeout: DEADLINE_MS });
    reservation.refuse(new InsufficientCreditsError('spent by another process', { required: 1, available: 0 }));
    const result = await outcome;
    expect(result.kind).toBe('failed');
    expect(result.committed).toBe(false);
    expect(result.cost).toBe(0);
    expect(result.error?.status).toBe(402);
    expect(result.error?.metadata).toMatchObject({ error_type: 'payment_required', limit_source: 'credits' });
    expect(chunks).toEqual([]);
    expect(await upstream.requests.at(-1)!.outcome).toBe('aborted');
    await gateway.idle();
    expect(calls.map((c) => c.op)).toEqual(['reserve']);
    expect(appends[0]!.events.map((e) => e.type)).toEqual(['GenerationRequested', 'AttemptStarted', 'GenerationFailed']);
  });
});

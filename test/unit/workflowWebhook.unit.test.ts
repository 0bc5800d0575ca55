import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IDEMPOTENCY_WINDOW_MS, idempotentRunId, startIdempotent, type KeyScope } from '../../src/modules/workflows/runIdempotency.js';
import { checkWebhookSignature, signWebhook } from '../../src/modules/workflows/webhookSignature.js';

const body = Buffer.from('{"name":"Ada"}');
const nowMs = Date.parse('2026-12-02T12:00:00Z');
const ts = String(nowMs / 1_000);

describe('webhook signatures', () => {
  it('accepts its own signature within five minutes either way, and nothing else', () => {
    const check = (over: Partial<Parameters<typeof checkWebhookSignature>[0]>) =>
      checkWebhookSignature({ secret: 's3cret', signature: signWebhook('s3cret', ts, body), timestamp: ts, body, nowMs, ...over });
    expect(check({})).toEqual({ ok: true });
    expect(check({ nowMs: nowMs + 300_000 }).ok).toBe(true);
    expect(check({ nowMs: nowMs - 300_000 }).ok).toBe(true);
    expect(check({ nowMs: nowMs + 301_000 })).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(check({ nowMs: nowMs - 301_000 })).toMatchObject({ ok: false, reason: 'stale_timestamp' });
    expect(check({ body: Buffer.from('{"name":"Adb"}') })).toMatchObject({ ok: false, reason: 'wrong_signature' });
    expect(check({ secret: 'other' })).toMatchObject({ ok: false, reason: 'wrong_signature' });
    expect(check({ timestamp: null })).toMatchObject({ ok: false, reason: 'missing_timestamp' });
    expect(check({ timestamp: '1e9' })).toMatchObject({ ok: false, reason: 'malformed_timestamp' });
    expect(check({ signature: 'sha256=xyz' })).toMatchObject({ ok: false, reason: 'malformed_signature' });
    expect(check({ signature: signWebhook('s3cret', ts, body).toUpperCase().replace('SHA256', 'sha256') }).ok).toBe(true);
  });
});

describe('Idempotency-Key window', () => {
  const webhook: KeyScope = { kind: 'webhook' };
  /** A fake runs API: `start(runId)` starts at the clock's time, or answers the run already under that id. */
  const fakeRuns = (clock: { now: number }) => {
    const runs = new Map<string, { id: string; startedAt: string }>();
    const start = async (runId: string) => {
      const run = runs.get(runId) ?? { id: runId, startedAt: new Date(clock.now).toISOString() };
      runs.set(runId, run);
      return run;
    };
    return { runs, start };
  };

  it('answers the key’s run for 24 h from its start, then starts the next one, which holds the key for its own 24 h', async () => {
    const clock = { now: nowMs };
    const { runs, start } = fakeRuns(clock);
    const call = () => startIdempotent(start, 'wf_a', webhook, 'k', () => clock.now);
    const first = await call();
    expect(first.id).toBe(idempotentRunId('wf_a', webhook, 'k', 0));
    clock.now += IDEMPOTENCY_WINDOW_MS - 1;
    expect((await call()).id).toBe(first.id);
    clock.now += 1;
    const second = await call();
    expect(second.id).toBe(idempotentRunId('wf_a', webhook, 'k', 1));
    clock.now += IDEMPOTENCY_WINDOW_MS - 1;
    expect((await call()).id).toBe(second.id);
    clock.now += 1;
    expect((await call()).id).toBe(idempotentRunId('wf_a', webhook, 'k', 2));
    expect(runs.size).toBe(3);
  });

  it('keeps the id runs started before the window had (index 0), and separates workflows and keys', () => {
    expect(idempotentRunId('wf_a', webhook, 'k', 0)).toMatch(/^run_[0-9a-f]{40}$/);
    const ids = [idempotentRunId('wf_a', webhook, 'k', 0), idempotentRunId('wf_a', webhook, 'k', 1), idempotentRunId('wf_b', webhook, 'k', 0), idempotentRunId('wf_a', webhook, 'j', 0)];
    expect(new Set(ids).size).toBe(4);
  });

  it('gives each API key its own ids for a key, apart from its account’s other keys and the webhook’s', () => {
    const mine: KeyScope = { kind: 'account', accountId: 'acc_a', keyId: 'key_a' };
    const admin: KeyScope = { kind: 'account', accountId: 'acc_a', keyId: null };
    const ids = [
      idempotentRunId('wf_a', webhook, 'k', 0),
      idempotentRunId('wf_a', mine, 'k', 0),
      idempotentRunId('wf_a', { kind: 'account', accountId: 'acc_a', keyId: 'key_b' }, 'k', 0),
      idempotentRunId('wf_a', admin, 'k', 0),
      idempotentRunId('wf_a', { kind: 'account', accountId: 'acc_b', keyId: 'key_a' }, 'k', 0),
      idempotentRunId('wf_b', mine, 'k', 0),
      idempotentRunId('wf_a', mine, 'k', 1),
    ];
    expect(ids.every((id) => /^run_[0-9a-f]{40}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // The bootstrap admin key (no key of the store) keeps its account's ids, those every caller had before.
    expect(idempotentRunId('wf_a', admin, 'k', 0)).toBe(`run_${createHash('sha256').update('manual\nacc_a\nwf_a\nk\n0').digest('hex').slice(0, 40)}`);
  });
});

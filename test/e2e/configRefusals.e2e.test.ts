/**
 * Variables checked before anything starts, run as the operator runs it (`src/main.ts` in its own process): a value
 * Switchyard cannot use as given stops the start with exit 78 and a line naming the variable, instead of being
 * accepted and failing later: a timeout past what Node.js timers take answered every call 504 at once, a blank fee was
 * read as 0 and a blank PORT as a random port, an admin key or metrics token with a trailing space never matched.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, MAX_TIMER_MS } from '../../src/config.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { startGatewayHarness } from '../support/gatewayHarness.js';
import { spawnedSwitchyards, startToExit } from '../support/spawnedServer.js';

const servers = spawnedSwitchyards();
/** A data directory not yet created, in one removed after the test. */
const newDataDir = () => join(servers.dataDir('switchyard-config-'), 'data');

const TIMERS_MS = [
  'GATEWAY_REQUEST_TIMEOUT_MS',
  'GATEWAY_FIRST_TOKEN_TIMEOUT_MS',
  'GATEWAY_STREAM_IDLE_TIMEOUT_MS',
  'GATEWAY_BREAKER_COOLDOWN_MS',
  'GATEWAY_KEEPALIVE_MS',
  'GATEWAY_MAX_RETRY_AFTER_MS',
  'GATEWAY_BACKOFF_BASE_MS',
] as const;

describe('a variable that becomes a timer', () => {
  it('past 2^31-1 ms (what Node.js timers take) stops the start with exit 78 naming it, instead of timing every call out at once', async () => {
    const { code, stderr } = await startToExit(newDataDir(), { GATEWAY_REQUEST_TIMEOUT_MS: '99999999999' });
    expect(code).toBe(78);
    expect(stderr).toContain('GATEWAY_REQUEST_TIMEOUT_MS: GATEWAY_REQUEST_TIMEOUT_MS must be at most 2147483647');
    for (const name of TIMERS_MS) {
      expect(() => loadConfig({ [name]: String(MAX_TIMER_MS + 1) }), name).toThrow(new RegExp(`${name} must be at most 2147483647`));
      expect(loadConfig({ [name]: String(MAX_TIMER_MS) })[name]).toBe(MAX_TIMER_MS);
    }
    // Seconds, made milliseconds.
    expect(() => loadConfig({ RESERVATION_TTL_SECONDS: '2147484' })).toThrow(/RESERVATION_TTL_SECONDS must be at most 2147483/);
    expect(loadConfig({ RESERVATION_TTL_SECONDS: '2147483' }).RESERVATION_TTL_SECONDS).toBe(2_147_483);
  });

  it('at the maximum waits as asked: a call slower than the defaults but well within it is answered', async () => {
    const h = await startGatewayHarness(Object.fromEntries(TIMERS_MS.filter((n) => n !== 'GATEWAY_KEEPALIVE_MS' && n !== 'GATEWAY_BACKOFF_BASE_MS').map((n) => [n, String(MAX_TIMER_MS)])));
    try {
      const user = await h.openAccount({ credits: 1_000_000_000 });
      const slow = await h.fakeEndpoint({ protocol: 'openai', slug: 'slow-up', model: 'test/slow', prices: { prompt: 1, completion: 1 } });
      slow.script({ latencyMs: 300 });
      const res = await h.chat(user.key, { model: 'test/slow', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
      expect(res.status).toBe(200);
      slow.script({ latencyMs: 300 });
      const streamed = await h.chat(user.key, { model: 'test/slow', stream: true, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
      expect(streamed.status).toBe(200);
      expect(await streamed.text()).toContain('[DONE]');
    } finally {
      await h.stop();
    }
  });
});

describe('a numeric variable', () => {
  it('set to whitespace stops the start naming it, rather than being read as 0 (no purchase fee)', async () => {
    const { code, stderr } = await startToExit(newDataDir(), { PURCHASE_FEE_BASIS_POINTS: ' ', PURCHASE_FEE_MINIMUM: '\t' });
    expect(code).toBe(78);
    expect(stderr).toContain('PURCHASE_FEE_BASIS_POINTS: PURCHASE_FEE_BASIS_POINTS is blank');
    expect(stderr).toContain('PURCHASE_FEE_MINIMUM: PURCHASE_FEE_MINIMUM is blank');
  });

  it('is decimal digits only: PORT=" ", 0x10, 1e3, 80.5 and "4000 " are refused, not a random port, 16 or 1000', async () => {
    const { code, stderr } = await startToExit(newDataDir(), { PORT: ' ' });
    expect(code).toBe(78);
    expect(stderr).toContain('PORT: PORT is blank');
    for (const port of ['0x10', '1e3', '80.5', '4000 ', '+80', '']) {
      if (port === '') expect(loadConfig({ PORT: port }).PORT).toBe(4000); // empty is unset, as a shell writes it
      else expect(() => loadConfig({ PORT: port }), port).toThrow(/PORT: PORT must be a whole number written in decimal digits/);
    }
    expect(loadConfig({ PORT: '8080', PURCHASE_FEE_BASIS_POINTS: '0' })).toMatchObject({ PORT: 8080, PURCHASE_FEE_BASIS_POINTS: 0 });
    expect(() => loadConfig({ PORT: '-1' })).toThrow(/PORT must be at least 0/);
  });
});

describe('ADMIN_API_KEY and METRICS_TOKEN', () => {
  it('with leading or trailing whitespace (which no bearer token can match) stop the start naming the variable', async () => {
    const { code, stderr } = await startToExit(newDataDir(), { ADMIN_API_KEY: `${ADMIN_KEY} ` });
    expect(code).toBe(78);
    expect(stderr).toContain('ADMIN_API_KEY: ADMIN_API_KEY has leading or trailing whitespace');
    expect(stderr).not.toContain(ADMIN_KEY);
    expect(() => loadConfig({ METRICS_TOKEN: 'tok-0123456789abcdef\r' })).toThrow(/METRICS_TOKEN: METRICS_TOKEN has leading or trailing whitespace/);
    expect(() => loadConfig({ METRICS_TOKEN: ' tok-0123456789abcdef' })).toThrow(/METRICS_TOKEN has leading or trailing whitespace/);
    expect(() => loadConfig({ METRICS_TOKEN: 'tok-0123\u0000456789abcdef' })).toThrow(/METRICS_TOKEN must be printable ASCII characters only/);
    expect(() => loadConfig({ ADMIN_API_KEY: `${ADMIN_KEY}é` })).toThrow(/ADMIN_API_KEY must be printable ASCII characters only/);
    // Inside, a space is sent and matched as it is.
    expect(loadConfig({ METRICS_TOKEN: 'tok-0123 456789abcdef' }).METRICS_TOKEN).toBe('tok-0123 456789abcdef');
  });
});

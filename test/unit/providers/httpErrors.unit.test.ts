import { describe, expect, it } from 'vitest';
import { anthropicAdapter } from '../../../src/gateway/providers/anthropic/index.js';
import { geminiAdapter } from '../../../src/gateway/providers/gemini/index.js';
import {
  codeForStatus,
  isContextLengthMessage,
  mapHttpError,
  parseRetryAfterMs,
  type ErrorBody,
} from '../../../src/gateway/providers/httpErrors.js';
import { openaiAdapter } from '../../../src/gateway/providers/openai/index.js';

const silent = (): ErrorBody => ({});

describe('the shared HTTP error mapper', () => {
  it('reads Retry-After as seconds, as milliseconds (retry-after-ms) or as an HTTP-date', () => {
    const now = Date.parse('2025-03-01T12:00:00Z');
    expect(parseRetryAfterMs({ 'Retry-After': '1.5' })).toBe(1500);
    expect(parseRetryAfterMs({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
    expect(parseRetryAfterMs({ 'retry-after': 'Sat, 01 Mar 2025 12:00:30 GMT' }, now)).toBe(30_000);
    expect(parseRetryAfterMs({ 'retry-after': 'Sat, 01 Mar 2025 11:59:00 GMT' }, now)).toBe(0);
    expect(parseRetryAfterMs({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers({ 'Retry-After': '4' }))).toBe(4000);
    expect(parseRetryAfterMs({ 'retry-after': ['7'] })).toBe(7000);
    // At most a day, whatever was sent.
    expect(parseRetryAfterMs({ 'retry-after': '9'.repeat(400) })).toBe(86_400_000);
    expect(parseRetryAfterMs({ 'retry-after-ms': '1'.repeat(30) })).toBe(86_400_000);
    expect(parseRetryAfterMs({ 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' }, now)).toBe(86_400_000);
  });

  it('classifies statuses', () => {
    expect([400, 401, 402, 403, 404, 408, 413, 429, 500, 502, 503, 504, 529].map(codeForStatus)).toEqual([
      'bad_request',
      'auth',
      'payment_required',
      'auth',
      'not_found',
      'timeout',
      'bad_request',
      'rate_limited',
      'server_error',
      'server_error',
      'overloaded',
      'timeout',
      'overloaded',
    ]);
  });

  it('recognises context-length messages from each provider', () => {
    expect(isContextLengthMessage("This model's maximum context length is 8192 tokens.")).toBe(true);
    expect(isContextLengthMessage('prompt is too long: 208310 tokens > 200000 maximum')).toBe(true);
    expect(isContextLengthMessage('input length and `max_tokens` exceed context limit: 197626 + 8192 > 200000')).toBe(true);
    expect(isContextLengthMessage('The input token count (1250000) exceeds the maximum number of tokens allowed (1048576).')).toBe(true);
    expect(isContextLengthMessage('Invalid value for temperature')).toBe(false);
  });

  it('turns a status into a code and retryability when the body says nothing the protocol knows', () => {
    expect(mapHttpError('p', silent, 503, { 'retry-after': '3' }, '')).toMatchObject({ code: 'overloaded', status: 503, retryable: true, retryAfterMs: 3000, provider: 'p' });
    expect(mapHttpError('p', silent, 401, {}, '')).toMatchObject({ code: 'auth', retryable: false });
    expect(mapHttpError('p', silent, 400, {}, '{}').upstreamMessage).toBeUndefined();
  });

  it('finds the message in the body shapes servers and proxies use, and keeps a non-JSON body shortened', () => {
    const message = (bodyText: string): string | undefined => mapHttpError('p', silent, 400, {}, bodyText).upstreamMessage;
    expect(message(JSON.stringify({ error: 'flat' }))).toBe('flat');
    expect(message(JSON.stringify({ error: { message: 'nested' } }))).toBe('nested');
    expect(message(JSON.stringify({ message: 'top' }))).toBe('top');
    expect(message(JSON.stringify({ detail: 'fastapi' }))).toBe('fastapi');
    expect(message('  <html>Bad gateway</html>\n')).toBe('<html>Bad gateway</html>');
    expect(message('x'.repeat(2000))).toHaveLength(500);
  });

  it("lets the protocol's reader name the code and the message, and upgrades a context-length 400", () => {
    const reader = (): ErrorBody => ({ code: 'content_filter', upstreamCode: 'flagged', upstreamMessage: 'from reader' });
    expect(mapHttpError('p', reader, 400, {}, JSON.stringify({ message: 'generic' }))).toMatchObject({
      code: 'content_filter',
      upstreamCode: 'flagged',
      upstreamMessage: 'from reader',
    });
    expect(mapHttpError('p', silent, 400, {}, JSON.stringify({ message: 'prompt is too long: 300000 tokens' }))).toMatchObject({
      code: 'context_length',
      retryable: true,
    });
  });

  it('prefers a Retry-After header to a delay carried in the body', () => {
    const reader = (): ErrorBody => ({ retryAfterMs: 7000 });
    expect(mapHttpError('p', reader, 429, {}, '{}').retryAfterMs).toBe(7000);
    expect(mapHttpError('p', reader, 429, { 'retry-after': '1' }, '{}').retryAfterMs).toBe(1000);
  });

  it('gives every protocol the same answer for what is not protocol-specific', () => {
    for (const adapter of [openaiAdapter, anthropicAdapter, geminiAdapter]) {
      expect(adapter.mapError(503, { 'retry-after': '2' }, '<html>upstream connect error</html>')).toMatchObject({
        code: 'overloaded',
        status: 503,
        retryable: true,
        retryAfterMs: 2000,
        provider: adapter.protocol,
        upstreamMessage: '<html>upstream connect error</html>',
      });
      // A gateway in front of the provider answering in its own JSON shape.
      expect(adapter.mapError(429, {}, JSON.stringify({ message: 'proxy quota exceeded' }))).toMatchObject({
        code: 'rate_limited',
        retryable: true,
        upstreamMessage: 'proxy quota exceeded',
      });
    }
  });
});

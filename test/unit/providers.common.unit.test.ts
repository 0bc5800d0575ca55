import { describe, expect, it } from 'vitest';
import { anthropicAdapter } from '../../src/gateway/providers/anthropic/anthropicAdapter.js';
import {
  codeForStatus,
  guessImageType,
  isContextLengthMessage,
  parseDataUrl,
  parseRetryAfterMs,
  reasoningBudget,
} from '../../src/gateway/providers/common.js';
import { geminiAdapter } from '../../src/gateway/providers/gemini/geminiAdapter.js';
import { openaiAdapter } from '../../src/gateway/providers/openai/openaiAdapter.js';

describe('shared adapter helpers', () => {
  it('reads Retry-After as seconds, as milliseconds (retry-after-ms) or as an HTTP-date', () => {
    const now = Date.parse('2025-03-01T12:00:00Z');
    expect(parseRetryAfterMs({ 'Retry-After': '1.5' })).toBe(1500);
    expect(parseRetryAfterMs({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
    expect(parseRetryAfterMs({ 'retry-after': 'Sat, 01 Mar 2025 12:00:30 GMT' }, now)).toBe(30_000);
    expect(parseRetryAfterMs({ 'retry-after': 'Sat, 01 Mar 2025 11:59:00 GMT' }, now)).toBe(0);
    expect(parseRetryAfterMs({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers({ 'Retry-After': '4' }))).toBe(4000);
    expect(parseRetryAfterMs({ 'retry-after': ['7'] })).toBe(7000);
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

  it('parses data URLs and guesses image types from http URLs', () => {
    expect(parseDataUrl('data:image/jpeg;base64,/9j/4AAQ')).toEqual({ mediaType: 'image/jpeg', data: '/9j/4AAQ' });
    expect(parseDataUrl('data:image/png;name=x.png;base64,AAAA')).toEqual({ mediaType: 'image/png', data: 'AAAA' });
    expect(parseDataUrl('https://example.com/a.png')).toBeUndefined();
    expect(guessImageType('https://x/y/photo.JPG')).toBe('image/jpeg');
    expect(guessImageType('https://x/y/img.webp#frag')).toBe('image/webp');
    expect(guessImageType('https://x/render')).toBe('image/jpeg');
  });

  it("turns OpenRouter's reasoning settings into a thinking budget", () => {
    expect(reasoningBudget(undefined, 1000)).toBeUndefined();
    expect(reasoningBudget({ effort: 'low' }, 1000)).toBe(200);
    expect(reasoningBudget({ enabled: true }, 1000)).toBe(500);
    expect(reasoningBudget({ max_tokens: 3000 }, 1000)).toBe(3000);
    expect(reasoningBudget({ effort: 'none' }, 1000)).toBeUndefined();
  });

  it('every adapter names its protocol and the parameters it maps', () => {
    for (const adapter of [openaiAdapter, anthropicAdapter, geminiAdapter]) {
      expect(adapter.supportedParameters).toEqual(expect.arrayContaining(['max_tokens', 'temperature', 'tools', 'tool_choice', 'response_format', 'stop']));
    }
    expect([openaiAdapter.protocol, anthropicAdapter.protocol, geminiAdapter.protocol]).toEqual(['openai', 'anthropic', 'gemini']);
    expect(anthropicAdapter.supportedParameters).not.toContain('seed');
    expect(geminiAdapter.supportedParameters).toContain('seed');
  });
});

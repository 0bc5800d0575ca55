import { describe, expect, it } from 'vitest';
import { anthropicAdapter } from '../../../src/gateway/providers/anthropic/index.js';
import { guessImageType, parseDataUrl, reasoningBudget } from '../../../src/gateway/providers/common.js';
import { geminiAdapter } from '../../../src/gateway/providers/gemini/index.js';
import { openaiAdapter } from '../../../src/gateway/providers/openai/index.js';

describe('shared adapter helpers', () => {
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

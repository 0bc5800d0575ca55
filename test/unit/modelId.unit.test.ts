import { describe, expect, it } from 'vitest';
import { parseModelId, resolveVersionAlias, versionSpellings } from '../../src/modules/catalog/modelId.js';

describe('a chain of variant suffixes', () => {
  it('refuses an unknown variant by name, whatever text it is', () => {
    expect(parseModelId('a/b:constructor').problem).toBe('The :constructor variant of a/b is not supported (supported: :free, :nitro, :floor, :exacto, :thinking, :extended)');
    expect(parseModelId('a/b:__proto__').problem).toContain('The :__proto__ variant of a/b is not supported (supported:');
  });
});

describe('another spelling of a model id’s version', () => {
  it('flips each separator between two digits in the slug, alone or with the others', () => {
    expect(versionSpellings('anthropic/claude-3-5-sonnet')).toEqual(['anthropic/claude-3.5-sonnet']);
    expect(versionSpellings('anthropic/claude-3.5-sonnet')).toEqual(['anthropic/claude-3-5-sonnet']);
    expect(versionSpellings('meta/llama-3-1-8b')).toEqual(['meta/llama-3.1-8b', 'meta/llama-3-1.8b', 'meta/llama-3.1.8b']);
    // Not between two digits, or in the author: left alone.
    expect(versionSpellings('openai/gpt-4o')).toEqual([]);
    expect(versionSpellings('01-2/x-a.b')).toEqual([]);
    // More separators than anyone writes in a version: no guessing.
    expect(versionSpellings('a/v1-2-3-4-5-6')).toEqual([]);
  });

  it('resolves only when exactly one spelling exists', () => {
    const catalog = (...ids: string[]) => (id: string) => ids.includes(id);
    expect(resolveVersionAlias('meta/llama-3-1-8b', catalog('meta/llama-3.1-8b'))).toBe('meta/llama-3.1-8b');
    expect(resolveVersionAlias('meta/llama-3-1-8b', catalog('meta/llama-3.1-8b', 'meta/llama-3-1.8b'))).toBeNull();
    expect(resolveVersionAlias('meta/llama-3-1-8b', catalog())).toBeNull();
  });
});

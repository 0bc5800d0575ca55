import { describe, expect, it } from 'vitest';
import { parseModelId, resolveModelId, resolveVersionAlias, retiredRefusal, versionSpellings } from '../../src/modules/catalog/modelId.js';

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

describe("an admin's alias", () => {
  const catalog = (aliases: Record<string, string>, models: string[]) => ({
    model: (id: string) => (models.includes(id) ? ({} as never) : undefined),
    endpoints: () => [],
    alias: (alias: string) => aliases[alias],
  });

  it('names the model it is set to, variants after it; never another spelling, and an unset one names nothing', () => {
    const c = catalog({ '~openai/gpt-latest': 'openai/gpt-4.1' }, ['openai/gpt-4.1', 'openai/gpt-4-1']);
    expect(resolveModelId(c, '~openai/gpt-latest:free:nitro')).toMatchObject({ base: '~openai/gpt-latest', alias: '~openai/gpt-latest', modelId: 'openai/gpt-4.1', free: true, sort: 'throughput' });
    expect(resolveModelId(c, 'openai/gpt-4.1')).toMatchObject({ alias: null, modelId: 'openai/gpt-4.1' });
    expect(resolveModelId(c, '~openai/gpt-4-1')).toMatchObject({ alias: '~openai/gpt-4-1', modelId: null });
  });

  it('is named with its model when that model is retired', () => {
    expect(retiredRefusal('~openai/gpt-latest:nitro', { alias: '~openai/gpt-latest', modelId: 'openai/gpt-4.1' })).toBe('~openai/gpt-latest:nitro is retired (the alias ~openai/gpt-latest names openai/gpt-4.1)');
    expect(retiredRefusal('openai/gpt-4.1', { alias: null, modelId: 'openai/gpt-4.1' })).toBe('openai/gpt-4.1 is retired');
  });
});

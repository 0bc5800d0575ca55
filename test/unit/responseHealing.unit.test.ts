import { describe, expect, it } from 'vitest';
import { healJson, MAX_HEALED_CHARS } from '../../src/gateway/responseHealing.js';
import { parseChatBody } from '../../src/gateway/chatRequest.js';

describe('response healing', () => {
  it.each([
    ['a missing closing bracket', '{"name": "Alice", "age": 30', { name: 'Alice', age: 30 }],
    ['a markdown fence', '```json\n{"name": "Bob"}\n```', { name: 'Bob' }],
    ['a fence without a language, with prose around it', 'Result:\n```\n[1, 2, 3,]\n```\nDone.', [1, 2, 3]],
    ['prose before the JSON', 'Here is the data you requested:\n{"name": "Charlie", "age": 25}', { name: 'Charlie', age: 25 }],
    ['prose after it', '{"a": 1} I hope this helps!', { a: 1 }],
    ['a trailing comma', '{"name": "David", "age": 35,}', { name: 'David', age: 35 }],
    ['unquoted keys', '{name: "Eve", age: 40}', { name: 'Eve', age: 40 }],
    ['single quotes', "{'city': 'Oslo'}", { city: 'Oslo' }],
    ['a truncated end after prose', 'Sure! {"items": [1, 2', { items: [1, 2] }],
  ])('repairs %s', (_what, text, value) => {
    const fixed = healJson(text);
    expect(fixed).not.toBeNull();
    expect(JSON.parse(fixed!)).toEqual(value);
  });

  it.each([
    ['JSON that parses', '{"ok": true}'],
    ['a JSON string that parses', '"just a string"'],
    ['prose without an object or array', 'I cannot answer that.'],
    ['two objects side by side', '{"a": 1} and {"b": 2}'],
    ['an empty answer', ''],
    ['an answer longer than MAX_HEALED_CHARS', `{"a": [${'1,'.repeat(MAX_HEALED_CHARS / 2)}`],
  ])('leaves %s as it is', (_what, text) => {
    expect(healJson(text)).toBeNull();
  });

  it('is asked for with the response-healing plugin, unless it is disabled', () => {
    const body = { model: 'a/b', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_object' } };
    expect(parseChatBody(body).responseHealing).toBe(false);
    expect(parseChatBody({ ...body, plugins: [{ id: 'response-healing' }] }).responseHealing).toBe(true);
    expect(parseChatBody({ ...body, plugins: [{ id: 'response-healing', enabled: false }] }).responseHealing).toBe(false);
  });
});

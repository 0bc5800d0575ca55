import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

/** The README's examples are the front door: run them as written against a started server. */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const graphqlBlock = /```graphql\n([\s\S]*?)```/.exec(readme)![1]!;
const operation = (name: string) => {
  const start = graphqlBlock.search(new RegExp(`^(query|mutation|subscription) ${name}\\b`, 'm'));
  const rest = graphqlBlock.slice(start);
  const end = rest.slice(1).search(/^(query|mutation|subscription|#)/m);
  return end === -1 ? rest : rest.slice(0, end + 1);
};

let h: Harness;
let key: string;
let accountId: string;
beforeAll(async () => {
  h = await startHarness();
  const { body } = await h.gql(`mutation { openAccount(name: "Ada", email: "ada@example.com") { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`);
  key = body.data.openAccount.initialKey.secret;
  accountId = body.data.openAccount.account.id;
  await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 5000000000, reason: "welcome") { __typename } }`, { id: accountId });
});
afterAll(async () => {
  await h.stop();
});

describe('README examples', () => {
  it('the GraphQL query, key and prompt examples work as written', async () => {
    const me = await h.gql(operation('Me'), {}, key);
    expect(me.body.errors).toBeUndefined();
    expect(me.body.data.balance.availableUsd).toBe('5.00');
    const keys = await h.gql(operation('Keys'), {}, key);
    expect(keys.body.data.createApiKey.secret).toMatch(/^sk-sy-v1-/);
    const prompt = await h.gql(operation('Prompt'), {}, key);
    expect(prompt.body.errors).toBeUndefined();
    expect(prompt.body.data.sendPrompt.completion.length).toBeGreaterThan(0);
    expect(prompt.body.data.sendPrompt.cost).toBeGreaterThan(0);
  });

  it('the openai SDK example streams an answer from the demo model', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: key, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'switchyard/demo', stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(5);
  });
});

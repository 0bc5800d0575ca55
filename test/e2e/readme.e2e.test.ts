import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { createClient } from 'graphql-ws';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHarness, type Harness } from '../support/appHarness.js';
import { startFakeProvider } from '../support/fakeProviders.js';
import { eventually } from '../support/eventually.js';

/** The README's examples are the front door: run them as written against a started server. */
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const graphqlBlock = /```graphql\n([\s\S]*?)```/.exec(readme)![1]!;
const operation = (name: string) => {
  const start = graphqlBlock.search(new RegExp(`^(query|mutation|subscription) ${name}\\b`, 'm'));
  const rest = graphqlBlock.slice(start);
  const end = rest.slice(1).search(/^(query|mutation|subscription|#)/m);
  return end === -1 ? rest : rest.slice(0, end + 1);
};

/** A `gql $WHO '<payload>'` line of README's bash blocks, by what it contains: the JSON payload it sends. */
const gqlLine = (who: string, containing: string): { query: string } => {
  const line = readme.split('\n').find((l) => l.startsWith(`gql ${who} '`) && l.includes(containing))!;
  return JSON.parse(line.slice(line.indexOf("'") + 1, line.lastIndexOf("'"))) as { query: string };
};
/** "Use it": an account and its first key, as the README opens it. */
const openAdaLine = gqlLine('$ADMIN', 'openAccount(name: \\"Ada\\"');

let h: Harness;
let key: string;
let accountId: string;
beforeAll(async () => {
  // SELF_SIGNUP on, for the signup test below; the admin's examples work alike either way.
  h = await startHarness({ SELF_SIGNUP: 'true' });
  const { body } = await h.gql(openAdaLine.query);
  expect(body.errors).toBeUndefined();
  key = body.data.openAccount.initialKey.secret;
  accountId = body.data.openAccount.account.id;
  await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 5000000000, reason: "welcome") { __typename } }`, { id: accountId });
});
afterAll(async () => {
  await h.stop();
});

describe('README examples', () => {
  it("with SELF_SIGNUP, the \"Use it\" openAccount sent without a key answers the new account's id and first key (shown only there)", async () => {
    const { body } = await h.gql(openAdaLine.query, {}, null);
    expect(body.errors).toBeUndefined();
    const opened = body.data.openAccount as { account: { id: string }; initialKey: { secret: string } };
    expect(opened.account.id).toMatch(/^acc_/);
    expect(opened.initialKey.secret).toMatch(/^sk-sy-v1-/);
    expect((await h.gql('{ me { id roles plan } }', {}, opened.initialKey.secret)).body.data.me).toEqual({ id: opened.account.id, roles: ['USER'], plan: 'free' });
  });

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

  it('startGeneration answers its generationId, and the Tokens subscription with that id streams it to DONE with its cost', async () => {
    const started = await h.gql(operation('Start'), {}, key);
    expect(started.body.errors).toBeUndefined();
    const generationId = started.body.data.startGeneration.generationId as string;
    expect(generationId).toMatch(/^gen-/);
    const tokens = operation('Tokens').replace('"gen-…"', JSON.stringify(generationId));
    const client = createClient({ url: `${h.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` } });
    const events: { type: string; content: string | null; cost: number | null }[] = [];
    try {
      for await (const event of client.iterate({ query: tokens })) {
        expect(event.errors).toBeUndefined();
        events.push((event.data as { generation: (typeof events)[number] }).generation);
      }
    } finally {
      await client.dispose();
    }
    expect(events.filter((e) => e.type === 'TOKEN').length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ type: 'DONE', cost: expect.any(Number) });
    expect(events.at(-1)!.cost).toBeGreaterThan(0);
  });

  it('the provider walkthrough runs as written: registerProvider, publishEndpoint at nano-dollars per token, then a call charged at them', async () => {
    const section = readme.slice(readme.indexOf('### Serve your own models (provider role)'), readme.indexOf('## Console'));
    const ops = /```graphql\n([\s\S]*?)```/.exec(section)![1]!;
    const op = (name: string) => {
      const rest = ops.slice(ops.search(new RegExp(`^mutation ${name}\\b`, 'm')));
      const end = rest.slice(1).search(/^mutation/m);
      return end === -1 ? rest : rest.slice(0, end + 1);
    };
    const upstream = await startFakeProvider('openai', { apiKey: 'sk-acme-test' });
    try {
      const opened = (await h.gql(`mutation { openAccount(name: "Acme", roles: [PROVIDER]) { ... on OpenAccountPayload { initialKey { secret } } } }`)).body.data.openAccount;
      const provider = opened.initialKey.secret as string;
      // The README's operations, with the fake upstream's address and key in place of Acme's.
      const register = op('RegisterProvider').replace('https://api.acme.example/v1', upstream.baseUrl).replace('sk-acme-…', 'sk-acme-test');
      const registered = await h.gql(register, {}, provider);
      expect(registered.body.errors).toBeUndefined();
      expect(registered.body.data.registerProvider).toMatchObject({ slug: 'acme', name: 'Acme AI', protocol: 'OPENAI', available: true });
      const published = await h.gql(op('PublishEndpoint'), {}, provider);
      expect(published.body.errors).toBeUndefined();
      expect(published.body.data.publishEndpoint).toMatchObject({ model: 'acme/chat-small', status: 'active', prices: { prompt: 150, completion: 600 } });
      // "$0.15 per million prompt tokens is 150": the README's arithmetic.
      expect(section).toMatch(/\$0\.15 per million prompt tokens is `150`, \$0\.60 per million\s+completion tokens `600`/);

      const chat = await fetch(`${h.url}/api/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'acme/chat-small', messages: [{ role: 'user', content: 'Say hello' }] }),
      });
      expect(chat.status).toBe(200);
      const answer = (await chat.json()) as { model: string; usage: { prompt_tokens: number; completion_tokens: number; cost: number } };
      expect(answer.model).toBe('acme/chat-small');
      expect((upstream.requests.at(-1)!.body as { model: string }).model).toBe('chat-small');
      // cost is USD: tokens × nano-dollars per token / 1e9.
      expect(answer.usage.cost).toBeCloseTo((answer.usage.prompt_tokens * 150 + answer.usage.completion_tokens * 600) / 1e9, 12);
    } finally {
      await upstream.close();
    }
  });

  it('the input & output logging lines work as written, in their order: the call made after turning it on has its content', async () => {
    // The REST block's lines from the priced call to the content line, run in the order written.
    const block = /```bash\n(# A streamed answer[\s\S]*?)```/.exec(readme)![1]!.split('\n');
    const from = block.findIndex((l) => l.startsWith('# A priced model'));
    const to = block.findIndex((l) => l.includes('/api/v1/generation/content?id='));
    expect(from).toBeGreaterThan(-1);
    expect(to).toBeGreaterThan(from);
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const ids: { id: string; at: number }[] = [];
    let loggingAt = -1;
    for (let i = from; i <= to; i++) {
      const line = block[i]!;
      if (line.startsWith('curl -si localhost:4000/api/v1/chat/completions')) {
        const body = /^\s+-d '(.*)'$/.exec(block[i + 1]!)![1]!;
        const chat = await fetch(`${h.url}/api/v1/chat/completions`, { method: 'POST', headers, body });
        expect(chat.status).toBe(200);
        ids.push({ id: chat.headers.get('x-generation-id')!, at: i });
      } else if (line.startsWith('gql $KEY') && line.includes('setContentLogging')) {
        const res = await fetch(`${h.url}/graphql`, { method: 'POST', headers, body: line.slice(line.indexOf("'") + 1, line.lastIndexOf("'")) });
        expect(((await res.json()) as { data: { setContentLogging: { contentLogging: boolean } } }).data.setContentLogging.contentLogging).toBe(true);
        loggingAt = i;
      }
    }
    expect(loggingAt).toBeGreaterThan(-1);
    // The content line asks for the last call's id; a call made before logging was on has none, as README says.
    const path = /curl -s "localhost:4000(\/api\/v1\/generation\/content\?id=)gen-…"/.exec(block[to]!)![1]!;
    const last = ids.at(-1)!;
    expect(last.at).toBeGreaterThan(loggingAt);
    const content = await fetch(`${h.url}${path}${last.id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(content.status).toBe(200);
    const sent = JSON.parse(/^\s+-d '(.*)'$/.exec(block[last.at + 1]!)![1]!) as { messages: unknown[] };
    expect(((await content.json()) as { data: { input: { messages: unknown[] } } }).data.input.messages).toEqual(sent.messages);
    const before = ids.find((call) => call.at < loggingAt)!;
    expect((await fetch(`${h.url}${path}${before.id}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
  });

  it('the openai SDK example streams an answer from the demo model', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: key, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'switchyard/demo', stream: true, messages: [{ role: 'user', content: 'Say hello' }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(5);
  });

  it("the Anthropic SDK example answers from the demo model at README's baseURL (…/api: the SDK appends /v1/messages)", async () => {
    const block = /### The official `@anthropic-ai\/sdk`[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has an @anthropic-ai/sdk example').toBeDefined();
    const baseURL = /new Anthropic\(\{ baseURL: '([^']+)'/.exec(block!)![1]!;
    expect(baseURL).toBe('http://localhost:4000/api');
    const model = /model: '([^']+)'/.exec(block!)![1]!;
    const client = new Anthropic({ baseURL: baseURL.replace('http://localhost:4000', h.url), apiKey: key, maxRetries: 0 });
    const message = await client.messages.create({ model, max_tokens: 200, messages: [{ role: 'user', content: 'Say hello' }] });
    expect(message.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('Say hello') });
  });

  it("the workflow walkthrough runs as written: the brief's example answers over its webhook", async () => {
    const section = readme.slice(readme.indexOf("### The brief's example, step by step"), readme.indexOf('### What survives a crash'));
    const definition = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as unknown;
    const ops = /```graphql\n([\s\S]*?)```/.exec(section)![1]!;
    const op = (name: string) => {
      const start = ops.search(new RegExp(`^(query|mutation) ${name}\\b`, 'm'));
      const rest = ops.slice(start);
      const end = rest.slice(1).search(/^(query|mutation)/m);
      return end === -1 ? rest : rest.slice(0, end + 1);
    };
    const bash = /```bash\n([\s\S]*?)```/.exec(section)![1]!;
    // Step 1 as written: the admin opens the designer's account (the payload is the JSON between the quotes).
    const open = JSON.parse(/^gql \$ADMIN '(.*)'$/m.exec(bash)![1]!) as { query: string };
    const opened = (await h.gql(open.query)).body.data.openAccount;
    const designer = opened.initialKey.secret as string;
    await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "workflows") { __typename } }`, { id: opened.account.id });

    const created = (await h.gql(op('CreateWorkflow'), { definition }, designer)).body.data.createWorkflow;
    expect(created).toMatchObject({ id: expect.stringMatching(/^wf_/), version: 1, webhookUrl: expect.stringContaining(`/api/v1/workflows/${created.id}/webhook`) });
    const secret = (await h.gql(op('RotateWebhookSecret'), { id: created.id }, designer)).body.data.rotateWebhookSecret.secret as string;
    expect(secret).toMatch(/^whsec_/);
    expect((await h.gql(op('EnableWorkflow'), { id: created.id }, designer)).body.data.enableWorkflow).toMatchObject({ status: 'ENABLED' });

    // Step 5's curl: its header and body, sent as written.
    const curl = /^curl -s localhost:4000\/api\/v1\/workflows\/\$WF\/webhook -H "([^:]+): \$SECRET" \\\n\s+-H '([^']+)' -d '([^']+)'$/m.exec(bash)!;
    const [, header, contentType, body] = curl;
    const [typeName, typeValue] = contentType!.split(': ');
    const res = await fetch(`${h.url}/api/v1/workflows/${created.id}/webhook`, { method: 'POST', headers: { [header!]: secret, [typeName!]: typeValue! }, body });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { answer: string; model: string };
    expect(answer.answer.length).toBeGreaterThan(0);
    expect(answer.model).toBe('switchyard/demo');
    const run = (await h.gql(op('WorkflowRun'), { id: res.headers.get('x-switchyard-run-id') }, designer)).body.data.workflowRun;
    expect(run).toMatchObject({ status: 'SUCCEEDED', output: { status: 200, body: answer } });
    expect(run.steps.map((step: { key: string }) => step.key)).toEqual(['pick', 'answer', 'reply']);
  });
  it('the "store every answer in a table" workflow runs as written: an entry of questions is answered and stored in answers', async () => {
    const section = readme.slice(readme.indexOf('### Tables, schedules, events'), readme.indexOf('## Credits and billing'));
    const definition = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as { name: string };
    expect(definition.name).toBe('Answer and store');
    const ops = /```graphql\n([\s\S]*?)```/.exec(section)![1]!;
    const op = (name: string) => ops.split('\n').find((line) => new RegExp(`^(query|mutation) ${name}\\b`).test(line))!;
    const opened = (await h.gql(`mutation { openAccount(name: "Dee", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).body.data.openAccount;
    const designer = opened.initialKey.secret as string;
    await h.gql(`mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "workflows") { __typename } }`, { id: opened.account.id });
    for (const name of ['questions', 'answers']) expect((await h.gql(op('CreateTable'), { name }, designer)).body.data.createTable).toMatchObject({ name });
    const created = (await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id status } ... on DomainError { code message } } }`, { d: definition }, designer)).body.data.createWorkflow;
    expect(created).toMatchObject({ id: expect.stringMatching(/^wf_/), status: 'ENABLED' });

    const question = (await h.gql(op('InsertEntry'), { table: 'questions', entry: { text: 'What is a switchyard?' } }, designer)).body.data.insertEntry;
    expect(question.id).toEqual(expect.any(String));
    let answers: { node: { data: { question: string; answer: string; questionId: string } } }[] = [];
    for (const deadline = Date.now() + 10_000; answers.length === 0 && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 50))) {
      answers = (await h.gql(op('Answers'), {}, designer)).body.data.entries.edges;
    }
    expect(answers).toHaveLength(1);
    expect(answers[0]!.node.data).toMatchObject({ question: 'What is a switchyard?', questionId: question.id });
    expect(answers[0]!.node.data.answer.length).toBeGreaterThan(0);
  });

  it('the error workflow runs as written: the failures table created first, a failed run of a watched workflow is stored in it', async () => {
    const section = readme.slice(readme.indexOf('**An error workflow**'), readme.indexOf('## Credits and billing'));
    const definition = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as { name: string; steps: { input: { table: string } }[] };
    expect(definition.name).toBe('Record failures');
    const table = definition.steps[0]!.input.table;
    expect(section).toContain(`{"name": "${table}"}`);
    const tables = readme.slice(readme.indexOf('### Tables, schedules, events'), readme.indexOf('## Credits and billing'));
    const createTable = /```graphql\n([\s\S]*?)```/.exec(tables)![1]!.split('\n').find((line) => line.startsWith('mutation CreateTable'))!;
    const opened = (await h.gql(`mutation { openAccount(name: "Fay", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`)).body.data.openAccount;
    const designer = opened.initialKey.secret as string;
    const save = async (mutation: string, variables: Record<string, unknown>) => (await h.gql(mutation, variables, designer)).body.data;

    // In the order README gives: the table, the error workflow, then the watched workflow pointed at it.
    expect((await save(createTable, { name: table })).createTable).toMatchObject({ name: table });
    const CREATE = `mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ... on DomainError { code message details } } }`;
    const handler = (await save(CREATE, { d: definition })).createWorkflow.id as string;
    expect(handler).toMatch(/^wf_/);
    const watched = { name: 'Flaky', trigger: { type: 'manual' }, steps: [{ key: 'boom', type: 'action.transform', input: { expression: '=$error("it broke")' } }] };
    const flaky = (await save(CREATE, { d: watched })).createWorkflow.id as string;
    const updated = await save(`mutation($id: ID!, $d: JSON!) { updateWorkflow(id: $id, definition: $d) { ... on Workflow { version } ... on DomainError { code message } } }`, {
      id: flaky,
      d: { ...watched, settings: { errorWorkflow: handler } },
    });
    expect(updated.updateWorkflow).toEqual({ version: 2 });
    const run = (await save(`mutation($id: ID!) { runWorkflow(id: $id, input: {}) { ... on WorkflowRun { id } } }`, { id: flaky })).runWorkflow.id as string;

    const handled = await eventually('the error workflow run to end', async () => {
      const runs = (await save(`query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { status depth } } } }`, { id: handler })).workflowRuns.edges as { node: { status: string } }[];
      return runs.length > 0 && runs.every((edge) => ['SUCCEEDED', 'FAILED'].includes(edge.node.status)) && runs.map((edge) => edge.node);
    });
    expect(handled).toEqual([{ status: 'SUCCEEDED', depth: 1 }]);
    const failures = (await save(`query($t: String!) { entries(table: $t) { edges { node { data } } } }`, { t: table })).entries.edges;
    expect(failures).toHaveLength(1);
    expect(failures[0]!.node.data).toMatchObject({ workflow: 'Flaky', run, step: 'boom', error: expect.stringContaining('it broke') });
  });
});

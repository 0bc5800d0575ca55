/**
 * An OpenAI-compatible upstream that holds its answers until the test releases them, for a call that must be in flight
 * when something happens (a stop, its grace period ending), and the provider that serves it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';

/** The API key the held provider is registered with. */
export const HELD_UPSTREAM_KEY = 'sk-held-upstream-0123456789';
/** A chat answer's whole text. */
export const HELD_ANSWER = 'one two three four five six';

const CREATED = 1_700_000_000;
const CHAT_USAGE = { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 };
const EMBEDDINGS_USAGE = { prompt_tokens: 7, total_tokens: 7 };

/**
 * Holds every answer until `release()`: a JSON chat call gets nothing until then, a chat stream gets its first two
 * tokens ("one two") at once and the rest after, an embeddings call (a path ending in /embeddings) gets its vectors
 * after; once released, every call is answered whole. `received` counts the calls that reached it; `close()` releases
 * what it holds and closes.
 */
export const heldUpstream = async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let received = 0;

  const embeddings = async (res: ServerResponse, body: { input: string[] }) => {
    await released;
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', model: 'held', data: body.input.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })), usage: EMBEDDINGS_USAGE }));
  };

  const chat = async (res: ServerResponse, body: { stream?: boolean }) => {
    if (!body.stream) {
      await released;
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'up-1', object: 'chat.completion', created: CREATED, model: 'held', choices: [{ index: 0, message: { role: 'assistant', content: HELD_ANSWER }, finish_reason: 'stop' }], usage: CHAT_USAGE }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const event = (data: Record<string, unknown>) => res.write(`data: ${JSON.stringify({ id: 'up-1', object: 'chat.completion.chunk', created: CREATED, model: 'held', ...data })}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => event({ choices: [{ index: 0, delta, finish_reason: finish }] });
    chunk({ role: 'assistant', content: 'one' });
    chunk({ content: ' two' });
    await released;
    if (res.destroyed) return;
    for (const word of HELD_ANSWER.split(' ').slice(2)) chunk({ content: ` ${word}` });
    chunk({}, 'stop');
    event({ choices: [], usage: CHAT_USAGE });
    res.end('data: [DONE]\n\n');
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as { stream?: boolean; input: string[] };
      received += 1;
      void (req.url?.endsWith('/embeddings') ? embeddings(res, body) : chat(res, body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    received: () => received,
    release,
    close: () => {
      release();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

/**
 * Register the upstream at `baseUrl` as provider `held` serving `held/model` (1,000 and 2,000 n$ a prompt and a
 * completion token), and with `embeddings` also `openai/text-embedding-3-small` (1,000 n$ a token), through `gql` (as
 * an admin; it answers the result's data).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
export const publishHeldModels = async (gql: (query: string, variables?: Record<string, unknown>) => Promise<any>, baseUrl: string, options: { embeddings?: boolean } = {}) => {
  const registered = await gql(
    `mutation ($url: String!, $key: String) { registerProvider(slug: "held", name: "Held", protocol: OPENAI, baseUrl: $url, apiKey: $key) { ... on Provider { slug } ... on DomainError { code message } } }`,
    { url: baseUrl, key: HELD_UPSTREAM_KEY },
  );
  expect(registered.registerProvider).toEqual({ slug: 'held' });
  const published = await gql(
    `mutation { publishEndpoint(provider: "held", model: "held/model", upstreamModel: "held", prices: { prompt: 1000, completion: 2000 }, contextLength: 16000, maxOutput: 1000) { ... on Endpoint { id } ... on DomainError { code message } } }`,
  );
  expect(published.publishEndpoint).toEqual({ id: 'held/model@held' });
  if (!options.embeddings) return;
  const embeddings = await gql(
    `mutation { publishEndpoint(provider: "held", model: "openai/text-embedding-3-small", upstreamModel: "held", prices: { prompt: 1000, completion: 0 }, contextLength: 8000, maxOutput: 1) { ... on Endpoint { id } ... on DomainError { code message } } }`,
  );
  expect(embeddings.publishEndpoint).toEqual({ id: 'openai/text-embedding-3-small@held' });
};

/**
 * Chat request parse micro-benchmark: `parseChatBody` on three bodies (a small request, a request with tools, a long
 * conversation), each already JSON-parsed, as the REST route hands it over.
 *
 *   node --import tsx bench/chatRequest.bench.ts                       # src/gateway/chatRequest.ts
 *   node --import tsx bench/chatRequest.bench.ts --impl a.ts --impl b.ts # compare implementations in one process
 *
 * Each `--impl` is a module exporting `parseChatBody`. Rounds are interleaved across implementations and bodies so
 * drift on a shared machine hits all of them alike; the table shows the median round (µs per parse and parses/s).
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { impl: { type: 'string', multiple: true }, rounds: { type: 'string', default: '15' }, 'round-ms': { type: 'string', default: '200' } },
});
const impls = values.impl ?? ['src/gateway/chatRequest.ts'];
const rounds = Number(values.rounds);
const roundMs = Number(values['round-ms']);

type Parse = (body: unknown) => unknown;
const load = async (path: string): Promise<Parse> => {
  const mod: unknown = await import(pathToFileURL(resolve(path)).href);
  if (typeof mod !== 'object' || mod === null || !('parseChatBody' in mod) || typeof mod.parseChatBody !== 'function') throw new Error(`${path} exports no parseChatBody`);
  const parse = mod.parseChatBody;
  return (body) => parse(body);
};

const words = (n: number, seed: number) => Array.from({ length: n }, (_, i) => `word${(i * 7 + seed) % 97}`).join(' ');

const small = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'What is the capital of Portugal?' }] };

const tool = (name: string) => ({
  type: 'function',
  function: {
    name,
    description: `Look up ${name} for a place and a date range.`,
    parameters: {
      type: 'object',
      properties: { place: { type: 'string', description: 'City name' }, from: { type: 'string', format: 'date' }, to: { type: 'string', format: 'date' }, units: { type: 'string', enum: ['metric', 'imperial'] } },
      required: ['place'],
    },
  },
});
const withTools = {
  model: 'anthropic/claude-sonnet-4',
  models: ['openai/gpt-4o'],
  messages: [
    { role: 'system', content: 'You are a travel assistant. Use the tools when they help.' },
    { role: 'user', content: [{ type: 'text', text: 'Plan three days in Lisbon next week.' }, { type: 'image_url', image_url: { url: 'https://example.com/map.png' } }] },
  ],
  tools: ['weather', 'flights', 'hotels', 'events'].map(tool),
  tool_choice: 'auto',
  temperature: 0.3,
  max_tokens: 1024,
  stream: true,
  provider: { order: ['anthropic', 'openai'], sort: 'price', max_price: { prompt: 5, completion: 20 } },
  response_format: { type: 'json_object' },
};

const long = {
  model: 'openai/gpt-4o',
  messages: [
    { role: 'system', content: words(60, 1) },
    ...Array.from({ length: 50 }, (_, i) => [
      { role: 'user', content: words(40, i) },
      i % 5 === 4
        ? { role: 'assistant', content: null, tool_calls: [{ id: `call_${i}`, type: 'function', function: { name: 'weather', arguments: '{"place":"Lisbon"}' } }] }
        : { role: 'assistant', content: words(80, i + 3) },
      ...(i % 5 === 4 ? [{ role: 'tool', tool_call_id: `call_${i}`, content: '{"temperature":21}' }] : []),
    ]).flat(),
  ],
  max_tokens: 500,
};

const BODIES = { 'small (1 message)': small, 'tools (2 messages, 4 tools, provider)': withTools, [`long conversation (${long.messages.length} messages)`]: long };

const round = (parse: Parse, body: unknown): number => {
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(roundMs) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 100; i++) parse(body);
    n += 100;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1000 / n;
};

const parsers = await Promise.all(impls.map(async (path) => ({ path, parse: await load(path) })));
const samples = new Map<string, number[]>();
for (const { parse } of parsers) for (const body of Object.values(BODIES)) for (let i = 0; i < 2_000; i++) parse(body); // warm up the JIT
for (let r = 0; r < rounds; r++) {
  for (const { path, parse } of parsers) {
    for (const [name, body] of Object.entries(BODIES)) {
      const key = `${name}\u0000${path}`;
      samples.set(key, [...(samples.get(key) ?? []), round(parse, body)]);
    }
  }
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}, ${rounds} rounds of ${roundMs} ms, median round\n`);
console.log('| Body | Implementation | µs per parse | parses/s |');
console.log('|---|---|---:|---:|');
for (const name of Object.keys(BODIES)) {
  for (const { path } of parsers) {
    const us = median(samples.get(`${name}\u0000${path}`)!);
    console.log(`| ${name} | ${path} | ${us.toFixed(2)} | ${Math.round(1e6 / us).toLocaleString('en-US')} |`);
  }
}

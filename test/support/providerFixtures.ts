import { readFileSync } from 'node:fs';
import type { Protocol, StreamOutcome, StreamParser } from '../../src/gateway/providers/adapter.js';
import { createSseDecoder } from '../../src/gateway/sse.js';
import type { ChatChunk } from '../../src/gateway/types.js';

const root = new URL('../fixtures/providers/', import.meta.url);

export function fixtureText(protocol: Protocol, file: string): string {
  return readFileSync(new URL(`${protocol}/${file}`, root), 'utf8');
}

export function fixtureJson(protocol: Protocol, name: string): unknown {
  return JSON.parse(fixtureText(protocol, `${name}.json`)) as unknown;
}

export interface Replay {
  chunks: ChatChunk[];
  outcome: StreamOutcome;
  error?: unknown;
  comments: string[];
}

/** Feeds a recorded SSE body to a stream parser, `bytesPerRead` bytes at a time, as a network would. */
export function replaySse(parser: StreamParser, sseText: string, bytesPerRead = 64): Replay {
  const comments: string[] = [];
  const decoder = createSseDecoder({ onComment: (text) => comments.push(text) });
  const bytes = new TextEncoder().encode(sseText);
  const chunks: ChatChunk[] = [];
  try {
    for (let at = 0; at < bytes.length; at += bytesPerRead) {
      for (const message of decoder.push(bytes.subarray(at, at + bytesPerRead))) chunks.push(...parser.push(message));
    }
    for (const message of decoder.end()) chunks.push(...parser.push(message));
  } catch (error) {
    return { chunks, outcome: parser.finish(), error, comments };
  }
  return { chunks, outcome: parser.finish(), comments };
}

/** What a client would assemble from the chunks: text, reasoning and tool calls by index. */
export function assemble(chunks: ChatChunk[]): {
  content: string;
  reasoning: string;
  toolCalls: { id?: string; name?: string; arguments: string }[];
  finishReasons: string[];
} {
  let content = '';
  let reasoning = '';
  const toolCalls: { id?: string; name?: string; arguments: string }[] = [];
  const finishReasons: string[] = [];
  for (const chunk of chunks) {
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? '';
      reasoning += choice.delta.reasoning ?? '';
      for (const delta of choice.delta.tool_calls ?? []) {
        const call = (toolCalls[delta.index] ??= { arguments: '' });
        if (delta.id !== undefined) call.id = delta.id;
        if (delta.function?.name !== undefined) call.name = delta.function.name;
        call.arguments += delta.function?.arguments ?? '';
      }
      if (choice.finish_reason !== null) finishReasons.push(choice.finish_reason);
    }
  }
  return { content, reasoning, toolCalls, finishReasons };
}

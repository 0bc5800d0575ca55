/**
 * The Anthropic skin's pure translation: chat chunks → Anthropic stream events (block order, thinking with its
 * signature, several tool calls), finish reasons → stop reasons, and the Messages request → the chat request.
 */
import { describe, expect, it } from 'vitest';
import type { GenerationOutcome } from '../../src/gateway/gateway.js';
import { parseChatBody } from '../../src/gateway/chatRequest.js';
import { createMessageStream, messagesChatBody, stopReasonOf } from '../../src/gateway/skins/anthropicMessages.js';
import type { ChatChunk, ChunkDelta, FinishReason } from '../../src/gateway/types.js';

const chunk = (delta: ChunkDelta, finish: FinishReason | null = null, native: string | null = null): ChatChunk => ({
  id: 'gen-1',
  object: 'chat.completion.chunk',
  created: 0,
  model: 'm',
  choices: [{ index: 0, delta, finish_reason: finish, ...(finish !== null && { native_finish_reason: native }) }],
});

const outcome = (finishReason: FinishReason | null): GenerationOutcome => ({
  upstreamCost: null,
  attempts: [],
  healed: false,
  generationId: 'gen-1',
  kind: 'completed',
  model: 'm',
  providerName: 'p',
  providerSlug: 'p',
  response: null,
  usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14, prompt_tokens_details: { cached_tokens: 3, cache_write_tokens: 2 } },
  usageSource: 'provider',
  cost: 1_500,
  costBreakdown: null,
  committed: true,
  finishReason,
  error: null,
});

const run = (chunks: ChatChunk[], end: FinishReason | null = 'stop') => {
  const stream = createMessageStream({ id: 'gen-1', model: 'm', inputTokensEstimate: 7 });
  return [...chunks.flatMap((c) => stream.push(c)), ...stream.end(outcome(end))];
};

describe('chat chunks as Anthropic stream events', () => {
  it('opens one block per kind in order, pings once after the first block, and stops each before the next', () => {
    const events = run([
      chunk({ role: 'assistant', content: '' }),
      chunk({ reasoning: 'Think' }),
      chunk({ reasoning_details: [{ type: 'reasoning.text', signature: 'sig', format: 'anthropic-claude-v1' }] }),
      chunk({ content: 'Hi' }),
      chunk({ content: ' there' }),
      chunk({ tool_calls: [{ index: 0, id: 'a', type: 'function', function: { name: 'f', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"x":' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'b', type: 'function', function: { name: 'g', arguments: '{}' } }] }),
      chunk({}, 'tool_calls', 'tool_calls'),
    ]);
    expect(events.map((e) => [e.event, e.data.index ?? null])).toEqual([
      ['message_start', null],
      ['content_block_start', 0],
      ['ping', null],
      ['content_block_delta', 0],
      ['content_block_delta', 0],
      ['content_block_stop', 0],
      ['content_block_start', 1],
      ['content_block_delta', 1],
      ['content_block_delta', 1],
      ['content_block_stop', 1],
      ['content_block_start', 2],
      ['content_block_delta', 2],
      ['content_block_delta', 2],
      ['content_block_stop', 2],
      ['content_block_start', 3],
      ['content_block_delta', 3],
      ['content_block_stop', 3],
      ['message_delta', null],
      ['message_stop', null],
    ]);
    expect(events[1]!.data.content_block).toEqual({ type: 'thinking', thinking: '', signature: '' });
    expect(events[4]!.data.delta).toEqual({ type: 'signature_delta', signature: 'sig' });
    expect(events[10]!.data.content_block).toEqual({ type: 'tool_use', id: 'a', name: 'f', input: {} });
    expect(events[14]!.data.content_block).toEqual({ type: 'tool_use', id: 'b', name: 'g', input: {} });
    expect(events.at(-2)!.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      // input_tokens without the cache reads and writes, as Anthropic counts them.
      // OpenRouter's cost fields as on chat: not a BYOK call, so no upstream cost.
      usage: {
        input_tokens: 5,
        output_tokens: 4,
        cache_creation_input_tokens: 2,
        cache_read_input_tokens: 3,
        cost: 0.0000015,
        is_byok: false,
        cost_details: { upstream_inference_cost: null, upstream_inference_prompt_cost: 0, upstream_inference_completions_cost: 0 },
      },
    });
  });

  it('an answer with no chunks still starts and ends a message', () => {
    expect(run([], 'length').map((e) => e.event)).toEqual(['message_start', 'message_delta', 'message_stop']);
  });

  it("tells a stop sequence from a natural end only when the upstream's native reason says so", () => {
    expect(stopReasonOf('stop', 'stop_sequence')).toBe('stop_sequence');
    expect(stopReasonOf('stop', 'end_turn')).toBe('end_turn');
    expect(stopReasonOf('length', 'max_tokens')).toBe('max_tokens');
    expect(stopReasonOf('content_filter', 'refusal')).toBe('refusal');
    expect(stopReasonOf(null, null)).toBe('end_turn');
  });
});

describe('the Messages request as a chat request', () => {
  it('puts tool results before the rest of their user turn and flags errors in the content', () => {
    const parsed = parseChatBody(messagesChatBody({
      model: 'm',
      max_tokens: 10,
      tool_choice: { type: 'tool', name: 'f', disable_parallel_tool_use: true },
      tools: [{ name: 'f', input_schema: { type: 'object' } }],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hm', signature: 's' }, { type: 'text', text: 'calling' }, { type: 'tool_use', id: 't1', name: 'f', input: { a: 1 } }] },
        { role: 'user', content: [{ type: 'text', text: 'and?' }, { type: 'tool_result', tool_use_id: 't1', content: 'boom', is_error: true }] },
      ],
    }));
    expect(parsed.request.messages).toEqual([
      { role: 'user', content: 'go' },
      {
        role: 'assistant',
        content: 'calling',
        tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
        reasoning_details: [{ type: 'reasoning.text', text: 'hm', signature: 's', format: 'anthropic-claude-v1' }],
      },
      { role: 'tool', tool_call_id: 't1', content: 'Error: boom' },
      { role: 'user', content: [{ type: 'text', text: 'and?' }] },
    ]);
    expect(parsed.request).toMatchObject({ max_tokens: 10, tool_choice: { type: 'function', function: { name: 'f' } }, parallel_tool_calls: false });
    expect(parsed.needs.tools).toBe(true);
  });
});

/** Anthropic SSE events: message_start, content_block_start/delta/stop, message_delta, message_stop, error. */
import type { ChatChunk, ChunkDelta, FinishReason, Usage } from '../../types.js';
import type { ResponseMeta, StreamParser } from '../adapter.js';
import { asNumber, asRecord, asString, isRecord, malformedResponse, parseJson } from '../common.js';
import { errorFromEvent, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';
import { readUsageCounts, REASONING_FORMAT, toUsage, webSearchesOf, type AnthropicCounts } from './response.js';

export function createStreamParser(meta: ResponseMeta = {}): StreamParser {
  let id = meta.id ?? '';
  let model = meta.model ?? '';
  // Usage, cumulative across events: message_start's input counts and placeholder output_tokens, then
  // message_delta's (which newer API versions repeat the input counts in). One count that is none voids the report.
  let counts: AnthropicCounts = {};
  let startOutput: number | undefined;
  let finalOutput: number | undefined;
  let webSearches: number | undefined;
  let unusable = false;
  /** Takes in one event's usage; its output_tokens. */
  const readUsage = (usage: Record<string, unknown>): number | undefined => {
    const read = readUsageCounts(usage);
    if (read === undefined) unusable = true;
    webSearches = webSearchesOf(usage) ?? webSearches;
    const { output_tokens: output, ...input } = read ?? {};
    counts = { ...counts, ...input };
    return output;
  };
  let finishReason: FinishReason | undefined;
  let nativeFinishReason: string | undefined;
  let done = false;
  // Content-block index → canonical tool_calls index (only tool_use blocks get one).
  const toolIndexOfBlock = new Map<number, number>();

  const chunk = (delta: ChunkDelta, finish: FinishReason | null = null, stopSequence?: string): ChatChunk[] => [
    {
      id,
      object: 'chat.completion.chunk',
      created: meta.created ?? 0,
      model,
      choices: [
        {
          index: 0,
          delta,
          finish_reason: finish,
          ...(finish !== null && { native_finish_reason: nativeFinishReason ?? null }),
          ...(stopSequence !== undefined && { stop_sequence: stopSequence }),
        },
      ],
    },
  ];

  /**
   * The usage to bill: none without a usable input count. message_start's output_tokens is a placeholder, not the
   * answer's: an answer that ended (message_stop or a stop reason) without message_delta's count has no report (its
   * output is estimated); one cut before its end is billed as a failure, on the prompt count and at least what was sent.
   */
  const usage = (): Usage | undefined => {
    const input = counts.input_tokens;
    if (unusable || input === undefined) return undefined;
    const output = finalOutput ?? (done || finishReason !== undefined ? undefined : (startOutput ?? 0));
    return output === undefined ? undefined : toUsage({ ...counts, input_tokens: input, output_tokens: output }, webSearches);
  };

  return {
    push(message) {
      if (done) return [];
      const event = parseJson(message.data);
      if (!isRecord(event)) throw malformedResponse(PROVIDER, `invalid stream event: ${message.data.slice(0, 200)}`);
      const type = asString(event.type) ?? message.event;
      // The answer ended at its stop reason: only its usage (message_delta) and message_stop may follow, no content.
      if (nativeFinishReason !== undefined && (type === 'content_block_start' || type === 'content_block_delta')) return [];
      switch (type) {
        case 'message_start': {
          const m = asRecord(event.message);
          if (meta.id === undefined) id = asString(m.id) ?? id;
          if (meta.model === undefined) model = asString(m.model) ?? model;
          if (isRecord(m.usage)) startOutput = readUsage(m.usage) ?? startOutput;
          return chunk({ role: 'assistant', content: '' });
        }
        case 'content_block_start': {
          const index = asNumber(event.index) ?? 0;
          const block = asRecord(event.content_block);
          if (block.type === 'tool_use') {
            const toolIndex = toolIndexOfBlock.size;
            toolIndexOfBlock.set(index, toolIndex);
            return chunk({
              tool_calls: [
                {
                  index: toolIndex,
                  id: asString(block.id) ?? '',
                  type: 'function',
                  function: { name: asString(block.name) ?? '', arguments: '' },
                },
              ],
            });
          }
          if (block.type === 'text' && asString(block.text)) return chunk({ content: asString(block.text) });
          if (block.type === 'thinking' && asString(block.thinking)) return chunk({ reasoning: asString(block.thinking) });
          if (block.type === 'redacted_thinking') {
            return chunk({
              reasoning_details: [{ type: 'reasoning.encrypted', data: asString(block.data) ?? '', format: REASONING_FORMAT }],
            });
          }
          return [];
        }
        case 'content_block_delta': {
          const delta = asRecord(event.delta);
          switch (delta.type) {
            case 'text_delta':
              return chunk({ content: asString(delta.text) ?? '' });
            case 'thinking_delta':
              return chunk({ reasoning: asString(delta.thinking) ?? '' });
            case 'signature_delta':
              return chunk({
                reasoning_details: [{ type: 'reasoning.text', signature: asString(delta.signature) ?? '', format: REASONING_FORMAT }],
              });
            case 'input_json_delta': {
              const toolIndex = toolIndexOfBlock.get(asNumber(event.index) ?? -1);
              const partial = asString(delta.partial_json) ?? '';
              if (toolIndex === undefined || partial === '') return [];
              return chunk({ tool_calls: [{ index: toolIndex, function: { arguments: partial } }] });
            }
            default:
              return [];
          }
        }
        case 'message_delta': {
          if (isRecord(event.usage)) finalOutput = readUsage(event.usage) ?? finalOutput;
          const delta = asRecord(event.delta);
          const stopReason = asString(delta.stop_reason);
          // One finish chunk: a repeated stop reason (a message_delta sent again) ends nothing more.
          if (stopReason === undefined || nativeFinishReason !== undefined) return [];
          nativeFinishReason = stopReason;
          finishReason = mapFinishReason(stopReason) ?? undefined;
          return chunk({}, finishReason ?? null, stopReason === 'stop_sequence' ? asString(delta.stop_sequence) : undefined);
        }
        case 'message_stop':
          done = true;
          return [];
        case 'error':
          throw errorFromEvent(event);
        default:
          // ping, content_block_stop, and event types added later.
          return [];
      }
    },
    ended: () => done,
    finish() {
      const billed = usage();
      return {
        done,
        ...(billed && { usage: billed }),
        ...(finishReason && { finishReason }),
        ...(nativeFinishReason !== undefined && { nativeFinishReason }),
      };
    },
  };
}

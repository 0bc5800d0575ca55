/** OpenAI SSE chunks (`data: {chunk}` … `data: [DONE]`); usage arrives in a last chunk with no choices. */
import type { ChatChunk, ChunkChoice, ChunkDelta, FinishReason, ProviderError, ToolCallDelta, Usage } from '../../types.js';
import type { ResponseMeta, StreamParser } from '../adapter.js';
import { asArray, asNumber, asRecord, asString, isRecord, malformedResponse, parseJson } from '../common.js';
import { providerError } from '../httpErrors.js';
import { errorFromBody, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';
import { parseReasoningDetails, parseUsage } from './response.js';

function parseDelta(value: unknown): ChunkDelta {
  const d = asRecord(value);
  const delta: ChunkDelta = {};
  if (d.role === 'assistant') delta.role = 'assistant';
  if (typeof d.content === 'string') delta.content = d.content;
  const reasoning = asString(d.reasoning) ?? asString(d.reasoning_content);
  if (reasoning !== undefined) delta.reasoning = reasoning;
  const details = parseReasoningDetails(d.reasoning_details);
  if (details) delta.reasoning_details = details;
  if (typeof d.refusal === 'string') delta.refusal = d.refusal;
  const toolCalls: ToolCallDelta[] = [];
  asArray(d.tool_calls).forEach((item, i) => {
    if (!isRecord(item)) return;
    const fn = asRecord(item.function);
    const call: ToolCallDelta = { index: asNumber(item.index) ?? i };
    const id = asString(item.id);
    if (id !== undefined) call.id = id;
    if (item.type === 'function') call.type = 'function';
    const name = asString(fn.name);
    const args = asString(fn.arguments);
    if (name !== undefined || args !== undefined) {
      call.function = { ...(name !== undefined && { name }), ...(args !== undefined && { arguments: args }) };
    }
    toolCalls.push(call);
  });
  if (toolCalls.length > 0) delta.tool_calls = toolCalls;
  return delta;
}

/**
 * A choice's `error` as the provider's error: an object as an error body's, a string as its message (a 502 without a
 * code, as an object without one), anything else as an error it did not describe.
 */
const choiceError = (sent: unknown): ProviderError =>
  isRecord(sent) || typeof sent === 'string'
    ? errorFromBody({ error: sent }, 502)
    : providerError({ provider: PROVIDER, status: 502, detail: 'it ended the answer with an error mid-generation, without saying which' });

export function createStreamParser(meta: ResponseMeta = {}): StreamParser {
  let usage: Usage | undefined;
  let finishReason: FinishReason | undefined;
  let nativeFinishReason: string | undefined;
  let error: ProviderError | undefined;
  // An error a choice carried before it finished, by choice index (rare: made on the first one).
  let pending: Map<number, ProviderError> | undefined;
  let done = false;
  return {
    push(message) {
      if (done) return [];
      if (message.data === '[DONE]') {
        done = true;
        return [];
      }
      const json = parseJson(message.data);
      if (!isRecord(json)) throw malformedResponse(PROVIDER, `invalid stream chunk: ${message.data.slice(0, 200)}`);
      if (json.error != null) throw errorFromBody(json, 500);
      const chunkUsage = parseUsage(json.usage);
      if (chunkUsage) usage = chunkUsage;
      const choices: ChunkChoice[] = [];
      for (const [i, raw] of asArray(json.choices).entries()) {
        if (!isRecord(raw)) continue;
        const index = asNumber(raw.index) ?? i;
        const finish = mapFinishReason(asString(raw.finish_reason));
        const native = asString(raw.native_finish_reason) ?? asString(raw.finish_reason);
        // The provider ends the answer with an error mid-generation only by saying so, finish_reason "error"; its
        // error (as a whole answer's `choices[0].error`, parseResponse) is the one on that choice, or the one the
        // choice carried before. An error on a choice that has not finished ends nothing: kept for its finish.
        const said = raw.error == null ? undefined : choiceError(raw.error);
        let failed: ProviderError | undefined;
        if (finish === 'error') failed = said ?? pending?.get(index);
        else if (finish === null && said !== undefined) (pending ??= new Map()).set(index, said);
        if (finish) {
          finishReason = finish;
          nativeFinishReason = native;
          pending?.delete(index);
        }
        if (failed !== undefined) error ??= failed;
        choices.push({
          index,
          delta: parseDelta(raw.delta),
          finish_reason: finish,
          ...(native !== undefined && { native_finish_reason: native }),
          ...(isRecord(raw.logprobs) && { logprobs: raw.logprobs }),
          ...(failed !== undefined && { error: failed }),
        });
      }
      if (choices.length === 0) return [];
      const chunk: ChatChunk = {
        id: meta.id ?? asString(json.id) ?? '',
        object: 'chat.completion.chunk',
        created: meta.created ?? asNumber(json.created) ?? 0,
        model: meta.model ?? asString(json.model) ?? '',
        choices,
      };
      return [chunk];
    },
    ended: () => done,
    finish() {
      return {
        done,
        ...(usage && { usage }),
        ...(finishReason && { finishReason }),
        ...(nativeFinishReason !== undefined && { nativeFinishReason }),
        ...(error !== undefined && { error }),
      };
    },
  };
}

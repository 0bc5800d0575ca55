/** Gemini `streamGenerateContent?alt=sse`: each event is a partial GenerateContentResponse; a finishReason ends it. */
import type { ChatChunk, ChunkDelta, FinishReason, ToolCallDelta, Usage } from '../../types.js';
import type { ResponseMeta, StreamParser } from '../adapter.js';
import { asArray, asRecord, asString, isRecord, malformedResponse, parseJson } from '../common.js';
import { errorFromBody, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';
import { callIdFactory, createdFrom, digestParts, parseUsage } from './response.js';

export function createStreamParser(meta: ResponseMeta = {}): StreamParser {
  let id = meta.id;
  let model = meta.model;
  let created = meta.created;
  let roleSent = false;
  let toolCallCount = 0;
  let usage: Usage | undefined;
  let finishReason: FinishReason | undefined;
  let nativeFinishReason: string | undefined;
  let done = false;

  return {
    push(message) {
      // The chunk with the finishReason ends the answer (its usageMetadata, the final count, included): nothing after
      // it is the answer's, text or usage.
      if (done) return [];
      const body = parseJson(message.data);
      if (!isRecord(body)) throw malformedResponse(PROVIDER, `invalid stream chunk: ${message.data.slice(0, 200)}`);
      if (body.error != null) throw errorFromBody(body, undefined);
      id ??= asString(body.responseId);
      model ??= asString(body.modelVersion);
      created ??= createdFrom(body.createTime);
      // Each report is cumulative: the last one is the answer's, and one that is no report leaves none.
      if (body.usageMetadata != null) usage = parseUsage(body.usageMetadata);

      const candidate = asRecord(asArray(body.candidates)[0]);
      const digest = digestParts(asArray(asRecord(candidate.content).parts), callIdFactory(id), toolCallCount);
      const delta: ChunkDelta = {};
      if (!roleSent) {
        delta.role = 'assistant';
        roleSent = true;
      }
      if (digest.hasText) delta.content = digest.text;
      if (digest.hasReasoning) delta.reasoning = digest.reasoning;
      if (digest.signatures.length > 0) delta.reasoning_details = digest.signatures;
      if (digest.toolCalls.length > 0) {
        delta.tool_calls = digest.toolCalls.map(
          (call, i): ToolCallDelta => ({ index: toolCallCount + i, id: call.id, type: 'function', function: call.function }),
        );
        toolCallCount += digest.toolCalls.length;
      }

      const blockReason = asString(asRecord(body.promptFeedback).blockReason);
      const native = asString(candidate.finishReason) ?? blockReason;
      let finish: FinishReason | null = null;
      if (native !== undefined) {
        finish = asString(candidate.finishReason) === undefined ? 'content_filter' : mapFinishReason(native, toolCallCount > 0);
        finishReason = finish ?? undefined;
        nativeFinishReason = native;
        done = true;
      }
      if (Object.keys(delta).length === 0 && finish === null) return [];
      const chunk: ChatChunk = {
        id: id ?? '',
        object: 'chat.completion.chunk',
        created: created ?? 0,
        model: model ?? '',
        choices: [{ index: 0, delta, finish_reason: finish, ...(native !== undefined && { native_finish_reason: native }) }],
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
      };
    },
  };
}

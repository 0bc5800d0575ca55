/**
 * Gemini `GenerateContentResponse` (a whole body, or one SSE chunk of a stream).
 * - Gemini has no tool-call ids; ids are derived from the response id so they are stable and unique per turn.
 * - Thought signatures travel in `reasoning_details` as `reasoning.encrypted` entries keyed by tool-call id.
 * - Usage: `thoughtsTokenCount` is not part of `candidatesTokenCount` but is billed as output, so it is added to
 *   `completion_tokens`; `promptTokenCount` already includes `cachedContentTokenCount`.
 */
import type { ChatResponse, ReasoningDetail, ResponseMessage, ToolCall, Usage } from '../../types.js';
import type { ResponseMeta } from '../adapter.js';
import { asArray, asNumber, asRecord, asString, isRecord, makeUsage, malformedResponse, readCounts } from '../common.js';
import { errorFromBody, firstBody, PROVIDER } from './errors.js';
import { mapFinishReason } from './finishReason.js';

const SIGNATURE_FORMAT = 'google-gemini-v1';

/**
 * Canonical usage from `usageMetadata`, or undefined when it is no report: no `promptTokenCount`, or a count that is
 * none (common.ts readCounts), checked before they are added up. `candidatesTokenCount` is left out when nothing was
 * generated (a blocked prompt): 0.
 */
export function parseUsage(value: unknown): Usage | undefined {
  const counts = readCounts(value, ['promptTokenCount'], ['toolUsePromptTokenCount', 'candidatesTokenCount', 'thoughtsTokenCount', 'cachedContentTokenCount', 'totalTokenCount']);
  if (!counts) return undefined;
  const prompt = counts.promptTokenCount + (counts.toolUsePromptTokenCount ?? 0);
  const thoughts = counts.thoughtsTokenCount;
  const completion = (counts.candidatesTokenCount ?? 0) + (thoughts ?? 0);
  const cached = counts.cachedContentTokenCount;
  const audioIn = byModality(asRecord(value).promptTokensDetails, 'AUDIO');
  const videoIn = byModality(asRecord(value).promptTokensDetails, 'VIDEO');
  const audioOut = byModality(asRecord(value).candidatesTokensDetails, 'AUDIO');
  const imageOut = byModality(asRecord(value).candidatesTokensDetails, 'IMAGE');
  return makeUsage({
    prompt,
    completion,
    total: counts.totalTokenCount ?? prompt + completion,
    ...(cached !== undefined && { cached }),
    ...(thoughts !== undefined && { reasoning: thoughts }),
    ...(audioIn !== undefined && { audioIn }),
    ...(videoIn !== undefined && { videoIn }),
    ...(audioOut !== undefined && { audioOut }),
    ...(imageOut !== undefined && { imageOut }),
  });
}

/** The tokens of one modality in Gemini's `[{modality, tokenCount}]` breakdown; undefined when it lists none. */
const byModality = (details: unknown, modality: string): number | undefined => {
  let total: number | undefined;
  for (const entry of asArray(details)) {
    const { modality: m, tokenCount } = asRecord(entry);
    const n = asNumber(tokenCount);
    if (m === modality && n !== undefined) total = (total ?? 0) + n;
  }
  return total;
};

interface PartsDigest {
  text: string;
  reasoning: string;
  hasText: boolean;
  hasReasoning: boolean;
  toolCalls: ToolCall[];
  signatures: ReasoningDetail[];
}

/** `nextCallIndex` numbers tool calls across a whole stream so their ids stay unique. */
export function digestParts(parts: unknown[], callId: (index: number) => string, nextCallIndex: number): PartsDigest {
  const digest: PartsDigest = { text: '', reasoning: '', hasText: false, hasReasoning: false, toolCalls: [], signatures: [] };
  for (const raw of parts) {
    if (!isRecord(raw)) continue;
    const signature = asString(raw.thoughtSignature);
    let signatureOwner: string | undefined;
    if (isRecord(raw.functionCall)) {
      const call = raw.functionCall;
      const id = asString(call.id) ?? callId(nextCallIndex + digest.toolCalls.length);
      signatureOwner = id;
      digest.toolCalls.push({
        id,
        type: 'function',
        function: { name: asString(call.name) ?? '', arguments: JSON.stringify(call.args ?? {}) },
      });
    } else if (typeof raw.text === 'string') {
      if (raw.thought === true) {
        digest.reasoning += raw.text;
        digest.hasReasoning = true;
      } else {
        digest.text += raw.text;
        digest.hasText = true;
      }
    }
    if (signature !== undefined) {
      digest.signatures.push({
        type: 'reasoning.encrypted',
        data: signature,
        format: SIGNATURE_FORMAT,
        ...(signatureOwner !== undefined && { id: signatureOwner }),
      });
    }
  }
  return digest;
}

export function callIdFactory(responseId: string | undefined): (index: number) => string {
  return (index) => (responseId ? `call_${responseId}_${index}` : `call_${index}`);
}

export function createdFrom(value: unknown): number | undefined {
  const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.floor(at / 1000);
}

export function parseResponse(status: number, json: unknown, meta: ResponseMeta = {}): ChatResponse {
  const body = firstBody(json);
  if (!isRecord(body)) throw malformedResponse(PROVIDER, `response body is not a JSON object (HTTP ${status})`);
  if (body.error != null) throw errorFromBody(body, status >= 400 ? status : undefined);
  const responseId = asString(body.responseId);
  const candidate = asArray(body.candidates)[0];
  const blockReason = asString(asRecord(body.promptFeedback).blockReason);
  if (!isRecord(candidate) && blockReason === undefined) throw malformedResponse(PROVIDER, 'response has no candidates');

  const c = asRecord(candidate);
  const digest = digestParts(asArray(asRecord(c.content).parts), callIdFactory(meta.id ?? responseId), 0);
  const nativeReason = asString(c.finishReason) ?? blockReason;
  const finish = blockReason !== undefined && !isRecord(candidate) ? 'content_filter' : mapFinishReason(nativeReason, digest.toolCalls.length > 0);

  const message: ResponseMessage = {
    role: 'assistant',
    content: !digest.hasText && digest.toolCalls.length > 0 ? null : digest.text,
  };
  if (digest.toolCalls.length > 0) message.tool_calls = digest.toolCalls;
  if (digest.hasReasoning) message.reasoning = digest.reasoning;
  if (digest.signatures.length > 0) message.reasoning_details = digest.signatures;
  const usage = parseUsage(body.usageMetadata);
  return {
    id: meta.id ?? responseId ?? '',
    object: 'chat.completion',
    created: meta.created ?? createdFrom(body.createTime) ?? 0,
    model: meta.model ?? asString(body.modelVersion) ?? '',
    choices: [{ index: 0, message, finish_reason: finish, native_finish_reason: nativeReason ?? null }],
    ...(usage && { usage }),
  };
}

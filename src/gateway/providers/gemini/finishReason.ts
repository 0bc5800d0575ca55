import type { FinishReason } from '../../types.js';

const CONTENT_FILTER_REASONS: ReadonlySet<string> = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);

/**
 * Gemini `finishReason` → canonical. Gemini says STOP for a turn that ends in function calls. Anything else not
 * listed (MALFORMED_FUNCTION_CALL, OTHER, LANGUAGE, values added later) maps to `error` (OpenRouter's normalised set
 * has no `unknown`), never to a silent `stop`; the raw value stays in `native_finish_reason`.
 */
export function mapFinishReason(reason: string | undefined, hasToolCalls: boolean): FinishReason | null {
  if (reason === undefined) return null;
  if (reason === 'STOP') return hasToolCalls ? 'tool_calls' : 'stop';
  if (reason === 'MAX_TOKENS') return 'length';
  if (CONTENT_FILTER_REASONS.has(reason)) return 'content_filter';
  return 'error';
}

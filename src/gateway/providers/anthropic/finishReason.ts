import type { FinishReason } from '../../types.js';

/**
 * Anthropic `stop_reason` → canonical finish reason. A reason not listed here maps to `error` (OpenRouter's
 * normalised set has no `unknown`), never to a silent `stop`; the raw value stays in `native_finish_reason`.
 */
export function mapFinishReason(reason: string | undefined): FinishReason | null {
  switch (reason) {
    case undefined:
      return null;
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'error';
  }
}

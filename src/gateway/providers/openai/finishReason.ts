import type { FinishReason } from '../../types.js';
import { mapFinishReason as anthropicFinishReason } from '../anthropic/finishReason.js';
import { mapFinishReason as geminiFinishReason } from '../gemini/finishReason.js';

/**
 * OpenAI's finish reasons are the canonical ones; compatible servers add their own names. A reason not listed here
 * maps to `error` (OpenRouter's normalised set has no `unknown`), never to a silent `stop`; the raw value stays
 * in `native_finish_reason`.
 */
export function mapFinishReason(reason: string | undefined): FinishReason | null {
  switch (reason) {
    case undefined:
    // Some compatible servers send "" on chunks that have not finished.
    case '':
      return null;
    case 'stop':
    case 'length':
    case 'tool_calls':
    case 'content_filter':
    case 'error':
      return reason;
    case 'function_call':
      return 'tool_calls';
    // Together AI; Text Generation Inference (its OpenAI API before mid-2024, and servers built on it).
    case 'eos':
    case 'eos_token':
      return 'stop';
    // Mistral: the model's context window, not max_tokens, ended the answer.
    case 'model_length':
      return 'length';
    // A compatible server that passes on another protocol's reasons as they are (Anthropic's end_turn, max_tokens;
    // Gemini's MAX_TOKENS, SAFETY) means what that protocol means by them: a whole answer is not an error.
    default: {
      const anthropic = anthropicFinishReason(reason);
      return anthropic === 'error' ? geminiFinishReason(reason, false) : anthropic;
    }
  }
}

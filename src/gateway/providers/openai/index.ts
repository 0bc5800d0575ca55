/**
 * OpenAI chat completions (and every OpenAI-compatible server: Groq, Together, vLLM, Ollama, OpenRouter …). The
 * canonical shape is this protocol, so the mapping is mostly a filter: known fields out, upstream quirks in
 * (`reasoning_content`, DeepSeek cache counters, OpenRouter's numeric error codes).
 */
import { REASONING_EFFORTS } from '../../types.js';
import type { ProviderAdapter } from '../adapter.js';
import { httpErrorMapper } from '../httpErrors.js';
import { PROVIDER, readErrorBody } from './errors.js';
import { buildRequest, supportedParameters } from './request.js';
import { parseResponse } from './response.js';
import { createStreamParser } from './stream.js';

export const openaiAdapter: ProviderAdapter = {
  protocol: 'openai',
  supportedParameters,
  // The effort goes up as `reasoning_effort` (max as xhigh); OpenAI's API has no reasoning budget, so `enabled` and a
  // `max_tokens` budget go up as an effort too (common.ts reasoningEffortFor), not as a budget.
  reasoning: { efforts: REASONING_EFFORTS, maxTokens: false },
  refuses: false,
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError: httpErrorMapper(PROVIDER, readErrorBody),
};

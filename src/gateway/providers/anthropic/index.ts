/** Anthropic Messages API (`POST /v1/messages`, SSE events message_start … message_stop). */
import { REASONING_EFFORTS } from '../../types.js';
import type { ProviderAdapter } from '../adapter.js';
import { httpErrorMapper } from '../httpErrors.js';
import { PROVIDER, readErrorBody } from './errors.js';
import { buildRequest, supportedParameters } from './request.js';
import { parseResponse } from './response.js';
import { createStreamParser } from './stream.js';

export const anthropicAdapter: ProviderAdapter = {
  protocol: 'anthropic',
  supportedParameters,
  // Every effort is a share of max_tokens as the thinking budget (none: no thinking); max_tokens is the budget.
  reasoning: { efforts: REASONING_EFFORTS, maxTokens: true },
  refuses: true,
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError: httpErrorMapper(PROVIDER, readErrorBody),
};

/** Google Gemini API (`models/{model}:generateContent`, `:streamGenerateContent?alt=sse`). */
import type { ProviderAdapter } from '../adapter.js';
import { httpErrorMapper } from '../httpErrors.js';
import { PROVIDER, readErrorBody } from './errors.js';
import { buildRequest, supportedParameters } from './request.js';
import { parseResponse } from './response.js';
import { createStreamParser } from './stream.js';

export const geminiAdapter: ProviderAdapter = {
  protocol: 'gemini',
  supportedParameters,
  // max_tokens is the thinking budget and none turns thinking off; other efforts have no Gemini 2.5 equivalent.
  reasoning: { efforts: ['none'], maxTokens: true },
  refuses: true,
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError: httpErrorMapper(PROVIDER, readErrorBody),
};

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
  buildRequest,
  parseResponse,
  createStreamParser,
  mapError: httpErrorMapper(PROVIDER, readErrorBody),
};

/** The request fields that count as OpenRouter `supported_parameters` when a request sends them (for `require_parameters`). */
export const PARAMETER_FIELDS = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'stop',
  'seed',
  'frequency_penalty',
  'presence_penalty',
  'repetition_penalty',
  'min_p',
  'top_a',
  'prediction',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'response_format',
  'reasoning',
] as const;

/**
 * Every name an endpoint may list in `supportedParameters`: what a request can use (above) and OpenRouter's names for
 * features of those fields. A listing is checked against it, so that a typo never silently drops the endpoint from
 * `require_parameters` routing or a `supported_parameters` filter.
 */
export const SUPPORTED_PARAMETER_NAMES: ReadonlySet<string> = new Set<string>([...PARAMETER_FIELDS, 'structured_outputs', 'parallel_tool_calls', 'include_reasoning']);

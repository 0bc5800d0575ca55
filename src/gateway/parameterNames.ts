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

/**
 * An endpoint's `supportedParameters` as listed: its own (or its protocol's) names, with OpenRouter's older name for
 * reasoning (`include_reasoning`, which a request may use as well) wherever `reasoning` is listed, so a
 * `supported_parameters=include_reasoning` filter finds the models that reason.
 */
export const endpointParameters = (names: readonly string[]): string[] =>
  names.includes('reasoning') && !names.includes('include_reasoning') ? [...names, 'include_reasoning'] : [...names];

/** Fields that go with a parameter name: dropped with it when an endpoint does not take that parameter. */
const FIELDS_OF: Readonly<Record<string, readonly string[]>> = { tools: ['tools', 'tool_choice', 'parallel_tool_calls'], logprobs: ['logprobs', 'top_logprobs'] };

/**
 * The parameters a request may lose on an endpoint that does not list them (OpenRouter ignores what a model does
 * not support, unless `require_parameters`). Never `max_tokens`: the reservation and the bill are bounded by it.
 */
const DROPPABLE: readonly (readonly [name: string, fields: readonly string[]])[] = PARAMETER_FIELDS.filter((name) => name !== 'max_tokens' && name !== 'tool_choice' && name !== 'top_logprobs').map(
  (name) => [name, FIELDS_OF[name] ?? [name]] as const,
);

/**
 * The request without the parameters the endpoint does not take; the same object when it takes them all (most calls).
 * `response_format` stays where the endpoint lists `response_format` or `structured_outputs`.
 */
export const withSupportedParameters = <T extends object>(request: T, supported: ReadonlySet<string>): T => {
  let out: Record<string, unknown> | null = null;
  for (const [name, fields] of DROPPABLE) {
    if ((request as Record<string, unknown>)[name] === undefined || supported.has(name)) continue;
    if (name === 'response_format' && supported.has('structured_outputs')) continue;
    out ??= Object.assign({}, request) as Record<string, unknown>;
    for (const field of fields) delete out[field];
  }
  return (out ?? request) as T;
};

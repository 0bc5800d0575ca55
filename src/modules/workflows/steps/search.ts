/**
 * Searches: `search.models` (the catalog's one model-listing query, criteria mapped onto it) and `search.http`
 * (GET a URL that answers JSON, through the outbound address policy). Neither has side effects, so neither needs
 * the idempotency key.
 */
import { z } from 'zod';
import type { CatalogApi } from '../../catalog/catalog.api.js';
import { MODALITIES } from '../../catalog/model.events.js';
import { contextLengthOf, type ModelListing, type ModelQuery, type ModelSort } from '../../catalog/modelListing.js';
import { outboundRequest, parseJsonAnswer, stepHeaders, type OutboundHttp } from './http.js';
import { parseInput } from './parseInput.js';
import { StepError, type StepRunner } from './step.js';

/** Capabilities by name, as the endpoint parameter that provides each. */
const CAPABILITY_PARAMETER = { tools: 'tools', json_output: 'response_format', structured_outputs: 'structured_outputs', reasoning: 'reasoning' } as const;
type Capability = keyof typeof CAPABILITY_PARAMETER;

const SORT: Record<'price' | 'latency' | 'throughput', ModelSort> = {
  price: 'pricing-low-to-high',
  latency: 'latency-low-to-high',
  throughput: 'throughput-high-to-low',
};

const nanos = z.number().int().nonnegative();

export const modelCriteria = z.strictObject({
  capabilities: z.array(z.enum(Object.keys(CAPABILITY_PARAMETER) as [Capability, ...Capability[]])).max(10).optional(),
  supportedParameters: z.array(z.string().min(1).max(64)).max(20).optional(),
  inputModalities: z.array(z.enum(MODALITIES)).max(MODALITIES.length).optional(),
  maxPromptPrice: nanos.optional(),
  maxCompletionPrice: nanos.optional(),
  minContextLength: z.number().int().positive().optional(),
  provider: z.string().min(1).max(64).optional(),
  search: z.string().min(1).max(200).optional(),
  sort: z.enum(['price', 'latency', 'throughput']).default('price'),
  limit: z.number().int().min(1).max(100).default(20),
});

/** The step's criteria as the catalog's query (free endpoints listed apart as `…:free`, which routes like any id). */
const toQuery = (criteria: z.infer<typeof modelCriteria>): ModelQuery => {
  const parameters = [...(criteria.capabilities ?? []).map((c) => CAPABILITY_PARAMETER[c]), ...(criteria.supportedParameters ?? [])];
  return {
    freeVariants: 'separate',
    sort: SORT[criteria.sort],
    ...(criteria.search !== undefined && { search: criteria.search }),
    ...(criteria.provider !== undefined && { provider: criteria.provider }),
    ...(criteria.maxPromptPrice !== undefined && { maxPromptPrice: criteria.maxPromptPrice }),
    ...(criteria.maxCompletionPrice !== undefined && { maxCompletionPrice: criteria.maxCompletionPrice }),
    ...(criteria.minContextLength !== undefined && { minContextLength: criteria.minContextLength }),
    ...(parameters.length > 0 && { supportedParameters: [...new Set(parameters)] }),
    ...(criteria.inputModalities !== undefined && { inputModalities: criteria.inputModalities }),
  };
};

/** What a later step reads of a model: JSON-safe, prices of its cheapest endpoint in nano-dollars per token. */
const itemOf = (m: ModelListing) => {
  const cheapest = m.endpoints[0];
  return {
    id: m.id,
    name: m.doc.name,
    contextLength: contextLengthOf(m),
    prices: { prompt: cheapest?.prices.prompt ?? 0, completion: cheapest?.prices.completion ?? 0, request: cheapest?.prices.request ?? 0 },
    providers: [...new Set(m.endpoints.map((e) => e.provider))],
    supportedParameters: [...new Set(m.endpoints.flatMap((e) => e.supportedParameters))].sort(),
    inputModalities: m.doc.inputModalities,
    outputModalities: m.doc.outputModalities,
    free: m.free,
  };
};

export const searchModels =
  (catalog: Pick<CatalogApi, 'listModels'>): StepRunner =>
  async (input, context) => {
    const criteria = parseInput(modelCriteria, input);
    // As the workflow's account is served: the models its own provider keys (BYOK) reach count, as in its listing.
    const items = (await catalog.listModels(toQuery(criteria), context.principal)).slice(0, criteria.limit).map(itemOf);
    return { output: { items, first: items[0] ?? null, count: items.length }, cost: 0 };
  };

export const httpSearch = z.strictObject({
  url: z.string().min(1).max(8192),
  headers: z.unknown().optional(),
});

export const searchHttp =
  (http: OutboundHttp): StepRunner =>
  async (input, context) => {
    const { url, headers } = parseInput(httpSearch, input);
    const response = await outboundRequest(http, { method: 'GET', url, headers: { accept: 'application/json', ...stepHeaders(headers) }, body: undefined }, context.signal);
    if (response.status >= 300) throw new StepError('REDIRECT', `${url} answered HTTP ${response.status} (redirects are not followed)`, false);
    // Whatever the content type says, the body must parse: a search's output is JSON.
    const output = parseJsonAnswer(response, url);
    if (output === undefined) {
      const shown = response.text.slice(0, 100);
      throw new StepError('NOT_JSON', `${url} did not answer JSON (${response.contentType || 'no content type'}): ${JSON.stringify(shown)}`, false);
    }
    return { output, cost: 0 };
  };

/**
 * Embeddings (`POST /api/v1/embeddings`): the body, the wire formats of the OpenAI protocol (`/embeddings`) and
 * Gemini (`:batchEmbedContents`), and the offline demo model's vectors. Pure: the gateway does the I/O, routing and
 * billing (per input token, through the same ledger path as chat).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { providerOf, type ProviderPreferences } from './chatRequest.js';
import { Provider } from './chatRequest.schema.js';
import { invalidRequest } from './gatewayErrors.js';
import type { UpstreamRequest, UpstreamTarget } from './providers/adapter.js';
import { asArray, asNumber, asRecord, isRecord, joinUrl, malformedResponse } from './providers/common.js';
import type { Protocol } from './providers/adapter.js';

const MAX_INPUTS = 2048;
const MAX_DIMENSIONS = 8192;
/** The demo model's vector size when `dimensions` is not sent. */
export const DEMO_EMBEDDING_DIMENSIONS = 256;

export interface EmbeddingRequest {
  readonly model: string;
  readonly input: readonly string[];
  readonly dimensions?: number;
  readonly encodingFormat: 'float' | 'base64';
  readonly user?: string;
}

export interface ParsedEmbedding {
  readonly request: EmbeddingRequest;
  /** OpenRouter's `provider` object, routed by as for chat (order, only, data policy …). */
  readonly provider: ProviderPreferences | null;
  /** Estimated input tokens: ceil(characters / 4) per input, as the chat estimate. */
  readonly promptTokens: number;
  /**
   * The most input tokens the upstream can count: a tokenizer's token covers at least one UTF-8 byte, plus a few
   * special tokens per input. The reservation covers this, so the bill is never capped below what the upstream reports.
   */
  readonly maxPromptTokens: number;
}

/** Special tokens a tokenizer may add around each input (begin/end markers). */
const SPECIAL_TOKENS_PER_INPUT = 2;

const INPUT = `input must be a non-empty string or a list of 1 to ${MAX_INPUTS} non-empty strings`;
const Body = z.object(
  {
    model: z.string({ error: 'model must be a non-empty string' }).trim().min(1, { error: 'model must be a non-empty string' }),
    input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(MAX_INPUTS)], { error: INPUT }),
    dimensions: z.int({ error: `dimensions must be an integer between 1 and ${MAX_DIMENSIONS}` }).min(1).max(MAX_DIMENSIONS).nullish(),
    encoding_format: z.enum(['float', 'base64'], { error: 'encoding_format must be "float" or "base64"' }).nullish(),
    user: z.string({ error: 'user must be a string' }).nullish(),
    provider: Provider.nullish(),
  },
  { error: 'The request body must be a JSON object' },
);

export const parseEmbeddingBody = (raw: unknown): ParsedEmbedding => {
  const parsed = Body.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue?.path[0];
    // Inner issues of `input` (an empty string in the list) carry zod's wording; the field's own message says more.
    const message = param === 'input' ? INPUT : (issue?.message ?? 'The request body is invalid');
    throw invalidRequest(message, typeof param === 'string' ? { param } : {});
  }
  const body = parsed.data;
  const input = typeof body.input === 'string' ? [body.input] : body.input;
  return {
    request: {
      model: body.model,
      input,
      ...(body.dimensions != null && { dimensions: body.dimensions }),
      encodingFormat: body.encoding_format ?? 'float',
      ...(body.user != null && { user: body.user }),
    },
    provider: providerOf(body.provider),
    promptTokens: input.reduce((n, text) => n + Math.ceil(text.length / 4), 0),
    maxPromptTokens: input.reduce((n, text) => n + Buffer.byteLength(text) + SPECIAL_TOKENS_PER_INPUT, 0),
  };
};

// ---------------------------------------------------------------------------------------------------------------
// Wire formats

export interface EmbeddingResult {
  readonly vectors: readonly (readonly number[])[];
  /** Input tokens as the provider counted them, or null when it did not say. */
  readonly promptTokens: number | null;
}

/** The upstream request; Gemini always gets the batch call (one input is a batch of one). */
export const buildEmbeddingRequest = (protocol: Protocol, req: EmbeddingRequest, target: UpstreamTarget): UpstreamRequest => {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  switch (protocol) {
    case 'openai':
      return {
        url: joinUrl(target.baseUrl, '/embeddings'),
        method: 'POST',
        headers: { ...headers, ...(target.apiKey !== undefined && { authorization: `Bearer ${target.apiKey}` }), ...target.headers },
        // Floats always: base64 is encoded here, so billing and the record read one shape.
        body: JSON.stringify({ model: target.upstreamModel, input: req.input, encoding_format: 'float', ...(req.dimensions !== undefined && { dimensions: req.dimensions }), ...(req.user !== undefined && { user: req.user }) }),
      };
    case 'gemini': {
      const model = `models/${target.upstreamModel.replace(/^models\//, '')}`;
      return {
        url: joinUrl(target.baseUrl, `/${model}:batchEmbedContents`),
        method: 'POST',
        headers: { ...headers, ...(target.apiKey !== undefined && { 'x-goog-api-key': target.apiKey }), ...target.headers },
        body: JSON.stringify({
          requests: req.input.map((text) => ({ model, content: { parts: [{ text }] }, ...(req.dimensions !== undefined && { outputDimensionality: req.dimensions }) })),
        }),
      };
    }
    case 'anthropic':
      // Routing keeps embeddings away from protocols without them.
      throw new Error('Anthropic has no embeddings API');
    default: {
      const _never: never = protocol;
      throw new Error(`unknown protocol ${String(_never)}`);
    }
  }
};

const vectorOf = (value: unknown): number[] | null => {
  const items = asArray(value);
  const out: number[] = [];
  for (const item of items) {
    const n = asNumber(item);
    if (n === undefined) return null;
    out.push(n);
  }
  return out.length > 0 ? out : null;
};

export const parseEmbeddingResponse = (protocol: 'openai' | 'gemini', json: unknown, count: number): EmbeddingResult => {
  if (!isRecord(json)) throw malformedResponse(protocol, 'embeddings response is not a JSON object');
  const vectors: number[][] = [];
  let promptTokens: number | null = null;
  if (protocol === 'openai') {
    const data = asArray(json.data).filter(isRecord);
    const ordered = [...data].sort((a, b) => (asNumber(a.index) ?? 0) - (asNumber(b.index) ?? 0));
    for (const item of ordered) {
      const vector = vectorOf(item.embedding);
      if (vector) vectors.push(vector);
    }
    promptTokens = asNumber(asRecord(json.usage).prompt_tokens) ?? null;
  } else {
    for (const item of asArray(json.embeddings)) {
      const vector = vectorOf(asRecord(item).values);
      if (vector) vectors.push(vector);
    }
  }
  if (vectors.length !== count) throw malformedResponse(protocol, `embeddings response has ${vectors.length} vectors for ${count} inputs`);
  return { vectors, promptTokens };
};

/** The demo model's vector for a text: deterministic (SHA-256 in counter mode), unit length. */
export const demoEmbedding = (text: string, dimensions: number): number[] => {
  const values: number[] = [];
  for (let block = 0; values.length < dimensions; block++) {
    const digest = createHash('sha256').update(`${block}:${text}`).digest();
    for (let i = 0; i + 1 < digest.length && values.length < dimensions; i += 2) values.push(digest.readUInt16BE(i) / 32768 - 1);
  }
  const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0)) || 1;
  return values.map((v) => v / norm);
};

/** OpenAI's base64 encoding of a vector: little-endian float32s. */
export const base64Vector = (vector: readonly number[]): string => Buffer.from(new Float32Array(vector).buffer).toString('base64');

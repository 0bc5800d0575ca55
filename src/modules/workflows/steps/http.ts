/**
 * `action.http`, and the one outbound HTTP call both it and `search.http` make. Every call goes through the outbound
 * address policy: the URL is checked first (a refusal names the address and why), and the connection itself uses
 * agents whose `lookup` is the policy's, so a name that resolves to a private address at connection time is refused
 * too (node skips `lookup` for IP literals, which `checkUrl` has judged). Redirects are not followed (node:http never
 * does): a 3xx is the answer. Responses are bounded in size and time.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import { readBody } from '../../../http/readBody.js';
import { ValidationError } from '../../../errors.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../../objects.js';
import { parseProviderHeaders } from '../../catalog/catalog.api.js';
import { OutboundRefusedError, guardedAgents, type OutboundPolicy } from '../../outbound/outboundPolicy.js';
import { parseInput, readsFields } from './parseInput.js';
import { stepCallKey } from '../run.events.js';
import { StepError, type StepRunner } from './step.js';

export interface OutboundHttpLimits {
  /** The whole exchange, from connecting to the last byte of the answer. */
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxRequestBytes: number;
}

/** A step's output is at most 1 MiB (the run's limit), so a larger answer could not be kept anyway. */
export const DEFAULT_HTTP_LIMITS: OutboundHttpLimits = { timeoutMs: 30_000, maxResponseBytes: 1024 * 1024, maxRequestBytes: 1024 * 1024 };

export interface OutboundHttp {
  readonly policy: Pick<OutboundPolicy, 'checkUrl' | 'lookup'>;
  readonly agents: { readonly 'http:': http.Agent; readonly 'https:': https.Agent };
  readonly limits: OutboundHttpLimits;
}

/** Guarded agents, no keep-alive: workflow targets are many and rarely called twice in a row. */
export const createOutboundHttp = (policy: Pick<OutboundPolicy, 'checkUrl' | 'lookup'>, limits: Partial<OutboundHttpLimits> = {}): OutboundHttp => ({
  policy,
  agents: guardedAgents(policy),
  limits: { ...DEFAULT_HTTP_LIMITS, ...limits },
});

export interface OutboundResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly contentType: string;
  readonly text: string;
}

/** Headers the step sets itself: a designer's own values for them are dropped. */
const OWN_HEADERS: ReadonlySet<string> = new Set(['idempotency-key', 'x-switchyard-attempt']);

const refused = (message: string) => new StepError('OUTBOUND_REFUSED', message, false);

const flatHeaders = (headers: IncomingHttpHeaders): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
};

/** Errors a connection meets that a later attempt may not (the target restarting, a network blip). */
const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

/**
 * One request through the policy. Resolves with any status below 400; 4xx fail for good except 408 and 429, 5xx
 * and timeouts may be retried; the step's signal (run cancelled, step timed out) aborts it.
 */
export const outboundRequest = async (
  client: OutboundHttp,
  request: { readonly method: string; readonly url: string; readonly headers: Record<string, string>; readonly body: string | undefined },
  signal: AbortSignal,
): Promise<OutboundResponse> => {
  const refusal = await client.policy.checkUrl(request.url);
  if (refusal) throw refused(`${request.url} refused: ${refusal.message}`);
  const url = new URL(request.url);
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
  const timeout = AbortSignal.timeout(client.limits.timeoutMs);
  const aborted = AbortSignal.any([signal, timeout]);
  const failure = (error: unknown): StepError => {
    if (error instanceof StepError) return error;
    if (signal.aborted) return new StepError('CANCELLED', `The request to ${url.host} was aborted: the step was cancelled or timed out`, false);
    if (timeout.aborted) return new StepError('TIMEOUT', `${url.host} did not answer within ${client.limits.timeoutMs} ms`, true);
    if (error instanceof OutboundRefusedError) return refused(`${request.url} refused: ${error.message}`);
    const code = (error as NodeJS.ErrnoException).code;
    return new StepError('CONNECTION', `The request to ${url.host} failed (${code ?? (error as Error).message})`, code === undefined || TRANSIENT.has(code));
  };
  try {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (protocol === 'https:' ? https : http).request(
        url,
        {
          method: request.method,
          headers: { ...request.headers, ...(request.body !== undefined && { 'content-length': String(Buffer.byteLength(request.body)) }) },
          agent: client.agents[protocol],
          signal: aborted,
        },
        resolve,
      );
      req.on('error', reject);
      req.end(request.body);
    });
    const max = client.limits.maxResponseBytes;
    const body = await readBody(response, max, () => new StepError('RESPONSE_TOO_LARGE', `${url.host} answered more than ${max} bytes`, false));
    const status = response.statusCode ?? 0;
    const text = body.toString('utf8');
    if (status >= 400) {
      const retryable = status >= 500 || status === 408 || status === 429;
      throw new StepError(`HTTP_${status}`, `${request.method} ${url.origin}${url.pathname} answered HTTP ${status}: ${text.slice(0, 200)}`, retryable);
    }
    return { status, headers: flatHeaders(response.headers), contentType: response.headers['content-type'] ?? '', text };
  } catch (error) {
    throw failure(error);
  }
};

/**
 * An answer's body as JSON, or undefined when it is not JSON. Nesting is held to MAX_JSON_DEPTH as for every JSON
 * that comes in (objects.ts): JSON.parse takes any depth, but the run's later walks over the output (storing it,
 * expressions, input schemas) overflow the stack a few thousand levels down.
 */
export const parseJsonAnswer = (response: OutboundResponse, url: string): unknown => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.text);
  } catch {
    return undefined;
  }
  if (nestsDeeperThan(parsed, MAX_JSON_DEPTH)) throw new StepError('RESPONSE_TOO_DEEP', `${url} answered JSON nested more than ${MAX_JSON_DEPTH} levels deep`, false);
  return parsed;
};

const isJsonType = (contentType: string) => /^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(contentType);

/** Headers a step may set: HTTP tokens and printable values (the catalog's rules for provider headers), framing ones excepted. */
export const stepHeaders = (headers: unknown): Record<string, string> => {
  try {
    return parseProviderHeaders(headers);
  } catch (error) {
    if (error instanceof ValidationError) throw new StepError('INVALID_INPUT', `Invalid step input: input.${error.message}`, false);
    throw error;
  }
};

const httpFields = {
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('POST'),
  url: z.string().min(1).max(8192),
  headers: z.unknown().optional(),
  /** Any JSON, sent as application/json. */
  body: z.unknown().optional(),
};
export const httpAction = z
  .strictObject(httpFields)
  .refine((i) => i.body === undefined || (i.method !== 'GET' && i.method !== 'HEAD'), readsFields(httpFields, ['body', 'method'], 'a GET or HEAD request has no body'));

export const actionHttp =
  (client: OutboundHttp): StepRunner =>
  async (input, context) => {
    const { method, url, headers, body } = parseInput(httpAction, input);
    const sent = body === undefined ? undefined : JSON.stringify(body);
    if (sent !== undefined && Buffer.byteLength(sent) > client.limits.maxRequestBytes) {
      throw new StepError('INVALID_INPUT', `Invalid step input: input.body is larger than ${client.limits.maxRequestBytes} bytes`, false);
    }
    const given = stepHeaders(headers);
    const hasType = Object.keys(given).some((name) => name.toLowerCase() === 'content-type');
    // The step's key, the same for its retries and when a crashed attempt runs again, so the target can drop the repeat.
    const own = Object.fromEntries(Object.entries(given).filter(([name]) => !OWN_HEADERS.has(name.toLowerCase())));
    const response = await outboundRequest(
      client,
      { method, url, headers: { ...own, ...(sent !== undefined && !hasType && { 'content-type': 'application/json' }), 'idempotency-key': stepCallKey(context.runId, context.stepKey), 'x-switchyard-attempt': String(context.attempt) }, body: sent },
      context.signal,
    );
    // Labelled JSON but not: the text as it came, for later steps to judge.
    const parsed = isJsonType(response.contentType) && response.text !== '' ? (parseJsonAnswer(response, url) ?? response.text) : response.text;
    return { output: { status: response.status, headers: response.headers, body: parsed }, cost: 0 };
  };

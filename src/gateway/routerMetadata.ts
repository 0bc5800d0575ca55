/**
 * OpenRouter's router metadata (experimental there too): with the request header `X-OpenRouter-Metadata: enabled`
 * (or `X-OpenRouter-Experimental-Metadata`), a successful chat or completions answer carries `openrouter_metadata`:
 * what was asked for, how the route was chosen, every endpoint it could have used and which one served, each
 * attempt, and the pipeline stages that changed the request or the answer. Streamed, it rides on the final usage
 * chunk. Any value but `enabled` (case ignored) means off, as on OpenRouter.
 */
import type { IncomingMessage } from 'node:http';
import { FREE_ROUTER_ID } from '../modules/catalog/autoRouter.events.js';
import { parseModelId } from '../modules/catalog/modelId.js';
import type { GenerationOutcome, PreparedGeneration } from './gateway.js';
import type { ChatMessage, ProviderError } from './types.js';

/**
 * An attempt's error as any caller may read it: an upstream's own words for a 4xx (what to fix), but not for a 5xx,
 * whose text can leak the provider's internals (hosts, credentials in a connection string): its code and status, and
 * Switchyard's own words on what was wrong, as the error the client gets (gatewayErrors' fromProviderError).
 */
const shownMessage = (error: ProviderError, provider: string): string =>
  error.status < 500 || error.upstreamMessage === undefined ? error.message : `${provider} ${error.status} ${error.code}${error.detail ? `: ${error.detail}` : ''}`;

export const wantsRouterMetadata = (req: IncomingMessage): boolean => {
  const value = req.headers['x-openrouter-metadata'] ?? req.headers['x-openrouter-experimental-metadata'];
  return typeof value === 'string' && value.trim().toLowerCase() === 'enabled';
};

/**
 * What compression cut from the conversation the selected endpoint got: messages dropped from the middle, and
 * messages whose text lost its middle (those are copies; a message kept whole is the request's own object).
 */
const compressionCut = (asked: readonly ChatMessage[], sent: readonly ChatMessage[]) => {
  const whole = new Set(asked);
  return { messages_dropped: asked.length - sent.length, messages_truncated: sent.filter((m) => !whole.has(m)).length };
};

export const routerMetadata = (prepared: PreparedGeneration, outcome: GenerationOutcome) => {
  const { plan, input } = prepared;
  const requested = input.parsed.models[0]!;
  const last = outcome.attempts.at(-1);
  // The endpoint that answered, also when its provider ended the answer with an error (that attempt's error).
  const selected = last && (last.error === null || outcome.kind === 'completed') ? last.target : null;
  const strategy = plan.router === FREE_ROUTER_ID ? 'free' : plan.router !== null ? 'auto' : selected && selected.requested !== requested ? 'fallback' : parseModelId(requested).free ? 'free' : 'direct';
  const pipeline = [
    ...(plan.targets.some((t) => t.messages !== undefined)
      ? [
          {
            type: 'context-compression',
            engine: 'middle-out',
            applied_to: plan.targets.filter((t) => t.messages !== undefined).map((t) => t.endpoint.id),
            selected: selected?.messages !== undefined,
            ...(selected?.messages && compressionCut(input.parsed.request.messages, selected.messages)),
          },
        ]
      : []),
    ...(outcome.healed ? [{ type: 'response-healing', repaired: true }] : []),
  ];
  return {
    requested,
    strategy,
    region: null,
    summary: `available=${plan.targets.length}, selected=${selected?.endpoint.provider.name ?? 'none'}${outcome.attempts.length > 1 ? `, attempts=${outcome.attempts.length}` : ''}`,
    attempt: outcome.attempts.length,
    attempts: outcome.attempts.map((a) => ({
      attempt: a.attempt,
      model: a.target.model,
      provider: a.target.endpoint.provider.name,
      endpoint: a.target.endpoint.id,
      status: a.error === null ? 'success' : 'error',
      is_byok: a.target.byok,
      latency_ms: Math.max(0, a.endedAt - a.startedAt),
      ...(a.error !== null && { error: { code: a.error.code, status: a.error.status, message: shownMessage(a.error, a.target.endpoint.provider.name) } }),
    })),
    is_byok: outcome.upstreamCost !== null,
    endpoints: {
      total: plan.targets.length,
      available: plan.targets.map((t) => ({ model: t.model, provider: t.endpoint.provider.name, endpoint: t.endpoint.id, is_byok: t.byok, selected: t === selected })),
    },
    pipeline,
    ...(last && selected !== null && { generation_time: Math.max(0, last.endedAt - last.startedAt) }),
    // Switchyard's own: the route as the auto router named it.
    ...(plan.router !== null && { router: plan.router }),
  };
};

/**
 * `POST /api/v1/messages`: Anthropic's Messages API over the gateway, for any model of the catalog. The key comes
 * as Anthropic's `x-api-key` header or as `Authorization: Bearer`; the request goes through the same prepare /
 * execute as chat/completions (routing, fallbacks, the ledger's reservation and settlement, the generation record).
 * Errors are Anthropic's body with OpenRouter's HTTP status; after the stream has started, an `event: error`.
 */
import type { IncomingMessage } from 'node:http';
import { newGenerationId } from '../../modules/generations/generation.events.js';
import { bearerOf, readJsonBody, sendError, sendJson, type RestRequest, type Route } from '../../http/rest.js';
import { applyPreset } from '../../modules/presets/presetResolution.js';
import { requireRole } from '../../modules/auth/principal.js';
import { parseChatBody } from '../chatRequest.js';
import type { JsonObject } from '../types.js';
import { answerError, anthropicErrorBody, createMessageStream, messageJson, messagesChatBody, sseEvent } from './anthropicMessages.js';
import { appAttributionOf, chatHeadersOf, idempotencyOf, streamGeneration, wholeCall, failureOf, type GatewayRouteDeps } from './sseGeneration.js';
import { routerMetadata, wantsRouterMetadata } from '../routerMetadata.js';

const PING = sseEvent({ event: 'ping', data: { type: 'ping' } });

/** Anthropic's SDK sends the key as `x-api-key` (its `authToken` as a bearer); either is accepted. */
const secretOf = (req: IncomingMessage): string | null => {
  const header = req.headers['x-api-key'];
  const key = Array.isArray(header) ? header[0] : header;
  return key !== undefined && key.trim() !== '' ? key.trim() : bearerOf(req);
};

const MESSAGES_ROUTE = '/api/v1/messages';

export const anthropicMessagesRoutes = (deps: GatewayRouteDeps): Route[] => {
  const { gateway, config, logger } = deps;
  const executeWhole = wholeCall(deps);

  const messages = async ({ req, res, requestId }: RestRequest) => {
    // Anthropic's name for the request id (x-request-id, set for every route): the only one its SDKs read.
    res.setHeader('request-id', requestId);
    const generationId = newGenerationId();
    const fail = (error: unknown) => sendError(res, error, requestId, logger, anthropicErrorBody);
    try {
      const principal = requireRole(deps.directory.authenticate(secretOf(req)), 'user');
      // A preset the body names is applied to the chat body it translates to, as on chat/completions.
      const sent = await readJsonBody(req, config.MAX_BODY_BYTES);
      const chat = applyPreset(messagesChatBody(sent), principal.accountId, gateway.presets) as JsonObject;
      // Anthropic's own beta header (its SDK's `betas`), and OpenRouter's name for it as on chat.
      const parsed = parseChatBody(chat, 'chat', chatHeadersOf(req, ['anthropic-beta', 'x-anthropic-beta']));
      const prepared = await gateway.prepare({
        generationId,
        principal,
        parsed,
        rawProvider: chat.provider ?? null,
        apiType: 'messages',
        correlationId: requestId,
        app: appAttributionOf(req),
        idempotency: idempotencyOf(req, res, MESSAGES_ROUTE, sent),
      });
      res.setHeader('x-generation-id', generationId);
      const metadata = wantsRouterMetadata(req);
      if (!parsed.stream) {
        const outcome = await executeWhole(prepared, res);
        if (outcome.kind !== 'completed' || !outcome.response) return fail(failureOf(outcome));
        // Charged as it was answered; the error is what the client is told (the SDK throws it).
        const ended = answerError(outcome);
        if (ended !== null) return fail(ended);
        const message = messageJson(outcome.response, outcome);
        return sendJson(res, 200, metadata ? { ...message, openrouter_metadata: routerMetadata(prepared, outcome) } : message);
      }

      const events = createMessageStream({ id: generationId, model: parsed.models[0]!, inputTokensEstimate: parsed.promptTokens });
      const { outcome, sse } = await streamGeneration({
        res,
        gateway,
        prepared,
        generationId,
        shutdown: deps.shutdown,
        keys: deps.directory,
        keepAliveMs: config.GATEWAY_KEEPALIVE_MS,
        stallMs: config.GATEWAY_STREAM_IDLE_TIMEOUT_MS,
        keepAliveText: PING,
        onChunk: (chunk, out) => {
          for (const event of events.push(chunk)) out.write(sseEvent(event));
        },
      });
      if (outcome.kind === 'cancelled' || sse.gone) return;
      if (outcome.kind === 'failed') {
        if (!res.headersSent) return fail(outcome.error);
        sse.end(sseEvent({ event: 'error', data: anthropicErrorBody(outcome.error!, requestId) }));
        return;
      }
      // The provider ended the answer with an error after its first tokens: the stream ends as a cut one does.
      const ended = answerError(outcome, events.nativeFinishReason());
      if (ended !== null) {
        if (!res.headersSent) return fail(ended);
        sse.end(sseEvent({ event: 'error', data: anthropicErrorBody(ended, requestId) }));
        return;
      }
      const closing = events.end(outcome);
      // Router metadata rides on the terminal message_stop event, as on OpenRouter.
      const stop = closing.at(-1)!;
      if (metadata) closing[closing.length - 1] = { ...stop, data: { ...stop.data, openrouter_metadata: routerMetadata(prepared, outcome) } };
      for (const event of closing) sse.write(sseEvent(event));
      sse.end();
    } catch (error) {
      fail(error);
    }
  };

  return [{ method: 'POST', path: MESSAGES_ROUTE, handler: messages, renderError: anthropicErrorBody }];
};

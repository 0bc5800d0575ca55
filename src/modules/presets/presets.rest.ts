import { messagesChatBody } from '../../gateway/skins/anthropicMessages.js';
import { chatBodyOf } from '../../gateway/skins/openaiResponses.js';
import { readJsonBody, requireUser, sendJson, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
import type { WriteBudget } from '../auth/writeBudget.js';
import { requireFullKey } from '../auth/principal.js';
import type { PresetsApi } from './presets.api.js';
import type { PresetEntry } from './presetResolution.js';

/** OpenRouter's preset object with its designated (latest) version. */
const presetJson = (p: PresetEntry) => ({
  id: p.presetId,
  slug: p.slug,
  name: p.name,
  description: null,
  status: 'active',
  status_updated_at: null,
  creator_user_id: p.accountId,
  workspace_id: null,
  created_at: p.createdAt,
  updated_at: p.updatedAt,
  designated_version_id: p.versionId,
  designated_version: {
    id: p.versionId,
    preset_id: p.presetId,
    creator_id: p.accountId,
    version: p.version,
    config: p.config,
    system_prompt: p.systemPrompt,
    created_at: p.updatedAt,
    updated_at: p.updatedAt,
  },
});

/** A sample body of each API as the chat body it means (its system prompt as system messages), by path suffix. */
const SAMPLES: readonly (readonly [suffix: string, toChat: (body: unknown) => unknown])[] = [
  ['chat/completions', (body) => body],
  ['messages', messagesChatBody],
  ['responses', (body) => chatBodyOf(body).chat],
];

/**
 * OpenRouter's `POST /api/v1/presets/{slug}/chat/completions` (and `/messages`, `/responses`): a sample request of
 * that API becomes a preset, or a new version of it. Its preset fields are kept (messages, stream and the like are
 * ignored), its system prompt (system messages, Anthropic's `system`, the Responses `instructions`) becomes the
 * preset's; nothing is sent to a model. A sample is checked as a request of its API first. Saving changes what every
 * key of the account sends through the preset, so it needs a key that is not restricted (403 otherwise); naming the
 * preset in a request (`@preset/slug`) is open to any key of the account. A save takes one of the account's writes
 * (WRITES_PER_MINUTE).
 */
export const presetRoutes = (deps: { presets: PresetsApi; directory: Pick<AuthDirectory, 'authenticate'>; maxBodyBytes: number; writes: WriteBudget }): Route[] =>
  SAMPLES.map(([suffix, toChat]) => ({
    method: 'POST',
    path: `/api/v1/presets/:slug/${suffix}`,
    handler: async ({ req, res, params, requestId }) => {
      const principal = requireFullKey(requireUser(deps.directory, req));
      deps.writes.take(principal);
      const body = toChat(await readJsonBody(req, deps.maxBodyBytes));
      const preset = await deps.presets.saveFromSample({ principal, requestId }, params['slug']!, body);
      sendJson(res, 200, { data: presetJson(preset) });
    },
  }));

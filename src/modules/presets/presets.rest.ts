import { readJsonBody, requirePrincipal, sendJson, type Route } from '../../http/rest.js';
import type { AuthDirectory } from '../auth/authDirectory.js';
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

/**
 * OpenRouter's `POST /api/v1/presets/{slug}/chat/completions`: a sample chat request becomes a preset, or a new
 * version of it. Its preset fields are kept (messages, stream and the like are ignored), its system messages become
 * the system prompt; nothing is sent to a model.
 */
export const presetRoutes = (deps: { presets: PresetsApi; directory: Pick<AuthDirectory, 'authenticate'>; maxBodyBytes: number }): Route[] => [
  {
    method: 'POST',
    path: '/api/v1/presets/:slug/chat/completions',
    handler: async ({ req, res, params, requestId }) => {
      const principal = requirePrincipal(deps.directory, req);
      const body = await readJsonBody(req, deps.maxBodyBytes);
      const preset = await deps.presets.saveFromSample({ principal, requestId }, params['slug']!, body);
      sendJson(res, 200, { data: presetJson(preset) });
    },
  },
];

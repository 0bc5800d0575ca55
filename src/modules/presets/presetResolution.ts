/**
 * Using a preset in a request: `model: "@preset/slug"`, `preset: "slug"`, or `model: "vendor/model@preset/slug"`
 * (the model part wins over the preset's model). The request's fields are shallow-merged over the preset's: a
 * field the request sends (not null) replaces the preset's whole field (a `provider` object too). The preset's
 * system prompt comes first, as a system message of its own, before the request's messages (a system message of
 * the request is kept after it). Pure: the body goes on to the chat request parser, which checks the result.
 */
import { GatewayError, invalidRequest } from '../../gateway/gatewayErrors.js';
import { PRESET_SLUG, type PresetConfig } from './preset.events.js';

export const PRESET_MARK = '@preset/';

/** A preset as requests use it: its latest version. */
export interface PresetEntry {
  readonly presetId: string;
  readonly accountId: string;
  readonly slug: string;
  readonly name: string;
  readonly version: number;
  readonly versionId: string;
  readonly config: PresetConfig;
  readonly systemPrompt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface PresetLookup {
  /** The account's preset of this slug (latest version), if it has one. */
  preset(accountId: string, slug: string): PresetEntry | undefined;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The body with the account's preset applied; the same object when it names none (the common case, no copy). */
export const applyPreset = (body: unknown, accountId: string, lookup: PresetLookup): unknown => {
  if (!isObject(body)) return body;
  const { model, preset } = body;
  const at = typeof model === 'string' ? model.indexOf(PRESET_MARK) : -1;
  if (Array.isArray(body.models) && body.models.some((m) => typeof m === 'string' && m.includes(PRESET_MARK))) {
    throw invalidRequest('A preset cannot be one of models: send model "@preset/slug" or preset "slug" (the preset may hold the models list)', { param: 'models' });
  }
  if (preset == null && at === -1) return body;
  if (preset != null && typeof preset !== 'string') throw invalidRequest('preset must be the slug of one of your presets (a string)', { param: 'preset' });
  let slug: string;
  let override: string | null = null;
  const param = at === -1 ? 'preset' : 'model';
  if (at !== -1) {
    slug = (model as string).slice(at + PRESET_MARK.length);
    if (preset != null && preset !== slug) throw invalidRequest(`Name one preset: model says @preset/${slug.slice(0, 80)} and preset says ${preset.slice(0, 80)}`, { param: 'preset' });
    if (at > 0) override = (model as string).slice(0, at);
  } else slug = preset as string;
  if (!PRESET_SLUG.test(slug)) {
    throw invalidRequest(`${JSON.stringify(slug.slice(0, 80))} is not a preset slug (1 to 64 lowercase letters, digits and -)`, { param });
  }
  const entry = lookup.preset(accountId, slug);
  if (!entry) {
    throw new GatewayError(404, 'not_found', `Preset ${slug} not found: create it with createPreset or POST /api/v1/presets/${slug}/chat/completions`, { param, preset: slug });
  }

  const merged: Record<string, unknown> = { ...entry.config };
  for (const [field, value] of Object.entries(body)) if (value != null && field !== 'preset') merged[field] = value;
  // The answer's token limit is one field under two names (max_tokens is max_completion_tokens' deprecated alias):
  // the request's, under either, replaces the preset's, rather than meeting it as two different limits (a 400).
  if (body.max_completion_tokens != null && body.max_tokens == null) delete merged.max_tokens;
  if (body.max_tokens != null && body.max_completion_tokens == null) delete merged.max_completion_tokens;
  if (at !== -1) {
    // The model named the preset: the part before `@preset/` if any, else the preset's own model (or none).
    if (override !== null) merged.model = override;
    else if (entry.config.model !== undefined) merged.model = entry.config.model;
    else delete merged.model;
  }
  if (merged.model == null && merged.models == null) {
    throw invalidRequest(`Preset ${slug} names no model: send one as "vendor/model@preset/${slug}" or add a model to the preset`, { param, preset: slug });
  }
  if (entry.systemPrompt !== null && Array.isArray(merged.messages)) merged.messages = [{ role: 'system', content: entry.systemPrompt }, ...(merged.messages as unknown[])];
  return merged;
};

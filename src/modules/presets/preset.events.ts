/**
 * The `preset-{accountId}.{slug}` stream: one named preset of an account and its versions. The stream id is the
 * account and the slug, so a slug is unique per account without a lookup, and another account's preset of the same
 * slug is another stream. A deleted preset's slug may be created again: the stream goes on with a new preset id and
 * versions counting from 1 again.
 */
import type { JsonValue } from '../../eventStore/eventStore.js';

/** What a preset holds of a chat request: the fields of PRESET_FIELDS (presetConfig.ts), as the request spells them. */
export type PresetConfig = { readonly [field: string]: JsonValue };

type PresetRef = { readonly presetId: string; readonly accountId: string; readonly slug: string; readonly at: string };

export type PresetCreated = { readonly type: 'PresetCreated'; readonly data: PresetRef & { readonly name: string; readonly createdBy: string } };
/** A new version: the whole config and system prompt (a version replaces the previous one, it is not a patch). */
export type PresetVersionAdded = {
  readonly type: 'PresetVersionAdded';
  readonly data: PresetRef & { readonly versionId: string; readonly version: number; readonly config: PresetConfig; readonly systemPrompt: string | null; readonly createdBy: string };
};
export type PresetRenamed = { readonly type: 'PresetRenamed'; readonly data: PresetRef & { readonly name: string } };
export type PresetDeleted = { readonly type: 'PresetDeleted'; readonly data: PresetRef };

export type PresetEvent = PresetCreated | PresetVersionAdded | PresetRenamed | PresetDeleted;

/** Slugs: what a URL segment and `@preset/…` in a model id carry unescaped. */
export const PRESET_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export const PRESET_CATEGORY = 'preset';
export const presetStream = (accountId: string, slug: string): string => `${PRESET_CATEGORY}-${accountId}.${slug}`;

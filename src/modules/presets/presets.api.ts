import { ConflictError, NotFoundError, UnauthenticatedError, ValidationError } from '../../errors.js';
import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { handleCommand } from '../../eventStore/handleCommand.js';
import { newId } from '../../ids.js';
import type { Logger } from '../../logger.js';
import { isWellFormedText, NOT_WELL_FORMED } from '../../wellFormedText.js';
import type { Caller, Principal } from '../auth/principal.js';
import type { CatalogApi } from '../catalog/catalog.api.js';
import { presetDecider, type PresetCommand, type PresetState } from './preset.decider.js';
import { PRESET_SLUG, presetStream, type PresetConfig, type PresetEvent } from './preset.events.js';
import { checkPresetConfig, checkSystemPrompt, PRESET_LIMITS, systemPromptOf } from './presetConfig.js';
import type { PresetEntry } from './presetResolution.js';
import type { PresetView } from './presetView.js';

export interface PresetVersion {
  readonly id: string;
  readonly version: number;
  readonly config: PresetConfig;
  readonly systemPrompt: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface PresetInput {
  readonly config: unknown;
  readonly systemPrompt?: string | null;
  readonly name?: string | null;
}

const principalOf = (caller: Caller): Principal => {
  if (!caller.principal) throw new UnauthenticatedError();
  return caller.principal;
};

const checkSlug = (slug: string): void => {
  if (!PRESET_SLUG.test(slug)) {
    throw new ValidationError(`Invalid preset slug ${JSON.stringify(slug.slice(0, 80))}: 1 to 64 lowercase letters, digits and -, not starting or ending with -`, { field: 'slug', reason: 'bad_slug' });
  }
};

const checkName = (name: string): string => {
  if (!isWellFormedText(name)) throw new ValidationError(`A preset name ${NOT_WELL_FORMED}`, { field: 'name' });
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.length > PRESET_LIMITS.maxNameChars) throw new ValidationError(`A preset name is 1 to ${PRESET_LIMITS.maxNameChars} characters`, { field: 'name' });
  return trimmed;
};

/**
 * The presets module: an account's named, versioned request configurations (model or models, provider preferences,
 * system prompt, sampling). Any member of the account (and its API keys) manages them; another account's preset is,
 * to the caller, a missing one. Commands answer once the in-memory view the gateway resolves presets with holds what
 * they decided: a chat sent after the answer uses it.
 */
export const createPresetsApi = (deps: { eventStore: EventStore; view: PresetView; catalog: Pick<CatalogApi, 'modelProblem'>; logger: Logger; now: () => Date }) => {
  const { view } = deps;

  const execute = async (principal: Principal, caller: Caller, command: PresetCommand) => {
    const stream = presetStream(command.data.accountId, command.data.slug);
    const result = await handleCommand(deps.eventStore, stream, presetDecider, command, {
      metadata: { actor: principal.accountId, correlationId: caller.requestId, at: command.data.at },
    });
    if (result.position !== null && !(await view.waitFor(result.position))) deps.logger.warn({ stream, position: result.position }, 'the preset view is lagging behind a preset command');
    return result;
  };

  /** The preset a command decided, from its events and state (never re-read). */
  const decided = (events: readonly PresetEvent[], state: PresetState): PresetEntry => {
    const added = events.find((e) => e.type === 'PresetVersionAdded');
    if (state.status !== 'active' || added?.type !== 'PresetVersionAdded') throw new Error('a preset command decided no version');
    const { versionId, version, config, systemPrompt, at } = added.data;
    return { presetId: state.presetId, accountId: state.accountId, slug: state.slug, name: state.name, version, versionId, config, systemPrompt, createdAt: state.createdAt, updatedAt: at };
  };

  const refuseOverLimit = (accountId: string, slug: string) => {
    // From the view: two creates racing at the limit may both pass, which a soft limit tolerates.
    if (view.preset(accountId, slug) === undefined && view.count(accountId) >= PRESET_LIMITS.maxPresetsPerAccount) {
      throw new ConflictError(`The account has the maximum of ${PRESET_LIMITS.maxPresetsPerAccount} presets; delete one first`, { reason: 'too_many_presets', limit: PRESET_LIMITS.maxPresetsPerAccount });
    }
  };

  const base = (caller: Caller, slug: string) => {
    const principal = principalOf(caller);
    checkSlug(slug);
    return { principal, ref: { accountId: principal.accountId, slug, actor: principal.accountId, at: deps.now().toISOString() } };
  };

  return {
    /** Create a preset (version 1). */
    async create(caller: Caller, slug: string, input: PresetInput & { readonly name: string }): Promise<PresetEntry> {
      const { principal, ref } = base(caller, slug);
      const name = checkName(input.name);
      const config = checkPresetConfig(input.config, 'strict', deps.catalog.modelProblem);
      const systemPrompt = checkSystemPrompt(input.systemPrompt);
      refuseOverLimit(ref.accountId, slug);
      const { events, state } = await execute(principal, caller, {
        type: 'CreatePreset',
        data: { ...ref, presetId: newId('pre'), versionId: newId('prv'), name, config, systemPrompt },
      });
      return decided(events, state);
    },
    /** A new version (the whole config and system prompt); `name`, when given, renames it. */
    async update(caller: Caller, slug: string, input: PresetInput): Promise<PresetEntry> {
      const { principal, ref } = base(caller, slug);
      const config = checkPresetConfig(input.config, 'strict', deps.catalog.modelProblem);
      const systemPrompt = checkSystemPrompt(input.systemPrompt);
      const { events, state } = await execute(principal, caller, {
        type: 'AddPresetVersion',
        data: { ...ref, versionId: newId('prv'), config, systemPrompt, maxVersions: PRESET_LIMITS.maxVersions, ...(input.name != null && { name: checkName(input.name) }) },
      });
      return decided(events, state);
    },
    /**
     * OpenRouter's create-from-a-sample: the request body's preset fields become the config (others, such as
     * messages and stream, are ignored), its system messages the system prompt; a new preset, or a new version.
     */
    async saveFromSample(caller: Caller, slug: string, body: unknown): Promise<PresetEntry> {
      const { principal, ref } = base(caller, slug);
      const config = checkPresetConfig(body, 'overlap', deps.catalog.modelProblem);
      const systemPrompt = checkSystemPrompt(systemPromptOf(body));
      refuseOverLimit(ref.accountId, slug);
      const { events, state } = await execute(principal, caller, {
        type: 'SavePreset',
        data: { ...ref, presetId: newId('pre'), versionId: newId('prv'), name: slug, config, systemPrompt, maxVersions: PRESET_LIMITS.maxVersions },
      });
      return decided(events, state);
    },
    async delete(caller: Caller, slug: string): Promise<{ slug: string }> {
      const { principal, ref } = base(caller, slug);
      await execute(principal, caller, { type: 'DeletePreset', data: ref });
      return { slug };
    },
    /** The caller's presets at their latest versions, by slug. */
    list: (caller: Caller): readonly PresetEntry[] => view.list(principalOf(caller).accountId),
    /** One of the caller's presets, or NOT_FOUND. */
    get(caller: Caller, slug: string): PresetEntry {
      const { accountId } = principalOf(caller);
      checkSlug(slug);
      const entry = view.preset(accountId, slug);
      if (!entry) throw new NotFoundError('Preset', slug);
      return entry;
    },
    /** Every version of a preset, oldest first (from its stream: versions of an earlier preset of the slug excluded). */
    async versions(preset: PresetEntry): Promise<PresetVersion[]> {
      const events = (await deps.eventStore.readStream(presetStream(preset.accountId, preset.slug))) as RecordedEvent<PresetEvent>[];
      return events.flatMap((e) =>
        e.type === 'PresetVersionAdded' && e.data.presetId === preset.presetId
          ? [{ id: e.data.versionId, version: e.data.version, config: e.data.config, systemPrompt: e.data.systemPrompt, createdAt: e.data.at, createdBy: e.data.createdBy }]
          : [],
      );
    },
  };
};

export type PresetsApi = ReturnType<typeof createPresetsApi>;

import { ConflictError, NotFoundError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { PresetConfig, PresetEvent } from './preset.events.js';

export type PresetState =
  | { readonly status: 'none' | 'deleted' }
  | {
      readonly status: 'active';
      readonly presetId: string;
      readonly accountId: string;
      readonly slug: string;
      readonly name: string;
      readonly version: number;
      readonly createdAt: string;
    };

type Ref = { readonly accountId: string; readonly slug: string; readonly actor: string; readonly at: string };
type Version = { readonly versionId: string; readonly config: PresetConfig; readonly systemPrompt: string | null };

export type PresetCommand =
  | { readonly type: 'CreatePreset'; readonly data: Ref & Version & { readonly presetId: string; readonly name: string } }
  /** A new version; `name`, when given, renames the preset too. */
  | { readonly type: 'AddPresetVersion'; readonly data: Ref & Version & { readonly name?: string; readonly maxVersions: number } }
  /** Create it, or add a version if it exists (OpenRouter's create-from-a-sample-request). */
  | { readonly type: 'SavePreset'; readonly data: Ref & Version & { readonly presetId: string; readonly name: string; readonly maxVersions: number } }
  | { readonly type: 'DeletePreset'; readonly data: Ref };

const created = (data: Ref & Version & { readonly presetId: string; readonly name: string }): PresetEvent[] => {
  const ref = { presetId: data.presetId, accountId: data.accountId, slug: data.slug, at: data.at };
  return [
    { type: 'PresetCreated', data: { ...ref, name: data.name, createdBy: data.actor } },
    { type: 'PresetVersionAdded', data: { ...ref, versionId: data.versionId, version: 1, config: data.config, systemPrompt: data.systemPrompt, createdBy: data.actor } },
  ];
};

const versionAdded = (state: Extract<PresetState, { status: 'active' }>, data: Ref & Version & { readonly name?: string; readonly maxVersions: number }): PresetEvent[] => {
  if (state.version >= data.maxVersions) {
    throw new ConflictError(`Preset ${data.slug} has the maximum of ${data.maxVersions} versions; delete it and create it again`, { reason: 'too_many_versions', limit: data.maxVersions });
  }
  const ref = { presetId: state.presetId, accountId: state.accountId, slug: state.slug, at: data.at };
  return [
    ...(data.name !== undefined && data.name !== state.name ? [{ type: 'PresetRenamed' as const, data: { ...ref, name: data.name } }] : []),
    { type: 'PresetVersionAdded', data: { ...ref, versionId: data.versionId, version: state.version + 1, config: data.config, systemPrompt: data.systemPrompt, createdBy: data.actor } },
  ];
};

export const presetDecider: Decider<PresetState, PresetCommand, PresetEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'PresetCreated': {
        const { presetId, accountId, slug, name, at } = event.data;
        return { status: 'active', presetId, accountId, slug, name, version: 0, createdAt: at };
      }
      case 'PresetVersionAdded':
        return state.status === 'active' ? { ...state, version: event.data.version } : state;
      case 'PresetRenamed':
        return state.status === 'active' ? { ...state, name: event.data.name } : state;
      case 'PresetDeleted':
        return { status: 'deleted' };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'CreatePreset':
        if (state.status === 'active') throw new ConflictError(`A preset with slug ${command.data.slug} already exists; update it to add a version`, { reason: 'preset_exists', slug: command.data.slug });
        return created(command.data);
      case 'AddPresetVersion':
        if (state.status !== 'active') throw new NotFoundError('Preset', command.data.slug);
        return versionAdded(state, command.data);
      case 'SavePreset': {
        // The name is the new preset's; a version of an existing one keeps its name.
        const { name: _name, ...version } = command.data;
        return state.status === 'active' ? versionAdded(state, version) : created(command.data);
      }
      case 'DeletePreset':
        if (state.status !== 'active') throw new NotFoundError('Preset', command.data.slug);
        return [{ type: 'PresetDeleted', data: { presetId: state.presetId, accountId: state.accountId, slug: state.slug, at: command.data.at } }];
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};

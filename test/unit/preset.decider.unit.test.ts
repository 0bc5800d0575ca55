import { describe, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../src/errors.js';
import { presetDecider } from '../../src/modules/presets/preset.decider.js';
import type { PresetEvent } from '../../src/modules/presets/preset.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const spec = deciderSpec(presetDecider);
const ref = { accountId: 'acc_1', slug: 'writer', actor: 'acc_1', at: '2026-01-01T00:00:00.000Z' };
const key = { presetId: 'pre_1', accountId: 'acc_1', slug: 'writer', at: ref.at };
const created: PresetEvent[] = [
  { type: 'PresetCreated', data: { ...key, name: 'Writer', createdBy: 'acc_1' } },
  { type: 'PresetVersionAdded', data: { ...key, versionId: 'prv_1', version: 1, config: { model: 'a/b' }, systemPrompt: 'hi', createdBy: 'acc_1' } },
];
const v2 = { versionId: 'prv_2', config: { model: 'a/c' }, systemPrompt: null };

describe('preset decider', () => {
  it('creates a preset at version 1', () =>
    spec([]).when({ type: 'CreatePreset', data: { ...ref, presetId: 'pre_1', versionId: 'prv_1', name: 'Writer', config: { model: 'a/b' }, systemPrompt: 'hi' } }).then(created));

  it('refuses to create a slug that exists', () =>
    spec(created).when({ type: 'CreatePreset', data: { ...ref, presetId: 'pre_2', versionId: 'prv_2', name: 'Other', config: {}, systemPrompt: null } }).thenThrows(ConflictError, /already exists/));

  it('adds the next version, renaming only when the name changes', () => {
    spec(created)
      .when({ type: 'AddPresetVersion', data: { ...ref, ...v2, maxVersions: 10 } })
      .then([{ type: 'PresetVersionAdded', data: { ...key, ...v2, version: 2, createdBy: 'acc_1' } }]);
    spec(created)
      .when({ type: 'AddPresetVersion', data: { ...ref, ...v2, name: 'New name', maxVersions: 10 } })
      .then([
        { type: 'PresetRenamed', data: { ...key, name: 'New name' } },
        { type: 'PresetVersionAdded', data: { ...key, ...v2, version: 2, createdBy: 'acc_1' } },
      ]);
  });

  it('refuses a version past the limit, and versions of a missing or deleted preset', () => {
    spec(created).when({ type: 'AddPresetVersion', data: { ...ref, ...v2, maxVersions: 1 } }).thenThrows(ConflictError, /maximum of 1 versions/);
    spec([]).when({ type: 'AddPresetVersion', data: { ...ref, ...v2, maxVersions: 10 } }).thenThrows(NotFoundError);
    spec([...created, { type: 'PresetDeleted', data: key }]).when({ type: 'DeletePreset', data: ref }).thenThrows(NotFoundError);
  });

  it('saving a sample adds a version to an existing preset, keeping its name, or creates one', () => {
    const save = { type: 'SavePreset' as const, data: { ...ref, ...v2, presetId: 'pre_9', name: 'writer', maxVersions: 10 } };
    spec(created).when(save).then([{ type: 'PresetVersionAdded', data: { ...key, ...v2, version: 2, createdBy: 'acc_1' } }]);
    const again = { presetId: 'pre_9', accountId: 'acc_1', slug: 'writer', at: ref.at };
    spec([...created, { type: 'PresetDeleted', data: key }])
      .when(save)
      .then([
        { type: 'PresetCreated', data: { ...again, name: 'writer', createdBy: 'acc_1' } },
        { type: 'PresetVersionAdded', data: { ...again, ...v2, version: 1, createdBy: 'acc_1' } },
      ]);
  });
});

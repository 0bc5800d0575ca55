import type { EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import { followEvents } from '../../eventStore/follower.js';
import type { FollowStatus } from '../../eventStore/followStatus.js';
import type { Logger } from '../../logger.js';
import { PRESET_CATEGORY, type PresetEvent } from './preset.events.js';
import type { PresetEntry, PresetLookup } from './presetResolution.js';

export interface PresetView extends PresetLookup {
  start(): Promise<void>;
  /** The account's presets, by slug. */
  list(accountId: string): readonly PresetEntry[];
  count(accountId: string): number;
  waitFor(position: number, timeoutMs?: number): Promise<boolean>;
  status(): FollowStatus;
  stop(): Promise<void>;
}

type Draft = Omit<PresetEntry, 'version' | 'versionId' | 'config' | 'systemPrompt'> & Partial<Pick<PresetEntry, 'version' | 'versionId' | 'config' | 'systemPrompt'>>;

/**
 * Every account's presets at their latest version, in memory, fed by the event store like the routing catalog:
 * the gateway resolves a preset without a read-store round trip, and a preset command answers once this view holds
 * what it decided, so the caller's next chat uses it. Every process keeps its own copy.
 */
export const createPresetView = (deps: { eventStore: EventStore; logger: Logger }): PresetView => {
  const byAccount = new Map<string, Map<string, Draft>>();
  const complete = (draft: Draft | undefined): PresetEntry | undefined => (draft?.version === undefined ? undefined : (draft as PresetEntry));

  const apply = (recorded: RecordedEvent) => {
    const event = recorded as RecordedEvent<PresetEvent>;
    const { accountId, slug } = event.data;
    const presets = byAccount.get(accountId);
    switch (event.type) {
      case 'PresetCreated': {
        const { presetId, name, at } = event.data;
        const own = presets ?? new Map<string, Draft>();
        own.set(slug, { presetId, accountId, slug, name, createdAt: at, updatedAt: at });
        byAccount.set(accountId, own);
        break;
      }
      case 'PresetVersionAdded': {
        const draft = presets?.get(slug);
        if (!draft) break;
        const { version, versionId, config, systemPrompt, at } = event.data;
        presets!.set(slug, { ...draft, version, versionId, config, systemPrompt, updatedAt: at });
        break;
      }
      case 'PresetRenamed': {
        const draft = presets?.get(slug);
        if (draft) presets!.set(slug, { ...draft, name: event.data.name, updatedAt: event.data.at });
        break;
      }
      case 'PresetDeleted':
        presets?.delete(slug);
        break;
      default: {
        const _never: never = event;
      }
    }
  };

  const follower = followEvents(deps.eventStore, { categories: [PRESET_CATEGORY] }, apply, { name: 'presets', logger: deps.logger });

  return {
    start: () => follower.start(),
    preset: (accountId, slug) => complete(byAccount.get(accountId)?.get(slug)),
    list: (accountId) =>
      [...(byAccount.get(accountId)?.values() ?? [])]
        .map(complete)
        .filter((entry): entry is PresetEntry => entry !== undefined)
        .sort((a, b) => (a.slug < b.slug ? -1 : 1)),
    count: (accountId) => byAccount.get(accountId)?.size ?? 0,
    waitFor: (position, timeoutMs) => follower.waitFor(position, timeoutMs),
    status: () => follower.status(),
    stop: () => follower.stop(),
  };
};

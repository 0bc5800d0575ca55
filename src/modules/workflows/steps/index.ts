/**
 * The step runners of searches and side-effect actions, built from the module APIs they call (the control steps
 * and `action.respond` / `action.transform` are the executor's), and the input schemas they parse. Wired by the
 * composition root with the executor.
 */
import type { z } from 'zod';
import type { CatalogApi } from '../../catalog/catalog.api.js';
import type { GenerationsApi } from '../../generations/generation.api.js';
import type { EventStore } from '../../../eventStore/eventStore.js';
import type { OutboundPolicy } from '../../outbound/outboundPolicy.js';
import type { StepType } from '../definition.js';
import type { SecretsApi } from '../secrets.js';
import { actionEmit, emitInput } from './emit.js';
import { actionGithubComment, commentInput } from './github.js';
import { actionHttp, createOutboundHttp, httpAction, type OutboundHttpLimits } from './http.js';
import { actionModel, modelInput } from './model.js';
import { httpSearch, modelCriteria, searchHttp, searchModels } from './search.js';
import type { StepRunners } from './step.js';
import type { TablesApi } from '../../tables/tables.api.js';
import { searchEntries, searchInput, storeEntry, storeInput, upsertEntry, upsertInput } from './tables.js';

/**
 * The schema each runner parses its step's input with (parseInput), by step type: a definition's inputs are checked
 * against them when it is saved (stepInputs.ts). The other steps take any JSON, or definition.ts checks their input.
 */
export const STEP_INPUT_SCHEMAS: Partial<Record<StepType, z.ZodType>> = {
  'search.models': modelCriteria,
  'search.http': httpSearch,
  'action.model': modelInput,
  'action.http': httpAction,
  'search.entries': searchInput,
  'action.storeEntry': storeInput,
  'action.upsertEntry': upsertInput,
  'action.emit': emitInput,
  'action.githubComment': commentInput,
};

export const createStepRunners = (deps: {
  catalog: Pick<CatalogApi, 'listModels'>;
  generations: Pick<GenerationsApi, 'send' | 'recall'>;
  /** The workflow owner's tables (search.entries, action.storeEntry, action.upsertEntry). */
  tables: Pick<TablesApi, 'owned'>;
  /** The gateway's outbound address policy (OUTBOUND_ALLOW): workflow HTTP steps are never trusted. */
  outbound: Pick<OutboundPolicy, 'checkUrl' | 'lookup'>;
  httpLimits?: Partial<OutboundHttpLimits>;
  /** Custom events (`action.emit`) are appended here. */
  eventStore: EventStore;
  now: () => Date;
  secrets: Pick<SecretsApi, 'open'>;
  /** GITHUB_API_URL: operator configuration, so trusted (steps/github.ts). */
  githubApiUrl: string;
}): StepRunners => {
  const http = createOutboundHttp(deps.outbound, deps.httpLimits);
  return {
    'search.models': searchModels(deps.catalog),
    'search.http': searchHttp(http),
    'action.model': actionModel(deps.generations),
    'action.http': actionHttp(http),
    'search.entries': searchEntries(deps.tables.owned),
    'action.storeEntry': storeEntry(deps.tables.owned),
    'action.upsertEntry': upsertEntry(deps.tables.owned),
    'action.emit': actionEmit({ eventStore: deps.eventStore, now: deps.now }),
    'action.githubComment': actionGithubComment({ secrets: deps.secrets, baseUrl: deps.githubApiUrl }),
  };
};

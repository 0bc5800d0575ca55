/**
 * The `entry` trigger: a run per entry event (EntryAdded for `on: "insert"`, EntryUpdated for `"update"`) of a table
 * whose account has enabled workflows triggered by it. Driven by the event log from a durable checkpoint (kept in
 * the read store), so entries written while the server was down fire once it is back. Delivery is at least once (a
 * crash between a start and the checkpoint replays the event); the run id is derived from the entry event and the
 * workflow, and runs.start answers the existing run for a taken id, so a replay never starts a second run.
 */
import { createHash } from 'node:crypto';
import { Query } from 'mingo';
import { WORKFLOWS, type WorkflowDoc } from '../../../../projections/workflows.js';
import { DomainError } from '../../../errors.js';
import type { EventStore, JsonValue, RecordedEvent } from '../../../eventStore/eventStore.js';
import type { Logger } from '../../../logger.js';
import type { ReadStore } from '../../../readStore/readStore.js';
import { entryFilter } from '../../tables/entryFilter.js';
import { TABLE_CATEGORY, type EntryAdded, type EntryUpdated } from '../../tables/table.events.js';
import type { WorkflowDefinition } from '../definition.js';
import type { RunsApi, StartRequest } from '../run.api.js';
import type { WorkflowsApi } from '../workflow.api.js';
import { causeOf } from './chain.js';
import { refusedFilterWarning } from './refusedFilter.js';
import { followForTrigger } from './triggerFollower.js';

/** The checkpoint's name in the read store (beside the projections'). */
export const ENTRY_TRIGGER_CHECKPOINT = 'trigger:entry';

type EntryEvent = RecordedEvent<EntryAdded | EntryUpdated>;

/** The run an entry event starts for a workflow: the same event and workflow, the same run. */
export const entryRunId = (event: Pick<RecordedEvent, 'stream' | 'revision'>, workflowId: string): string =>
  `run_${createHash('sha256').update(`entry\n${event.stream}\n${event.revision}\n${workflowId}`).digest('hex').slice(0, 40)}`;

/** What the run's `trigger` is: the entry with its fields at the top level of `trigger.entry`. */
export const entryTriggerPayload = (event: EntryEvent): JsonValue => {
  const { table, entryId, entry, at } = event.data;
  const createdAt = event.type === 'EntryAdded' ? at : event.data.createdAt;
  return { type: 'entry', table, on: event.type === 'EntryAdded' ? 'insert' : 'update', entry: { ...entry, id: entryId, createdAt, updatedAt: at } };
};

/**
 * Whether the trigger's filter holds for the entry: the same rewritten filter as `entries` runs, on the same document
 * shape, checked again each time. A filter that cannot be run (one saved before a check that now refuses it, such as
 * a regex with a lookahead that would hold the thread for ever) matches nothing, with a warning: it must not stop the
 * follower every account's entry triggers share, nor hang the process each time it replays the entry.
 */
const matches = (filter: Record<string, unknown> | undefined, event: EntryEvent, createdAt: string, refused: (error: unknown) => void): boolean => {
  if (filter === undefined) return true;
  const doc = { _id: event.data.entryId, data: event.data.entry, createdAt, updatedAt: event.data.at };
  let checked: Record<string, unknown>;
  try {
    checked = entryFilter(filter);
  } catch (error) {
    refused(error);
    return false;
  }
  try {
    return new Query(checked, { scriptEnabled: false }).test(doc);
  } catch {
    return false;
  }
};

const BATCH = 200;

export const createEntryTrigger = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  runs: Pick<RunsApi, 'startMany'>;
  workflows: Pick<WorkflowsApi, 'ownerOf'>;
  logger: Logger;
}) => {
  const workflows = deps.readStore.collection<WorkflowDoc>(WORKFLOWS);
  const warnRefused = refusedFilterWarning(deps.logger, 'entry trigger');
  const chains = { eventStore: deps.eventStore, ownerOf: deps.workflows.ownerOf };

  /**
   * Start the runs a batch of entry events calls for, together (runs.startMany), in log order. A refusal (disabled
   * since, a bad payload) is logged and passed; the store being away fails the batch, which is delivered again (the
   * run ids it started are taken, so those are answered, not started twice).
   */
  const fire = async (events: readonly EntryEvent[]): Promise<void> => {
    const byAccount = new Map<string, Promise<WorkflowDoc[]>>();
    const candidatesOf = (accountId: string) => {
      let found = byAccount.get(accountId);
      if (found === undefined) byAccount.set(accountId, (found = workflows.find({ accountId, triggerType: 'entry', status: 'enabled' })));
      return found;
    };
    const requests: StartRequest[] = [];
    const sources: { event: EntryEvent; workflowId: string }[] = [];
    for (const event of events) {
      const on = event.type === 'EntryAdded' ? 'insert' : 'update';
      const candidates = await candidatesOf(event.data.accountId);
      if (candidates.length === 0) continue;
      const createdAt = event.type === 'EntryAdded' ? event.data.at : event.data.createdAt;
      // An entry a run's step wrote (the engine records the run as its causationId; a correlation id may be a client's
      // X-Request-Id, so it is never read as a run) starts runs one deeper in that run's chain, under that run's key
      // (which the step's events also record as their keyId); one a key wrote over GraphQL or REST (recorded as the
      // event's keyId) starts runs under that key (chain.ts).
      const cause = await causeOf(chains, { run: event.metadata.causationId, key: event.metadata.keyId }, event.data.accountId);
      for (const doc of candidates) {
        const trigger = (JSON.parse(doc.definition) as WorkflowDefinition).trigger;
        if (trigger.type !== 'entry' || trigger.table !== event.data.table || trigger.on !== on || !matches(trigger.filter, event, createdAt, (error) => warnRefused(doc._id, error))) continue;
        // The trigger starts the run as the key that caused it would (runs.start: the run spends under the caller's key).
        const caller = { principal: { accountId: doc.accountId, keyId: cause.keyId, roles: new Set<never>() }, requestId: `entry:${event.id}` };
        requests.push({ caller, workflowId: doc._id, trigger: entryTriggerPayload(event), options: { runId: entryRunId(event, doc._id), ...cause.place } });
        sources.push({ event, workflowId: doc._id });
      }
    }
    if (requests.length === 0) return;
    const results = await deps.runs.startMany(requests);
    let unavailable: unknown = null;
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') return;
      const error: unknown = result.reason;
      // The store being away is retried (the batch is delivered again); a decided refusal would refuse again.
      if (!(error instanceof DomainError) || error.code === 'UNAVAILABLE') return void (unavailable ??= error);
      const { event, workflowId } = sources[index]!;
      deps.logger.warn({ err: error, workflowId, entryId: event.data.entryId }, 'entry trigger: the run was not started');
    });
    if (unavailable !== null) throw unavailable;
  };

  return followForTrigger({
    name: 'entry trigger',
    eventStore: deps.eventStore,
    readStore: deps.readStore,
    checkpoint: ENTRY_TRIGGER_CHECKPOINT,
    filter: { categories: [TABLE_CATEGORY], eventTypes: ['EntryAdded', 'EntryUpdated'] },
    batchSize: BATCH,
    firstStart: 'start',
    handle: { batch: (events) => fire(events as readonly EntryEvent[]) },
    logger: deps.logger,
  });
};

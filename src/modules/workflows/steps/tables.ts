/**
 * Table steps, on the workflow owner's tables only: `search.entries` (a filter over a table), `action.storeEntry`
 * (insert, or update by id or by a match filter) and `action.upsertEntry` (find-or-create by a match filter). An
 * insert's entry id is derived from the step's idempotency key, so an attempt resumed after a crash answers the
 * entry it already made instead of adding a second.
 */
import { z } from 'zod';
import { DomainError } from '../../../errors.js';
import type { JsonValue } from '../../../eventStore/eventStore.js';
import { TABLE_NAME } from '../../tables/table.events.js';
import { derivedEntryId, type EntryView, type TableActor, type TablesApi } from '../../tables/tables.api.js';
import { parseInput, readsFields } from './parseInput.js';
import { StepError, type StepContext, type StepRunner } from './step.js';

type Owned = TablesApi['owned'];

const json = z.json();
const object = z.record(z.string(), json);
const table = z.string().regex(TABLE_NAME, 'must be a table name: 1 to 63 lowercase letters, digits and _, starting with a letter');

/** An entry as later steps (and `trigger.entry`) read it: its fields at the top level, plus id and times. */
export const flatEntry = (entry: EntryView): { [key: string]: JsonValue } => ({ ...entry.data, id: entry.id, createdAt: entry.createdAt, updatedAt: entry.updatedAt });

/**
 * The run's own writes: `causedByRun` places the runs its entries trigger in its chain; the key that started or caused
 * the run (none for a webhook's or schedule's) is the writer of the entries it inserts. No `onlyKey`: a run acts on the
 * workflow's whole table (the workflow is its designer's, not the key's).
 */
const actorOf = (context: StepContext): TableActor => ({
  accountId: context.principal.accountId,
  actor: context.principal.accountId,
  correlationId: context.runId,
  causedByRun: context.runId,
  ...(context.principal.keyId !== null && { keyId: context.principal.keyId }),
});

/** A table's refusal (bad input, missing table, full table) fails the step for good; the store being away may pass. */
const asStepError = async <T>(work: () => Promise<T>): Promise<T> => {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DomainError) throw new StepError(error.code, error.message, error.code === 'UNAVAILABLE');
    throw error;
  }
};

const firstMatch = async (tables: Owned, accountId: string, name: string, match: unknown): Promise<EntryView | null> =>
  (await tables.find(accountId, name, { filter: match, limit: 1 }))[0] ?? null;

export const searchInput = z.strictObject({
  table,
  filter: object.optional(),
  sort: z.record(z.string(), z.union([z.literal(1), z.literal(-1)])).optional(),
  limit: z.number().int().min(1).max(100).default(20),
});

export const searchEntries =
  (tables: Owned): StepRunner =>
  async (input, context) => {
    const query = parseInput(searchInput, input);
    const items = (await asStepError(() => tables.find(context.principal.accountId, query.table, query))).map(flatEntry);
    return { output: { items, first: items[0] ?? null, count: items.length }, cost: 0 };
  };

const storeFields = { table, entry: object, id: z.string().min(1).max(80).optional(), match: object.optional() };
export const storeInput = z.strictObject(storeFields).refine((input) => input.id === undefined || input.match === undefined, readsFields(storeFields, ['id', 'match'], 'give id or match, not both'));

export const storeEntry =
  (tables: Owned): StepRunner =>
  async (input, context) => {
    const { table: name, entry, id, match } = parseInput(storeInput, input);
    const actor = actorOf(context);
    return asStepError(async () => {
      if (id === undefined && match === undefined) {
        const inserted = await tables.insert(actor, name, entry, derivedEntryId(context.idempotencyKey));
        return { output: { entry: flatEntry(inserted), created: true }, cost: 0 };
      }
      const target = id ?? (await firstMatch(tables, actor.accountId, name, match))?.id;
      if (target === undefined) throw new StepError('NO_MATCH', `No entry of table ${name} matches ${JSON.stringify(match)}`, false);
      const updated = await tables.update(actor, name, target, entry);
      return { output: { entry: flatEntry(updated), created: false }, cost: 0 };
    });
  };

export const upsertInput = z.strictObject({
  table,
  match: object.refine((match) => Object.keys(match).length > 0, 'must name at least one field'),
  /** The entry to create when none matches; the match itself (plain fields only) by default. */
  entry: object.optional(),
});

/**
 * Find-or-create is serialized per table in one process (tables.upsert); steps run only on the process holding the
 * workflows lease (engine.ts), so that covers every process's runs.
 */
export const upsertEntry =
  (tables: Owned): StepRunner =>
  async (input, context) => {
    const { table: name, match, entry } = parseInput(upsertInput, input);
    const actor = actorOf(context);
    return asStepError(async () => {
      const { entry: stored, created } = await tables.upsert(actor, name, match, entry ?? match, derivedEntryId(context.idempotencyKey));
      return { output: { entry: flatEntry(stored), created }, cost: 0 };
    });
  };

import { matchesFilter, type AllFilter, type RecordedEvent } from '../src/eventStore/eventStore.js';
import type { Doc } from '../src/readStore/readStore.js';

/**
 * A read model: which events it reads, which document each event changes, and a pure evolve. The runner does all
 * the I/O. `_pos` (the position of the last event applied) is kept on each document by the runner, so applying an
 * event a second time changes nothing.
 */
export interface Projection<D extends Doc = Doc> {
  readonly name: string;
  /** Bump when evolve changes meaning: the runner rebuilds the read model from zero. */
  readonly version: number;
  readonly collection: string;
  /** The events it reads: those matching the filter, or any one of several (e.g. one category's and one type of another's). */
  readonly filter: AllFilter | readonly AllFilter[];
  readonly indexes?: readonly { keys: Record<string, 1 | -1>; unique?: boolean }[];
  /**
   * One document per request or similar, so it grows with traffic: the embedded read store keeps this collection
   * on disk instead of in memory (its indexes must then be non-unique, on scalar fields).
   */
  readonly onDisk?: boolean;
  /** The id of the document this event changes, or null to ignore the event. */
  documentId(event: RecordedEvent): string | null;
  /** The new document, or null to delete it. Pure. */
  evolve(doc: D | null, event: RecordedEvent): D | null;
}

/** Erase a concrete projection's document type so projections of different models can share one list. */
export const defineProjection = <D extends Doc>(projection: Projection<D>): Projection => projection as unknown as Projection;

/** Whether a projection reads this event (its filter, or any of its filters). */
export const readsEvent = (projection: Pick<Projection, 'filter'>, event: Pick<RecordedEvent, 'stream' | 'type'>): boolean => {
  const { filter } = projection;
  return isFilterList(filter) ? filter.some((one) => matchesFilter(event, one)) : matchesFilter(event, filter);
};
const isFilterList = (filter: AllFilter | readonly AllFilter[]): filter is readonly AllFilter[] => Array.isArray(filter);

import { describe, expect, it } from 'vitest';
import { tableEntriesProjection } from '../../projections/tables.js';
import { NotFoundError } from '../../src/errors.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { tableDecider } from '../../src/modules/tables/table.decider.js';
import type { TableEvent } from '../../src/modules/tables/table.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const spec = deciderSpec(tableDecider);
const at = '2026-01-01T00:00:00.000Z';
const ref = { tableId: 'tbl_1', accountId: 'acc_1', table: 'notes' };
const quota = { quota: { maxBytes: 1_000_000, otherTables: 0 }, bytes: 12 };
const added = (entryId: string, keyId?: string): TableEvent => ({
  type: 'EntryAdded',
  data: { ...ref, entryId, entry: { text: 'hello' }, bytes: 16, tableBytes: 16, ...(keyId !== undefined && { keyId }), at },
});
/** An app key's entry, a full key's, and one from before writers were recorded. */
const given: TableEvent[] = [{ type: 'TableCreated', data: { ...ref, at } }, added('ent_app', 'key_app'), added('ent_full', 'key_full'), added('ent_old')];
const cmd = { accountId: 'acc_1', table: 'notes', at };

describe('table decider: entries and the key that wrote them', () => {
  it('records the writing key on an insert, and none when there is none', () => {
    spec(given)
      .when({ type: 'InsertEntry', data: { ...cmd, ...quota, entryId: 'ent_new', entry: { text: 'hi' }, maxEntries: 10, keyId: 'key_app' } })
      .then([{ type: 'EntryAdded', data: { ...ref, entryId: 'ent_new', entry: { text: 'hi' }, bytes: 12, tableBytes: 60, keyId: 'key_app', at } }]);
    spec(given)
      .when({ type: 'InsertEntry', data: { ...cmd, ...quota, entryId: 'ent_new', entry: { text: 'hi' }, maxEntries: 10 } })
      .then([{ type: 'EntryAdded', data: { ...ref, entryId: 'ent_new', entry: { text: 'hi' }, bytes: 12, tableBytes: 60, at } }]);
  });

  it("refuses a restricted key's update or delete of an entry it did not write (or of one with no writer) as a missing entry", () => {
    for (const entryId of ['ent_full', 'ent_old', 'ent_missing']) {
      spec(given).when({ type: 'UpdateEntry', data: { ...cmd, ...quota, entryId, entry: { text: 'x' }, onlyKey: 'key_app' } }).thenThrows(NotFoundError, new RegExp(`Entry ${entryId} not found`));
      spec(given).when({ type: 'DeleteEntry', data: { ...cmd, entryId, onlyKey: 'key_app' } }).thenThrows(NotFoundError, new RegExp(`Entry ${entryId} not found`));
    }
    spec(given).when({ type: 'DeleteEntry', data: { ...cmd, entryId: 'ent_app', onlyKey: 'key_app' } }).then([{ type: 'EntryRemoved', data: { ...ref, entryId: 'ent_app', tableBytes: 32, at } }]);
  });

  it("keeps an entry its writer's across another key's update, and lets a full key (no onlyKey) change any entry", () => {
    const updatedByFull: TableEvent = { type: 'EntryUpdated', data: { ...ref, entryId: 'ent_app', entry: { text: 'edited' }, bytes: 17, tableBytes: 49, createdAt: at, at } };
    spec(given).when({ type: 'UpdateEntry', data: { ...cmd, ...quota, bytes: 17, entryId: 'ent_app', entry: { text: 'edited' } } }).then([updatedByFull]);
    spec([...given, updatedByFull]).when({ type: 'DeleteEntry', data: { ...cmd, entryId: 'ent_app', onlyKey: 'key_app' } }).then([{ type: 'EntryRemoved', data: { ...ref, entryId: 'ent_app', tableBytes: 32, at } }]);
    spec(given).when({ type: 'DeleteEntry', data: { ...cmd, entryId: 'ent_old' } }).then([{ type: 'EntryRemoved', data: { ...ref, entryId: 'ent_old', tableBytes: 32, at } }]);
  });
});

describe('tableEntries read model: the writing key', () => {
  const recorded = (event: TableEvent, position: number): RecordedEvent =>
    ({ ...event, id: `ev${position}`, stream: 'table-acc_1.notes', revision: position, position, metadata: { actor: 'acc_1', correlationId: 'req', at } }) as unknown as RecordedEvent;

  it('keeps the key through updates, null for an entry without one, and applying an event twice changes nothing', () => {
    const doc = tableEntriesProjection.evolve(null, recorded(added('ent_app', 'key_app'), 1));
    expect(doc).toMatchObject({ _id: 'ent_app', keyId: 'key_app' });
    expect(tableEntriesProjection.evolve(doc, recorded(added('ent_app', 'key_app'), 1))).toEqual(doc);
    const updated = tableEntriesProjection.evolve(doc, recorded({ type: 'EntryUpdated', data: { ...ref, entryId: 'ent_app', entry: { text: 'edited' }, createdAt: at, at } }, 2));
    expect(updated).toMatchObject({ keyId: 'key_app', data: { text: 'edited' } });
    expect(tableEntriesProjection.evolve(null, recorded(added('ent_old'), 3))).toMatchObject({ _id: 'ent_old', keyId: null });
  });

  it("takes an older entry's writer from its event's metadata when its data names none; the data's wins", () => {
    const withKeyInMetadata = (event: TableEvent, keyId: string) => {
      const base = recorded(event, 4);
      return { ...base, metadata: { ...base.metadata, keyId } } as RecordedEvent;
    };
    expect(tableEntriesProjection.evolve(null, withKeyInMetadata(added('ent_old'), 'key_app'))).toMatchObject({ _id: 'ent_old', keyId: 'key_app' });
    expect(tableEntriesProjection.evolve(null, withKeyInMetadata(added('ent_new', 'key_app'), 'key_other'))).toMatchObject({ _id: 'ent_new', keyId: 'key_app' });
  });
});

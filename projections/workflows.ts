import type { RecordedEvent } from '../src/eventStore/eventStore.js';
import type { Filter, ReadStore, SortSpec } from '../src/readStore/readStore.js';
import type { WorkflowTrigger } from '../src/modules/workflows/definition.js';
import type { WorkflowStatus } from '../src/modules/workflows/workflow.decider.js';
import { WORKFLOW_CATEGORY, type WorkflowEvent } from '../src/modules/workflows/workflow.events.js';
import { defineProjection } from './projection.js';

export type WorkflowDoc = {
  _id: string;
  accountId: string;
  name: string;
  /** The current version; versions are numbered 1, 2, … so it is also how many there are. */
  version: number;
  /**
   * The current definition as JSON text: its inputs are the designer's free-form objects, whose keys (dots,
   * dollars) a document store may not accept as field names.
   */
  definition: string;
  triggerType: WorkflowTrigger['type'];
  status: WorkflowStatus;
  /** SHA-256 (hex) of the webhook secret, null until one is rotated in. Never shown. */
  webhookSecretHash: string | null;
  /** The webhook secret sealed by the credential vault (for HMAC signatures), null when only its hash was kept. Never shown. */
  webhookSecretEncrypted: string | null;
  createdAt: string;
  updatedAt: string;
};

export const WORKFLOWS = 'workflows';

export const workflowsProjection = defineProjection<WorkflowDoc>({
  name: 'workflows',
  version: 2,
  collection: WORKFLOWS,
  filter: { categories: [WORKFLOW_CATEGORY] },
  // Listings page an account's documents in `_id` order.
  indexes: [{ keys: { accountId: 1, _id: 1 } }],
  documentId: (event) => (event as RecordedEvent<WorkflowEvent>).data.workflowId,
  evolve: (doc, recorded) => {
    const event = recorded as RecordedEvent<WorkflowEvent>;
    if (event.type === 'WorkflowCreated') {
      const { workflowId, accountId, version, definition, at } = event.data;
      return {
        _id: workflowId,
        accountId,
        name: definition.name,
        version,
        definition: JSON.stringify(definition),
        triggerType: definition.trigger.type,
        status: 'enabled',
        webhookSecretHash: null,
        webhookSecretEncrypted: null,
        createdAt: at,
        updatedAt: at,
      };
    }
    if (!doc) return null;
    const updatedAt = event.data.at;
    switch (event.type) {
      case 'WorkflowUpdated': {
        const { version, definition } = event.data;
        return { ...doc, name: definition.name, version, definition: JSON.stringify(definition), triggerType: definition.trigger.type, updatedAt };
      }
      case 'WorkflowEnabled':
        return { ...doc, status: 'enabled', updatedAt };
      case 'WorkflowDisabled':
        return { ...doc, status: 'disabled', updatedAt };
      case 'WorkflowDeleted':
        return { ...doc, status: 'deleted', updatedAt };
      case 'WebhookSecretRotated':
        return { ...doc, webhookSecretHash: event.data.secretHash, webhookSecretEncrypted: event.data.secretEncrypted ?? null, updatedAt };
      default: {
        const _never: never = event;
        return doc;
      }
    }
  },
});

export const workflowQueries = (store: ReadStore) => {
  const workflows = store.collection<WorkflowDoc>(WORKFLOWS);
  return {
    /** Workflows by id, deleted ones included (the caller decides what a deleted one answers). */
    byIds: (ids: readonly string[]) => workflows.find({ _id: { $in: [...ids] } }),
    /** One page of an account's workflows that are not deleted (filter and sort from idPage). */
    pageForAccount: (accountId: string, page: { filter: Filter; sort: SortSpec; limit: number }) =>
      workflows.find({ ...page.filter, accountId, status: { $ne: 'deleted' } }, { sort: page.sort, limit: page.limit }),
    /** Every workflow of an account that is not deleted (at most WORKFLOW_MAX_PER_ACCOUNT). */
    forAccount: (accountId: string) => workflows.find({ accountId, status: { $ne: 'deleted' } }, { sort: { _id: 1 } }),
    /** How many workflows an account has that are not deleted (WORKFLOW_MAX_PER_ACCOUNT). */
    countForAccount: (accountId: string) => workflows.count({ accountId, status: { $ne: 'deleted' } }),
    /** An account's enabled workflows with this type of trigger (the event triggers look up who listens). */
    enabledWithTrigger: (accountId: string, triggerType: WorkflowDoc['triggerType']) => workflows.find({ accountId, status: 'enabled', triggerType }),
    /** Every account's enabled workflows with an `event` trigger (which event types the event triggers must read). */
    enabledEventTriggers: () => workflows.find({ status: 'enabled', triggerType: 'event' }),
  };
};

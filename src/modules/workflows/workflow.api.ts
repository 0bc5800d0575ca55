import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { workflowQueries, type WorkflowDoc } from '../../../projections/workflows.js';
import type { Actor } from '../../core.js';
import { NotFoundError, UnauthenticatedError } from '../../errors.js';
import type { DomainEvent, EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import type { Decider, HandleResult } from '../../eventStore/handleCommand.js';
import { newId } from '../../ids.js';
import type { ReadStore } from '../../readStore/readStore.js';
import type { Caller, Principal } from '../auth/principal.js';
import { parseDefinition, type WorkflowDefinition } from './definition.js';
import { workflowDecider, type WorkflowActor, type WorkflowCommand, type WorkflowState } from './workflow.decider.js';
import { workflowStream, type WorkflowEvent } from './workflow.events.js';

/** A workflow as commands and queries answer it: its read-model document with the definition parsed. */
export type WorkflowView = Omit<WorkflowDoc, 'definition' | 'webhookSecretHash'> & { readonly definition: WorkflowDefinition; readonly hasWebhookSecret: boolean };

export interface RotatedWebhookSecret {
  readonly workflow: WorkflowView;
  /** The secret itself: it exists only here, never in an event or a read model. */
  readonly secret: string;
}

/** Workflow ids are ours (`wf_…`): anything else cannot name one, so it is not looked up. */
const WORKFLOW_ID = /^wf_[0-9a-z]{1,64}$/;

/** Runs a command and returns once the read models have applied it (Core.execute). */
type Execute = <S, C, E extends DomainEvent>(stream: string, decider: Decider<S, C, E>, command: C, actor: Actor) => Promise<HandleResult<S, E>>;

const viewOfState = (state: WorkflowState): WorkflowView => {
  if (state.status === 'none') throw new Error('a workflow command decided on a workflow that does not exist');
  const { workflowId, accountId, version, definition, status, webhookSecretHash, createdAt, updatedAt } = state;
  return { _id: workflowId, accountId, name: definition.name, version, definition, triggerType: definition.trigger.type, status, hasWebhookSecret: webhookSecretHash !== null, createdAt, updatedAt };
};

const viewOfDoc = ({ definition, webhookSecretHash, ...doc }: WorkflowDoc): WorkflowView => ({
  ...doc,
  definition: JSON.parse(definition) as WorkflowDefinition,
  hasWebhookSecret: webhookSecretHash !== null,
});

export const hashWebhookSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

const callerOf = (caller: Caller): Principal => {
  if (!caller.principal) throw new UnauthenticatedError();
  return caller.principal;
};
const actorOf = (principal: Principal): WorkflowActor => ({ accountId: principal.accountId, roles: [...principal.roles] });

type PageArgs = Parameters<ReturnType<typeof workflowQueries>['pageForAccount']>[1];

/** The workflows module's definitions: designers create and change versioned workflows; anyone of the account reads them. */
export const createWorkflowsApi = (deps: { eventStore: EventStore; readStore: ReadStore; execute: Execute; now: () => Date }) => {
  const queries = workflowQueries(deps.readStore);
  const at = () => deps.now().toISOString();

  const run = async (caller: Caller, command: WorkflowCommand) => {
    const principal = callerOf(caller);
    const { state } = await deps.execute(workflowStream(command.data.workflowId), workflowDecider, command, { actor: principal.accountId, correlationId: caller.requestId });
    return viewOfState(state);
  };
  const base = (caller: Caller, workflowId: string) => ({ workflowId, actor: actorOf(callerOf(caller)), at: at() });

  return {
    /** Create a workflow (version 1, enabled) for the caller's account; the definition is validated first. */
    async create(caller: Caller, definition: unknown): Promise<WorkflowView> {
      const principal = callerOf(caller);
      const parsed = parseDefinition(definition);
      const workflowId = newId('wf');
      return run(caller, { type: 'CreateWorkflow', data: { ...base(caller, workflowId), accountId: principal.accountId, definition: parsed } });
    },
    /** Save a new version (the same definition again is no change). */
    update: (caller: Caller, workflowId: string, definition: unknown) => {
      const parsed = parseDefinition(definition);
      return run(caller, { type: 'UpdateWorkflow', data: { ...base(caller, workflowId), definition: parsed } });
    },
    enable: (caller: Caller, workflowId: string) => run(caller, { type: 'EnableWorkflow', data: base(caller, workflowId) }),
    disable: (caller: Caller, workflowId: string) => run(caller, { type: 'DisableWorkflow', data: base(caller, workflowId) }),
    delete: (caller: Caller, workflowId: string) => run(caller, { type: 'DeleteWorkflow', data: base(caller, workflowId) }),
    /** A new webhook secret replaces the old one at once; the answer holds it, shown this once. */
    async rotateWebhookSecret(caller: Caller, workflowId: string): Promise<RotatedWebhookSecret> {
      const secret = `whsec_${randomBytes(32).toString('base64url')}`;
      const workflow = await run(caller, { type: 'RotateWebhookSecret', data: { ...base(caller, workflowId), secretHash: hashWebhookSecret(secret) } });
      return { workflow, secret };
    },

    /** Policy: the account a workflow belongs to, from its stream (so it is manageable the moment it exists), or null. */
    async ownerOf(workflowId: string): Promise<string | null> {
      if (!WORKFLOW_ID.test(workflowId)) return null;
      const [first] = await deps.eventStore.readStream(workflowStream(workflowId), { maxCount: 1 });
      return first?.type === 'WorkflowCreated' ? (first as RecordedEvent<WorkflowEvent & { type: 'WorkflowCreated' }>).data.accountId : null;
    },
    /** The definition a run pins: version `version` of the workflow, from its stream; null if there is no such version. */
    async definitionAt(workflowId: string, version: number): Promise<WorkflowDefinition | null> {
      if (!WORKFLOW_ID.test(workflowId)) return null;
      const events = (await deps.eventStore.readStream(workflowStream(workflowId))) as RecordedEvent<WorkflowEvent>[];
      for (const event of events) {
        if ((event.type === 'WorkflowCreated' || event.type === 'WorkflowUpdated') && event.data.version === version) return event.data.definition;
      }
      return null;
    },
    /** A workflow that is not deleted, or NOT_FOUND (the caller's right to see it is checked by the adapter). */
    async get(workflowId: string): Promise<WorkflowView> {
      const [doc] = WORKFLOW_ID.test(workflowId) ? await queries.byIds([workflowId]) : [];
      if (!doc || doc.status === 'deleted') throw new NotFoundError('Workflow', workflowId);
      return viewOfDoc(doc);
    },
    /**
     * The workflow a webhook call names, if `secret` is its webhook secret (SHA-256 digests compared in constant
     * time). A missing, deleted or non-webhook workflow is NOT_FOUND; no secret rotated in, or a wrong or missing one,
     * is UNAUTHENTICATED. Whether it is enabled is left to the run's start (only a secret holder learns it).
     */
    async webhookTarget(workflowId: string, secret: string | null): Promise<WorkflowView> {
      const [doc] = WORKFLOW_ID.test(workflowId) ? await queries.byIds([workflowId]) : [];
      if (!doc || doc.status === 'deleted' || doc.triggerType !== 'webhook') throw new NotFoundError('Workflow', workflowId);
      const stored = doc.webhookSecretHash === null ? null : Buffer.from(doc.webhookSecretHash, 'hex');
      const given = secret === null ? null : Buffer.from(hashWebhookSecret(secret), 'hex');
      if (stored === null || given === null || stored.length !== given.length || !timingSafeEqual(stored, given)) {
        throw new UnauthenticatedError('Missing or wrong webhook secret: send it in the x-switchyard-webhook-secret header');
      }
      return viewOfDoc(doc);
    },
    /** One page of an account's workflows (filter and sort from idPage), deleted ones left out. */
    async pageForAccount(accountId: string, page: PageArgs): Promise<WorkflowView[]> {
      return (await queries.pageForAccount(accountId, page)).map(viewOfDoc);
    },
  };
};

export type WorkflowsApi = ReturnType<typeof createWorkflowsApi>;

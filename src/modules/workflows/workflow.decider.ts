import { ConflictError, ForbiddenError, NotFoundError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type { Role } from '../accounts/account.events.js';
import type { WorkflowDefinition } from './definition.js';
import type { WorkflowEvent } from './workflow.events.js';

export type WorkflowStatus = 'enabled' | 'disabled' | 'deleted';

export type WorkflowState =
  | { readonly status: 'none' }
  | {
      readonly status: WorkflowStatus;
      readonly workflowId: string;
      readonly accountId: string;
      readonly version: number;
      readonly definition: WorkflowDefinition;
      readonly webhookSecretHash: string | null;
      /** The sealed secret (HMAC signatures need the secret itself); null for a secret rotated in before that. */
      readonly webhookSecretEncrypted: string | null;
      readonly createdAt: string;
      readonly updatedAt: string;
    };

export type LiveWorkflowState = Exclude<WorkflowState, { status: 'none' }>;

/** Who acts: their account and roles, so the decider alone decides who may (designers of the owning account, admins). */
export interface WorkflowActor {
  readonly accountId: string;
  readonly roles: readonly Role[];
}

type Base = { readonly workflowId: string; readonly actor: WorkflowActor; readonly at: string };

export type WorkflowCommand =
  | { readonly type: 'CreateWorkflow'; readonly data: Base & { readonly accountId: string; readonly definition: WorkflowDefinition } }
  | { readonly type: 'UpdateWorkflow'; readonly data: Base & { readonly definition: WorkflowDefinition } }
  | { readonly type: 'EnableWorkflow'; readonly data: Base }
  | { readonly type: 'DisableWorkflow'; readonly data: Base }
  | { readonly type: 'DeleteWorkflow'; readonly data: Base }
  | { readonly type: 'RotateWebhookSecret'; readonly data: Base & { readonly secretHash: string; readonly secretEncrypted: string | null } };

const isAdmin = (actor: WorkflowActor) => actor.roles.includes('admin');

/** Designers manage their own account's workflows; admins manage any. */
const mayManage = (actor: WorkflowActor, accountId: string) => isAdmin(actor) || (actor.accountId === accountId && actor.roles.includes('designer'));

/**
 * A workflow the actor may change. Another account's workflow answers as a missing one (its existence is not
 * told); the owning account's members without the designer role are refused.
 */
const requireManageable = (state: WorkflowState, { workflowId, actor }: Base): LiveWorkflowState => {
  if (state.status === 'none' || (!isAdmin(actor) && actor.accountId !== state.accountId)) throw new NotFoundError('Workflow', workflowId);
  if (!mayManage(actor, state.accountId)) throw new ForbiddenError('Only designers and admins manage workflows');
  return state;
};

const requireLive = (state: WorkflowState, base: Base): LiveWorkflowState => {
  const live = requireManageable(state, base);
  if (live.status === 'deleted') throw new NotFoundError('Workflow', base.workflowId);
  return live;
};

const sameDefinition = (a: WorkflowDefinition, b: WorkflowDefinition) => JSON.stringify(a) === JSON.stringify(b);

export const workflowDecider: Decider<WorkflowState, WorkflowCommand, WorkflowEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    if (event.type === 'WorkflowCreated') {
      const { workflowId, accountId, version, definition, at } = event.data;
      return { status: 'enabled', workflowId, accountId, version, definition, webhookSecretHash: null, webhookSecretEncrypted: null, createdAt: at, updatedAt: at };
    }
    if (state.status === 'none') return state;
    const updatedAt = event.data.at;
    switch (event.type) {
      case 'WorkflowUpdated':
        return { ...state, version: event.data.version, definition: event.data.definition, updatedAt };
      case 'WorkflowEnabled':
        return { ...state, status: 'enabled', updatedAt };
      case 'WorkflowDisabled':
        return { ...state, status: 'disabled', updatedAt };
      case 'WorkflowDeleted':
        return { ...state, status: 'deleted', updatedAt };
      case 'WebhookSecretRotated':
        return { ...state, webhookSecretHash: event.data.secretHash, webhookSecretEncrypted: event.data.secretEncrypted ?? null, updatedAt };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'CreateWorkflow': {
        const { workflowId, accountId, definition, actor, at } = command.data;
        if (!mayManage(actor, accountId)) throw new ForbiddenError('Only designers and admins manage workflows');
        if (state.status !== 'none') throw new ConflictError(`Workflow ${workflowId} already exists`);
        return [{ type: 'WorkflowCreated', data: { workflowId, accountId, version: 1, definition, at } }];
      }
      case 'UpdateWorkflow': {
        const live = requireLive(state, command.data);
        const { workflowId, definition, at } = command.data;
        // Saving the same definition again is no change, so no new version.
        return sameDefinition(live.definition, definition) ? [] : [{ type: 'WorkflowUpdated', data: { workflowId, version: live.version + 1, definition, at } }];
      }
      case 'EnableWorkflow':
        return requireLive(state, command.data).status === 'enabled' ? [] : [{ type: 'WorkflowEnabled', data: { workflowId: command.data.workflowId, at: command.data.at } }];
      case 'DisableWorkflow':
        return requireLive(state, command.data).status === 'disabled' ? [] : [{ type: 'WorkflowDisabled', data: { workflowId: command.data.workflowId, at: command.data.at } }];
      case 'DeleteWorkflow':
        // Deleting twice is a no-op, so a client may safely retry.
        return requireManageable(state, command.data).status === 'deleted' ? [] : [{ type: 'WorkflowDeleted', data: { workflowId: command.data.workflowId, at: command.data.at } }];
      case 'RotateWebhookSecret': {
        const live = requireLive(state, command.data);
        if (live.definition.trigger.type !== 'webhook') throw new ConflictError(`Workflow ${live.workflowId} has no webhook trigger`, { path: 'trigger.type' });
        const { workflowId, secretHash, secretEncrypted, at } = command.data;
        return [{ type: 'WebhookSecretRotated', data: { workflowId, secretHash, ...(secretEncrypted !== null && { secretEncrypted }), at } }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};

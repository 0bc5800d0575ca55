import { describe, it } from 'vitest';
import { ConflictError, ForbiddenError, NotFoundError } from '../../src/errors.js';
import { parseDefinition } from '../../src/modules/workflows/definition.js';
import { workflowDecider, type WorkflowActor } from '../../src/modules/workflows/workflow.decider.js';
import type { WorkflowEvent } from '../../src/modules/workflows/workflow.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const spec = deciderSpec(workflowDecider);
const at = '2026-12-01T10:00:00.000Z';
const workflowId = 'wf_1';
const designer: WorkflowActor = { accountId: 'acc_a', roles: ['user', 'designer'] };
const user: WorkflowActor = { accountId: 'acc_a', roles: ['user'] };
const otherDesigner: WorkflowActor = { accountId: 'acc_b', roles: ['designer'] };
const admin: WorkflowActor = { accountId: 'acc_root', roles: ['admin'] };

const definition = (name: string) => parseDefinition({ name, trigger: { type: 'manual' }, steps: [{ key: 't', type: 'action.transform', input: { expression: '=trigger.x' } }] });
const webhook = parseDefinition({ name: 'hook', trigger: { type: 'webhook', respond: 'async' }, steps: [{ key: 't', type: 'action.respond', input: { status: 202 } }] });

const created: WorkflowEvent = { type: 'WorkflowCreated', data: { workflowId, accountId: 'acc_a', version: 1, definition: definition('v1'), at } };
const updated: WorkflowEvent = { type: 'WorkflowUpdated', data: { workflowId, version: 2, definition: definition('v2'), at } };

describe('workflow decider', () => {
  it('creates version 1 for a designer of the account, or for an admin', () => {
    spec([])
      .when({ type: 'CreateWorkflow', data: { workflowId, accountId: 'acc_a', definition: definition('v1'), actor: designer, at } })
      .then([created]);
    spec([])
      .when({ type: 'CreateWorkflow', data: { workflowId, accountId: 'acc_a', definition: definition('v1'), actor: admin, at } })
      .then([created]);
  });

  it('refuses creation by a member without the designer role, and by a designer of another account', () => {
    spec([]).when({ type: 'CreateWorkflow', data: { workflowId, accountId: 'acc_a', definition: definition('v1'), actor: user, at } }).thenThrows(ForbiddenError);
    spec([]).when({ type: 'CreateWorkflow', data: { workflowId, accountId: 'acc_a', definition: definition('v1'), actor: otherDesigner, at } }).thenThrows(ForbiddenError);
  });

  it('numbers each change as the next version', () => {
    spec([created]).when({ type: 'UpdateWorkflow', data: { workflowId, definition: definition('v2'), actor: designer, at } }).then([updated]);
    spec([created, updated])
      .when({ type: 'UpdateWorkflow', data: { workflowId, definition: definition('v3'), actor: admin, at } })
      .then([{ type: 'WorkflowUpdated', data: { workflowId, version: 3, definition: definition('v3'), at } }]);
  });

  it('makes no new version when the definition did not change', () => {
    spec([created, updated]).when({ type: 'UpdateWorkflow', data: { workflowId, definition: definition('v2'), actor: designer, at } }).then([]);
  });

  it("answers another account's workflow as a missing one, and refuses a non-designer of the account", () => {
    spec([created]).when({ type: 'UpdateWorkflow', data: { workflowId, definition: definition('x'), actor: otherDesigner, at } }).thenThrows(NotFoundError, /Workflow wf_1 not found/);
    spec([]).when({ type: 'UpdateWorkflow', data: { workflowId, definition: definition('x'), actor: designer, at } }).thenThrows(NotFoundError, /Workflow wf_1 not found/);
    spec([created]).when({ type: 'DisableWorkflow', data: { workflowId, actor: user, at } }).thenThrows(ForbiddenError);
  });

  it('disables and enables idempotently', () => {
    const disabled: WorkflowEvent = { type: 'WorkflowDisabled', data: { workflowId, at } };
    spec([created]).when({ type: 'DisableWorkflow', data: { workflowId, actor: designer, at } }).then([disabled]);
    spec([created, disabled]).when({ type: 'DisableWorkflow', data: { workflowId, actor: designer, at } }).then([]);
    spec([created, disabled]).when({ type: 'EnableWorkflow', data: { workflowId, actor: designer, at } }).then([{ type: 'WorkflowEnabled', data: { workflowId, at } }]);
    spec([created]).when({ type: 'EnableWorkflow', data: { workflowId, actor: designer, at } }).then([]);
  });

  it('deletes once; a deleted workflow cannot be changed and deleting again is a no-op', () => {
    const deleted: WorkflowEvent = { type: 'WorkflowDeleted', data: { workflowId, at } };
    spec([created]).when({ type: 'DeleteWorkflow', data: { workflowId, actor: designer, at } }).then([deleted]);
    spec([created, deleted]).when({ type: 'DeleteWorkflow', data: { workflowId, actor: designer, at } }).then([]);
    spec([created, deleted]).when({ type: 'UpdateWorkflow', data: { workflowId, definition: definition('v2'), actor: designer, at } }).thenThrows(NotFoundError);
    spec([created, deleted]).when({ type: 'EnableWorkflow', data: { workflowId, actor: designer, at } }).thenThrows(NotFoundError);
  });

  it('rotates the webhook secret of a webhook workflow only, storing its hash and its sealed form', () => {
    const hook: WorkflowEvent = { type: 'WorkflowCreated', data: { workflowId, accountId: 'acc_a', version: 1, definition: webhook, at } };
    const rotate = { workflowId, secretHash: 'ab'.repeat(32), secretEncrypted: 'v1.iv.tag.data', at };
    spec([hook])
      .when({ type: 'RotateWebhookSecret', data: { ...rotate, actor: designer } })
      .then([{ type: 'WebhookSecretRotated', data: rotate }]);
    // A server without a master key keeps only the hash (the secret header works, signatures do not).
    spec([hook])
      .when({ type: 'RotateWebhookSecret', data: { ...rotate, secretEncrypted: null, actor: designer } })
      .then([{ type: 'WebhookSecretRotated', data: { workflowId, secretHash: 'ab'.repeat(32), at } }]);
    spec([created]).when({ type: 'RotateWebhookSecret', data: { ...rotate, actor: designer } }).thenThrows(ConflictError, /no webhook trigger/);
    spec([hook]).when({ type: 'RotateWebhookSecret', data: { ...rotate, actor: otherDesigner } }).thenThrows(NotFoundError);
  });
});

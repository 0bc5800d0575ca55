import type { WorkflowDefinition } from './definition.js';

export type WorkflowCreated = {
  readonly type: 'WorkflowCreated';
  readonly data: {
    readonly workflowId: string;
    readonly accountId: string;
    /** Always 1: every later change is a WorkflowUpdated with the next version. */
    readonly version: number;
    readonly definition: WorkflowDefinition;
    readonly at: string;
  };
};
export type WorkflowUpdated = {
  readonly type: 'WorkflowUpdated';
  readonly data: { readonly workflowId: string; readonly version: number; readonly definition: WorkflowDefinition; readonly at: string };
};
export type WorkflowEnabled = { readonly type: 'WorkflowEnabled'; readonly data: { readonly workflowId: string; readonly at: string } };
export type WorkflowDisabled = { readonly type: 'WorkflowDisabled'; readonly data: { readonly workflowId: string; readonly at: string } };
export type WorkflowDeleted = { readonly type: 'WorkflowDeleted'; readonly data: { readonly workflowId: string; readonly at: string } };
export type WebhookSecretRotated = {
  readonly type: 'WebhookSecretRotated';
  /** SHA-256 (hex) of the new secret. The secret itself is never stored. */
  readonly data: { readonly workflowId: string; readonly secretHash: string; readonly at: string };
};

export type WorkflowEvent = WorkflowCreated | WorkflowUpdated | WorkflowEnabled | WorkflowDisabled | WorkflowDeleted | WebhookSecretRotated;

export const WORKFLOW_CATEGORY = 'workflow';
export const workflowStream = (workflowId: string): string => `${WORKFLOW_CATEGORY}-${workflowId}`;

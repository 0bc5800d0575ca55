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
  readonly data: {
    readonly workflowId: string;
    /** SHA-256 (hex) of the new secret, for the secret header. */
    readonly secretHash: string;
    /**
     * The secret sealed by the credential vault (AES-256-GCM under SWITCHYARD_MASTER_KEY, context
     * `webhook:<workflowId>`), for HMAC signatures; absent in events written before signatures existed, and when the
     * server has no master key. Never the secret in clear.
     */
    readonly secretEncrypted?: string;
    readonly at: string;
  };
};

export type WorkflowEvent = WorkflowCreated | WorkflowUpdated | WorkflowEnabled | WorkflowDisabled | WorkflowDeleted | WebhookSecretRotated;

export const WORKFLOW_CATEGORY = 'workflow';
export const workflowStream = (workflowId: string): string => `${WORKFLOW_CATEGORY}-${workflowId}`;

/** The vault's context for a workflow's sealed webhook secret: it opens for this workflow only. */
export const webhookSecretContext = (workflowId: string): string => `webhook:${workflowId}`;

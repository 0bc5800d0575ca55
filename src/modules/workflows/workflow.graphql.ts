import { z } from 'zod';
import { builder } from '../../graphql/builder.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { idConnection, idPage } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount } from '../../graphql/scopes.js';
import { UsageRowRef } from '../ledger/ledger.graphql.js';
import type { RotatedWebhookSecret, WorkflowView } from './workflow.api.js';

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day, YYYY-MM-DD');

export const WorkflowStatusEnum = builder.enumType('WorkflowStatus', {
  values: { ENABLED: { value: 'enabled' }, DISABLED: { value: 'disabled' }, DELETED: { value: 'deleted' } } as const,
});

export const WorkflowRef = builder.objectRef<WorkflowView>('Workflow').implement({
  description: "A versioned workflow of the account: every change to its definition is a new version.",
  fields: (t) => ({
    id: t.id({ resolve: (workflow) => workflow._id }),
    name: t.exposeString('name'),
    version: t.exposeInt('version', { description: 'The current version (1, 2, …); runs pin the version they started on.' }),
    status: t.field({ type: WorkflowStatusEnum, resolve: (workflow) => workflow.status }),
    definition: t.field({ type: 'JSON', description: 'The current definition, with defaults filled in.', resolve: (workflow) => workflow.definition }),
    webhookUrl: t.string({
      nullable: true,
      description: 'The path to POST to for a webhook trigger (null for other triggers).',
      resolve: (workflow) => (workflow.triggerType === 'webhook' ? `/api/v1/workflows/${workflow._id}/webhook` : null),
    }),
    hasWebhookSecret: t.exposeBoolean('hasWebhookSecret', { description: 'Whether a webhook secret was rotated in (the webhook refuses calls until then).' }),
    webhookSignatures: t.exposeBoolean('webhookSignatures', {
      description:
        'Whether webhook calls may be signed instead of sending the secret: x-switchyard-timestamp (Unix seconds) and x-switchyard-signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + raw body)), within 5 minutes. False for a secret kept only as a hash (rotated in before signatures): rotate it.',
    }),
    usage: t.field({
      type: UsageRowRef,
      description: "What this workflow's runs' model calls used and were charged (to the account), between two days (inclusive, UTC); all time by default.",
      args: { from: t.arg.string({ validate: day }), to: t.arg.string({ validate: day }) },
      resolve: async (workflow, args, ctx) => {
        const [row] = await ctx.ledger.usage(workflow.accountId, { groupBy: 'workflowId', from: args.from, to: args.to, workflowId: workflow._id });
        return row ?? { group: workflow._id, day: null, requests: 0, promptTokens: 0, completionTokens: 0, reasoningTokens: 0, cachedTokens: 0, cost: 0 };
      },
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (workflow) => workflow.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (workflow) => workflow.updatedAt }),
  }),
});

export const WebhookSecretRef = builder.objectRef<RotatedWebhookSecret>('WebhookSecret').implement({
  fields: (t) => ({
    secret: t.exposeString('secret', { description: 'The webhook secret. Shown only once: store it now. The previous one stops working.' }),
    workflow: t.field({ type: WorkflowRef, resolve: (rotated) => rotated.workflow }),
  }),
});

/**
 * Managing a workflow: one of the caller's account needs the designer role (FORBIDDEN without it); any other,
 * or a missing one, needs ownership, which fails as NOT_FOUND, so a refusal never tells that another's id exists.
 */
const managesWorkflow = async (_root: unknown, args: { id?: unknown }, ctx: GraphQLContext) => {
  const workflowId = String(args.id);
  const principal = ctx.principal;
  const ours = principal !== null && (principal.roles.has('admin') || (await ctx.workflows.ownerOf(workflowId)) === principal.accountId);
  return ours ? { designer: true } : { ownsWorkflow: workflowId };
};

builder.queryFields((t) => ({
  workflow: t.withAuth((_root, args: { id?: unknown }) => ({ ownsWorkflow: String(args.id) })).field({
    type: WorkflowRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.workflows.get(String(args.id)),
  }),
  workflows: t.withAuth(ownsAccountArg).connection({
    type: WorkflowRef,
    description: "The caller's workflows (an admin may name another account); deleted ones are left out.",
    args: { accountId: t.arg.id({ required: false }) },
    resolve: (_root, args, ctx) => {
      const accountId = targetAccount(args.accountId, ctx);
      return idConnection(args, (page) => ctx.workflows.pageForAccount(accountId, idPage(page)));
    },
  }),
}));

builder.mutationFields((t) => ({
  createWorkflow: t.withAuth({ designer: true }).field({
    type: WorkflowRef,
    description: "Create a workflow (version 1, enabled) in the caller's account. A bad definition answers a DomainError whose details name the bad field's path.",
    errors: { directResult: true },
    args: { definition: t.arg({ type: 'JSON', required: true }) },
    resolve: (_root, args, ctx) => ctx.workflows.create(ctx, args.definition),
  }),
  updateWorkflow: t.withAuth(managesWorkflow).field({
    type: WorkflowRef,
    description: 'Save a new version of the definition (runs already started keep theirs).',
    errors: { directResult: true },
    args: { id: t.arg.id({ required: true }), definition: t.arg({ type: 'JSON', required: true }) },
    resolve: (_root, args, ctx) => ctx.workflows.update(ctx, String(args.id), args.definition),
  }),
  ...Object.fromEntries(
    (
      [
        ['enableWorkflow', 'enable', 'Let the workflow start runs again.'],
        ['disableWorkflow', 'disable', 'Start no new runs until it is enabled again.'],
        ['deleteWorkflow', 'delete', 'Delete the workflow for good (its events stay).'],
      ] as const
    ).map(([field, command, description]) => [
      field,
      t.withAuth(managesWorkflow).field({
        type: WorkflowRef,
        description,
        errors: { directResult: true },
        args: { id: t.arg.id({ required: true }) },
        resolve: (_root, args, ctx) => ctx.workflows[command](ctx, String(args.id)),
      }),
    ]),
  ),
  rotateWebhookSecret: t.withAuth(managesWorkflow).field({
    type: WebhookSecretRef,
    description: "Replace the webhook's secret. The new secret is in the result and nowhere else.",
    errors: { directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.workflows.rotateWebhookSecret(ctx, String(args.id)),
  }),
}));

import { calendarDayArg } from '../../calendarDay.js';
import { builder } from '../../graphql/builder.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { idConnection, idPage } from '../../graphql/connections.js';
import { ownsAccountArg, targetAccount } from '../../graphql/scopes.js';
import { UsageRowRef } from '../ledger/ledger.graphql.js';
import type { RotatedWebhookSecret, WorkflowView } from './workflow.api.js';

export const WorkflowStatusEnum = builder.enumType('WorkflowStatus', {
  values: { ENABLED: { value: 'enabled' }, DISABLED: { value: 'disabled' }, DELETED: { value: 'deleted' } } as const,
});

/** The trigger types a definition's `trigger.type` names; described with an example each (the schema's docs). */
export const WorkflowTriggerTypeEnum = builder.enumType('WorkflowTriggerType', {
  description: "What starts a workflow's runs: `trigger.type` in its definition (lowercase there, e.g. \"schedule\"). The run's trigger is `trigger` in expressions.",
  values: {
    MANUAL: { value: 'manual', description: 'runWorkflow (or POST /api/v1/workflows/{id}/runs) with an input, `trigger.body`. Example: {"type": "manual"}' },
    WEBHOOK: {
      value: 'webhook',
      description:
        'POST /api/v1/workflows/{id}/webhook with the secret (x-switchyard-webhook-secret) or a signature; `trigger.body`, `trigger.headers`. "sync" answers with the action.respond step; "async" answers 202 with the run id. Example: {"type": "webhook", "respond": "sync"}',
    },
    ENTRY: {
      value: 'entry',
      description:
        'A new (on "insert") or updated (on "update") entry of one of the account\'s tables, optionally matching a filter (MongoDB query language over the entry\'s fields); once per entry event, also for entries written while the server was down. `trigger.entry` is the entry, its fields at the top level plus id, createdAt, updatedAt. Example: {"type": "entry", "table": "inbox", "on": "insert", "filter": {"lang": "en"}}',
    },
    SCHEDULE: {
      value: 'schedule',
      description:
        'A cron expression (5 fields, or 6 with seconds first) in an IANA time zone, firing at most once every WORKFLOW_MIN_SCHEDULE_SECONDS (60 s by default); one run per due time, also across restarts. catchUp "one" runs the latest due time missed while the server was down, "none" skips them. `trigger.scheduledAt`, `trigger.firedAt`. Example: {"type": "schedule", "cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "catchUp": "one"}',
    },
    EVENT: {
      value: 'event',
      description:
        'A platform event of the account: generation.completed, generation.failed, balance.below (with threshold, nano-dollars), apiKey.created, apiKey.revoked, workflowRun.failed, or custom.<name> (action.emit), optionally matching a filter over its payload; the run `trigger` is that payload (`trigger.event` its name). Example: {"type": "event", "event": "generation.completed", "filter": {"model": "demo/echo"}}',
    },
  } as const,
});

/** The step types a definition's `steps[].type` names; described with an example input each (the schema's docs). */
export const WorkflowStepTypeEnum = builder.enumType('WorkflowStepType', {
  description:
    'What a step does: `steps[].type` in a definition (the dotted name, e.g. "action.model"). Inputs are JSON; a string starting with `=` is a JSONata expression over {trigger, steps, run, workflow}. Each value names its input with an example.',
  values: {
    CONTROL_FILTER: { value: 'control.filter', description: 'Ends the run as FILTERED unless the condition holds. Example: {"condition": "=trigger.body.amount > 100"}; output {passed}' },
    CONTROL_BRANCH: {
      value: 'control.branch',
      description: 'Takes the first path whose condition holds (steps name their path with `path`). Example: {"paths": [{"name": "big", "if": "=trigger.body.amount > 100"}], "default": "small"}; output {path}',
    },
    CONTROL_DELAY: { value: 'control.delay', description: 'Waits, durably (a stored wake-up time, kept across restarts), for a duration or until a time. Example: {"for": "PT5M"} or {"until": "2027-01-01T09:00:00Z"}; output {wokeAt, scheduledFor}' },
    ACTION_TRANSFORM: { value: 'action.transform', description: 'Computes a value. Example: {"expression": "=$uppercase(trigger.entry.text)"}; output the value' },
    ACTION_RESPOND: { value: 'action.respond', description: "The answer of a synchronous webhook. Example: {\"status\": 200, \"body\": {\"answer\": \"=steps.answer.text\"}}" },
    SEARCH_MODELS: { value: 'search.models', description: 'Models of the catalog by criteria. Example: {"maxPromptPrice": 1000, "sort": "price", "limit": 3}; output {items, first, count}' },
    SEARCH_HTTP: { value: 'search.http', description: 'GET a JSON document (outbound policy applies). Example: {"url": "https://example.com/data.json"}; output the parsed body' },
    SEARCH_ENTRIES: { value: 'search.entries', description: "Entries of one of the account's tables by filter. Example: {\"table\": \"answers\", \"filter\": {\"day\": \"=$substring($now(), 0, 10)\"}, \"limit\": 100}; output {items, first, count}" },
    ACTION_MODEL: {
      value: 'action.model',
      description: 'A chat completion through the gateway, charged to the account (within settings.budget). Example: {"model": "demo/echo", "prompt": "=trigger.body.question", "maxTokens": 300}; output {text, model, provider, finishReason, usage, cost, generationId}. A failed call, or an answer its provider ended with an error mid-generation, fails the step with that error (charged what it generated; `retry` applies)',
    },
    ACTION_HTTP: { value: 'action.http', description: 'An HTTP call (JSON body; outbound policy applies; sent with an Idempotency-Key). Example: {"method": "POST", "url": "https://example.com/hook", "body": {"text": "=steps.answer.text"}}; output {status, headers, body}' },
    ACTION_STORE_ENTRY: {
      value: 'action.storeEntry',
      description: 'Inserts an entry, or updates one by id or by a match filter. Example: {"table": "answers", "entry": {"question": "=trigger.body.question", "answer": "=steps.answer.text"}}; output {entry, created}',
    },
    ACTION_UPSERT_ENTRY: { value: 'action.upsertEntry', description: 'Find-or-create: the first entry matching, or a new one. Example: {"table": "users", "match": {"email": "=trigger.body.email"}}; output {entry, created}' },
    ACTION_EMIT: { value: 'action.emit', description: 'Emits a custom event of the account (event triggers on custom.<name> run). Example: {"event": "custom.report.ready", "data": {"id": "=run.id"}}; output {event, eventId}' },
    ACTION_GITHUB_COMMENT: {
      value: 'action.githubComment',
      description:
        'Comments on a pull request (or issue) through the GitHub API (GITHUB_API_URL, for GitHub Enterprise or a fake); the token is a secret of the account named by setSecret. Example: {"owner": "acme", "repo": "app", "number": 42, "body": "=steps.summary.text", "token": "GITHUB_TOKEN"}; output {id, url, createdAt}',
    },
  } as const,
});

export const WorkflowRef = builder.objectRef<WorkflowView>('Workflow').implement({
  description: "A versioned workflow of the account: every change to its definition is a new version.",
  fields: (t) => ({
    id: t.id({ resolve: (workflow) => workflow._id }),
    name: t.exposeString('name'),
    version: t.exposeInt('version', { description: 'The current version (1, 2, …); runs pin the version they started on.' }),
    status: t.field({ type: WorkflowStatusEnum, resolve: (workflow) => workflow.status }),
    triggerType: t.field({ type: WorkflowTriggerTypeEnum, description: "The definition's trigger.type.", resolve: (workflow) => workflow.triggerType }),
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
      args: { from: t.arg.string({ validate: calendarDayArg }), to: t.arg.string({ validate: calendarDayArg }) },
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
    description:
      "Create a workflow (version 1, enabled) in the caller's account: {name, trigger, steps, settings}. The trigger types are WorkflowTriggerType's values, the step types WorkflowStepType's (each with an example). A bad definition answers a DomainError whose details name the bad field's path (a model, preset or table it names literally must exist: create a table before a workflow that uses it).",
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

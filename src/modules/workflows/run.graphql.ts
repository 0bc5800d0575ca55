import { builder } from '../../graphql/builder.js';
import { seqConnection } from '../../graphql/connections.js';
import type { JsonValue } from '../../eventStore/eventStore.js';
import type { RunError } from './run.events.js';
import type { RunStepView, RunView } from './run.api.js';
import { idempotencyKeyArg } from '../../idempotencyKey.js';

export const WorkflowRunStatusEnum = builder.enumType('WorkflowRunStatus', {
  values: {
    QUEUED: { value: 'queued', description: "The workflow was at settings.maxConcurrentRuns: the run waits for a slot (first come, first served)." },
    RUNNING: { value: 'running' },
    SUCCEEDED: { value: 'succeeded' },
    FAILED: { value: 'failed' },
    CANCELLED: { value: 'cancelled' },
    FILTERED: { value: 'filtered', description: 'A control.filter step stopped the run: it ended successfully without going on.' },
  } as const,
});

const WorkflowStepStatusEnum = builder.enumType('WorkflowStepStatus', {
  values: {
    RUNNING: { value: 'running' },
    WAITING: { value: 'waiting', description: 'A control.delay step waits for its wake-up time (wakingAt).' },
    SUCCEEDED: { value: 'succeeded' },
    FAILED: { value: 'failed' },
    SKIPPED: { value: 'skipped' },
  } as const,
});

export const WorkflowRunErrorRef = builder.objectRef<RunError>('WorkflowRunError').implement({
  description: 'Why a run or a step failed.',
  fields: (t) => ({
    code: t.exposeString('code', { description: 'Stable: EXPRESSION_TIMEOUT, UNKNOWN_STEP_TYPE, STEP_TIMEOUT, BUDGET_EXCEEDED, RUN_TIMEOUT, CANCELLED, …' }),
    message: t.exposeString('message'),
  }),
});

const json = (value: JsonValue): unknown => value;

const WorkflowRunStepRef = builder.objectRef<RunStepView>('WorkflowRunStep').implement({
  fields: (t) => ({
    key: t.exposeString('key'),
    status: t.field({ type: WorkflowStepStatusEnum, resolve: (step) => step.status }),
    attempts: t.exposeInt('attempts', { description: 'Attempts started (0 for a skipped step).' }),
    input: t.field({ type: 'JSON', nullable: true, description: "The last attempt's input, its expressions evaluated, kept for reading the run: null until it has an outcome, when it could not be evaluated, and when it was not kept (over 64 KiB as JSON, or past what the run may still store: 16 MiB in all).", resolve: (step) => json(step.input) }),
    output: t.field({ type: 'JSON', nullable: true, resolve: (step) => json(step.output) }),
    error: t.field({ type: WorkflowRunErrorRef, nullable: true, resolve: (step) => step.error }),
    cost: t.field({ type: 'Money', description: 'Nano-dollars all its attempts were charged (a timed-out or aborted model call included).', resolve: (step) => step.cost }),
    durationMs: t.int({ nullable: true, description: "From the step's first start to its outcome, retries and their waits included (null until it ends).", resolve: (step) => step.durationMs }),
    carriedFrom: t.id({ nullable: true, description: 'The failed run whose outcome of this step a retry reused (the step did not run again, and charged nothing here).', resolve: (step) => step.carriedFrom }),
    wakingAt: t.field({ type: 'DateTime', nullable: true, description: 'When a WAITING control.delay step wakes; null otherwise.', resolve: (step) => step.wakingAt }),
  }),
});

export const WorkflowRunRef = builder.objectRef<RunView>('WorkflowRun').implement({
  description: 'One run of a workflow, pinned to the version it started on.',
  fields: (t) => ({
    id: t.exposeID('id'),
    workflowId: t.exposeID('workflowId'),
    version: t.exposeInt('version'),
    status: t.field({ type: WorkflowRunStatusEnum, resolve: (run) => run.status }),
    steps: t.field({ type: [WorkflowRunStepRef], description: 'The steps reached so far, in the order they were reached.', resolve: (run) => [...run.steps] }),
    output: t.field({ type: 'JSON', nullable: true, description: 'What action.respond produced (null until the run succeeded).', resolve: (run) => json(run.output) }),
    error: t.field({ type: WorkflowRunErrorRef, nullable: true, resolve: (run) => run.error }),
    cost: t.field({
      type: 'Money',
      description:
        "Nano-dollars the account was charged for the run: every attempt of its model calls, those cut by a step timeout, an error or a cancel included (what usage(groupBy: WORKFLOW) counts for it). It counts against settings.budget: an attempt whose reservation's worst case is more than the budget left is refused (BUDGET_EXCEEDED), so it never exceeds the budget. A call aborted by a cancel is added once it settles, just after the run's end.",
      resolve: (run) => run.cost,
    }),
    startedAt: t.field({ type: 'DateTime', description: 'When the run started; while it is QUEUED, when it was queued.', resolve: (run) => run.startedAt }),
    queuedAt: t.field({ type: 'DateTime', nullable: true, description: 'When the run was queued for a slot (null if it started at once).', resolve: (run) => run.queuedAt }),
    retryOf: t.id({ nullable: true, description: 'The failed run this run retries (retryWorkflowRun).', resolve: (run) => run.retryOf }),
    depth: t.int({
      description:
        'Runs before this one in a chain of runs triggering each other: 0 for a run started by a person, a webhook, a schedule or an entry a person wrote; the run it was triggered by + 1 for an error workflow, an event an action.emit step emitted, or an entry a step stored. A run past depth 5 is not started (FAILED with CHAIN_TOO_DEEP).',
      resolve: (run) => run.depth,
    }),
    endedAt: t.field({ type: 'DateTime', nullable: true, resolve: (run) => run.endedAt }),
    durationMs: t.int({ nullable: true, resolve: (run) => run.durationMs }),
  }),
});

builder.queryFields((t) => ({
  workflowRun: t.withAuth((_root, args: { id?: unknown }) => ({ ownsWorkflowRun: String(args.id) })).field({
    type: WorkflowRunRef,
    description:
      "A run of one of the account's workflows (another account's run is NOT_FOUND, as a missing one; for a restricted key, a spending limit or issued to an app, so is every run it did not start or cause: another key's, a webhook's, a schedule's).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.runs.get(ctx, String(args.id)),
  }),
  workflowRuns: t.withAuth((_root, args: { workflowId?: unknown }) => ({ ownsWorkflow: String(args.workflowId) })).connection({
    type: WorkflowRunRef,
    description:
      "A workflow's runs in the order they began (queued or started), optionally of one status; a restricted key's (a spending limit, or issued to an app) own runs only. Outputs over 16 KiB are null here: read the run (workflowRun) for them.",
    args: { workflowId: t.arg.id({ required: true }), status: t.arg({ type: WorkflowRunStatusEnum, required: false }) },
    resolve: (_root, args, ctx) => seqConnection(args, (page) => ctx.runs.list(ctx, String(args.workflowId), args.status ?? null, page)),
  }),
}));

builder.mutationFields((t) => ({
  runWorkflow: t.withAuth((_root, args: { id?: unknown }) => ({ ownsWorkflow: String(args.id) })).field({
    type: WorkflowRunRef,
    description:
      'Start a run of the current version with `input` as `trigger.body`. Answers the run as started (RUNNING), or QUEUED when the workflow is at settings.maxConcurrentRuns; read it or list runs to follow it. With `idempotencyKey`, the same key and input within 24 hours of its run answer that run (a retry never starts a second, and gets its run even once the workflow is disabled); the same key with another input is a CONFLICT.',
    errors: { directResult: true },
    args: {
      id: t.arg.id({ required: true }),
      input: t.arg({ type: 'JSON', required: false }),
      idempotencyKey: t.arg.string({
        required: false,
        description:
          "1 to 255 visible ASCII characters (! to ~, no spaces), the calling API key's own (the REST route's Idempotency-Key header; a key sent there and here is the same key): another key of the account sending the same one starts its own run.",
      }),
    },
    resolve: (_root, args, ctx) => {
      const trigger = { type: 'manual', body: (args.input ?? null) as JsonValue };
      const key = idempotencyKeyArg(args.idempotencyKey);
      return key === undefined ? ctx.runs.start(ctx, String(args.id), trigger) : ctx.runs.startOnce(ctx, String(args.id), trigger, key, 'caller');
    },
  }),
  cancelWorkflowRun: t.withAuth((_root, args: { id?: unknown }) => ({ ownsWorkflowRun: String(args.id) })).field({
    type: WorkflowRunRef,
    description:
      "Cancel a run: it stops between steps, and a step in flight is aborted (it ends FAILED with CANCELLED; what its call was charged is added to the run's cost once it settles). A run that has ended answers CONFLICT. A restricted key (a spending limit, or issued to an app) cancels only the runs it started or caused (any other is NOT_FOUND, as a missing one).",
    errors: { directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.runs.cancel(ctx, String(args.id)),
  }),
  retryWorkflowRun: t.withAuth((_root, args: { id?: unknown }) => ({ ownsWorkflowRun: String(args.id) })).field({
    type: WorkflowRunRef,
    description:
      'Retry a FAILED run: a new run of the same version with the same trigger that reuses the outputs of the steps before the failed one (carriedFrom; not run or charged again) and goes on from the failed step. Answers the new run (RUNNING or QUEUED); retrying the same run again answers that same retry. Any other status is a CONFLICT. A restricted key (a spending limit, or issued to an app) retries only the runs it started or caused (any other is NOT_FOUND, as a missing one).',
    errors: { directResult: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.runs.retry(ctx, String(args.id)),
  }),
}));

/**
 * The progress subscriptions of workflow runs. `workflowRun(id)` yields `WorkflowRunProgress`, an interface with
 * one object type per kind of event: a client with generated types gets a discriminated union on `__typename`,
 * and one without can read the common `type` field and ask each type's fields with fragments.
 */
import { builder } from '../../graphql/builder.js';
import type { JsonValue } from '../../eventStore/eventStore.js';
import { WorkflowRunErrorRef, WorkflowRunStatusEnum } from './run.graphql.js';
import type { ProgressFailure, RunProgressItem, RunStatusChange } from './run.progress.js';

type Item<T extends RunProgressItem['type']> = Extract<RunProgressItem, { type: T }>;
type Stored = Exclude<RunProgressItem, { type: 'token' }>;

const json = (value: JsonValue): unknown => value;

const TYPE_NAMES = {
  runQueued: 'WorkflowRunQueuedEvent',
  runStarted: 'WorkflowRunStartedEvent',
  stepCarriedOver: 'WorkflowStepCarriedOverEvent',
  stepStarted: 'WorkflowStepStartedEvent',
  stepWaiting: 'WorkflowStepWaitingEvent',
  stepSucceeded: 'WorkflowStepSucceededEvent',
  stepFailed: 'WorkflowStepFailedEvent',
  stepSkipped: 'WorkflowStepSkippedEvent',
  token: 'WorkflowStepTokenEvent',
  runEnded: 'WorkflowRunEndedEvent',
} as const satisfies Record<RunProgressItem['type'], string>;

const ProgressTypeEnum = builder.enumType('WorkflowRunProgressType', {
  values: {
    RUN_QUEUED: { value: 'runQueued' },
    RUN_STARTED: { value: 'runStarted' },
    STEP_CARRIED_OVER: { value: 'stepCarriedOver' },
    STEP_STARTED: { value: 'stepStarted' },
    STEP_WAITING: { value: 'stepWaiting' },
    STEP_SUCCEEDED: { value: 'stepSucceeded' },
    STEP_FAILED: { value: 'stepFailed' },
    STEP_SKIPPED: { value: 'stepSkipped' },
    TOKEN: { value: 'token' },
    RUN_ENDED: { value: 'runEnded' },
  } as const,
});

const SkipReasonEnum = builder.enumType('WorkflowStepSkipReason', {
  values: {
    CONDITION: { value: 'condition', description: "The step's `if` was false." },
    PATH: { value: 'path', description: 'The step is on a branch path that was not chosen.' },
  } as const,
});

const ProgressRef = builder.interfaceRef<RunProgressItem>('WorkflowRunProgress').implement({
  description: 'One event of a run\'s progress. Every type but WorkflowStepTokenEvent is stored in the run and replayed to a late subscriber.',
  resolveType: (item) => TYPE_NAMES[item.type],
  fields: (t) => ({
    type: t.field({ type: ProgressTypeEnum, resolve: (item) => item.type }),
    runId: t.exposeID('runId'),
  }),
});

const stored = <T extends Exclude<RunProgressItem['type'], 'token'>>(type: T, description: string) =>
  builder.objectRef<Item<T>>(TYPE_NAMES[type]).implement({
    description,
    interfaces: [ProgressRef],
    fields: (t) => ({
      revision: t.int({ description: "The event's place in the run's stream, from 0 (no gaps, no repeats).", resolve: (item) => (item as Stored).revision }),
      at: t.field({ type: 'DateTime', resolve: (item) => (item as Stored).at }),
    }),
  });

const TRIGGER_DESCRIPTION =
  'What started the run, as expressions read it (`trigger`): `{type: "manual", body}`, `{type: "webhook", body, headers}`, `{type: "schedule", scheduledAt, firedAt}`, …';
builder.objectFields(stored('runQueued', 'The workflow had its maximum of concurrent runs: the run waits for a slot (then WorkflowRunStartedEvent).'), (t) => ({
  workflowId: t.exposeID('workflowId'),
  version: t.exposeInt('version'),
  trigger: t.field({ type: 'JSON', nullable: true, description: TRIGGER_DESCRIPTION, resolve: (item) => json(item.trigger) }),
}));
builder.objectFields(stored('runStarted', 'The run started (on the version it is pinned to), or a queued run was admitted.'), (t) => ({
  workflowId: t.exposeID('workflowId'),
  version: t.exposeInt('version'),
  trigger: t.field({ type: 'JSON', nullable: true, description: TRIGGER_DESCRIPTION, resolve: (item) => json(item.trigger) }),
}));
builder.objectFields(stored('stepCarriedOver', 'A retry reused what the failed run did at this step (not run again, not charged).'), (t) => ({
  key: t.exposeString('key'),
  fromRun: t.exposeID('fromRun', { description: 'The failed run the step was done in.' }),
  output: t.field({ type: 'JSON', nullable: true, description: 'What later steps read as `steps.<key>` (null for a skipped step).', resolve: (item) => json(item.output) }),
  skipped: t.field({ type: SkipReasonEnum, nullable: true, description: 'Why the step was skipped in the failed run; null when it succeeded there.', resolve: (item) => item.skipped }),
}));
builder.objectFields(stored('stepStarted', 'An attempt of a step started.'), (t) => ({
  key: t.exposeString('key'),
  attempt: t.exposeInt('attempt', { description: 'From 1; a retry is the next attempt.' }),
}));
builder.objectFields(stored('stepWaiting', 'A control.delay step waits: it wakes at `wakingAt` (stored, so a restart wakes it on time), then succeeds with `{wokeAt, scheduledFor}`.'), (t) => ({
  key: t.exposeString('key'),
  attempt: t.exposeInt('attempt'),
  wakingAt: t.field({ type: 'DateTime', description: 'When the step wakes and the run goes on.', resolve: (item) => item.wakingAt }),
}));
builder.objectFields(stored('stepSucceeded', 'An attempt of a step succeeded.'), (t) => ({
  key: t.exposeString('key'),
  attempt: t.exposeInt('attempt'),
  output: t.field({ type: 'JSON', nullable: true, description: 'What later steps read as `steps.<key>`.', resolve: (item) => json(item.output) }),
  input: t.field({ type: 'JSON', nullable: true, description: "The attempt's input, its expressions evaluated.", resolve: (item) => json(item.input) }),
  cost: t.field({ type: 'Money', resolve: (item) => item.cost }),
}));
builder.objectFields(stored('stepFailed', 'An attempt of a step failed.'), (t) => ({
  key: t.exposeString('key'),
  attempt: t.exposeInt('attempt'),
  // Nullable (always set here) so it merges with WorkflowRunEndedEvent.error in one selection: GraphQL refuses
  // same-named fields of the union's types that differ in nullability.
  error: t.field({ type: WorkflowRunErrorRef, nullable: true, description: 'Always set.', resolve: (item) => item.error }),
  cost: t.field({ type: 'Money', description: 'A failed model call may still have charged.', resolve: (item) => item.cost }),
  retryAt: t.field({ type: 'DateTime', nullable: true, description: 'When the next attempt is due; null when the step is not retried.', resolve: (item) => item.retryAt }),
  input: t.field({ type: 'JSON', nullable: true, description: "The attempt's input, its expressions evaluated (null when they could not be).", resolve: (item) => json(item.input) }),
}));
builder.objectFields(stored('stepSkipped', 'A step was skipped.'), (t) => ({
  key: t.exposeString('key'),
  reason: t.field({ type: SkipReasonEnum, resolve: (item) => item.reason }),
}));
builder.objectFields(stored('runEnded', 'The run ended; the subscription completes after this event.'), (t) => ({
  status: t.field({ type: WorkflowRunStatusEnum, resolve: (item) => item.status }),
  output: t.field({ type: 'JSON', nullable: true, description: 'What action.respond produced (null unless SUCCEEDED).', resolve: (item) => json(item.output) }),
  error: t.field({ type: WorkflowRunErrorRef, nullable: true, resolve: (item) => item.error }),
  step: t.string({ nullable: true, description: 'The step the run failed on, or the filter that stopped it.', resolve: (item) => item.step }),
  cost: t.field({ type: 'Money', description: "Nano-dollars charged by the run's steps at its end (a call a cancel aborted is added to WorkflowRun.cost once it settles).", resolve: (item) => item.cost }),
}));

builder.objectRef<Item<'token'>>(TYPE_NAMES.token).implement({
  description: 'Text a model step produced, as it arrives. Not stored: a subscriber gets only the tokens produced after it subscribed.',
  interfaces: [ProgressRef],
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The model step.' }),
    attempt: t.exposeInt('attempt'),
    content: t.exposeString('content'),
  }),
});

const WorkflowRunStatusChangeRef = builder.objectRef<RunStatusChange>('WorkflowRunStatusChange').implement({
  description: 'A run of the workflow was queued (QUEUED), started (RUNNING) or ended (its final status).',
  fields: (t) => ({
    runId: t.exposeID('runId'),
    workflowId: t.exposeID('workflowId'),
    status: t.field({ type: WorkflowRunStatusEnum, resolve: (change) => change.status }),
    error: t.field({ type: WorkflowRunErrorRef, nullable: true, resolve: (change) => change.error }),
    at: t.field({ type: 'DateTime', resolve: (change) => change.at }),
  }),
});

/** A stream the server had to end (a client far behind, the store subscription lost): its last item is an error. */
const unlessFailure = <T>(item: T | ProgressFailure): T => {
  if (typeof item === 'object' && item !== null && 'type' in item && item.type === 'failure') throw item.error;
  return item as T;
};

builder.subscriptionFields((t) => ({
  workflowRun: t.withAuth((_root, args: { id?: unknown }) => ({ ownsWorkflowRun: String(args.id) })).field({
    type: ProgressRef,
    description:
      "A run's progress: first every stored event so far (so a late subscriber gets what already happened), then live events and the tokens of model steps as they arrive, until WorkflowRunEndedEvent, after which the subscription completes. Tokens are not stored: a subscriber gets only those produced after it subscribed. Another account's run is NOT_FOUND, and for a restricted key (a spending limit, or issued to an app) so is a run it did not start or cause.",
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) => ctx.runs.follow(ctx, String(args.id)),
    resolve: (item) => unlessFailure(item),
  }),
  workflowRuns: t.withAuth((_root, args: { workflowId?: unknown }) => ({ ownsWorkflow: String(args.workflowId) })).field({
    type: WorkflowRunStatusChangeRef,
    description: "The workflow's runs starting and ending, from now on (list earlier ones with the workflowRuns query); a restricted key's (a spending limit, or issued to an app) own runs only.",
    args: { workflowId: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) => ctx.runs.followWorkflow(ctx, String(args.workflowId)),
    resolve: (item) => unlessFailure(item),
  }),
}));

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { tableQueries } from '../../../projections/tables.js';
import { workflowQueries, type WorkflowDoc } from '../../../projections/workflows.js';
import type { Actor } from '../../core.js';
import { ConflictError, DomainError, NotFoundError, UnauthenticatedError, WrongExpectedVersionError } from '../../errors.js';
import type { DomainEvent, EventStore, RecordedEvent } from '../../eventStore/eventStore.js';
import type { Decider, HandleResult } from '../../eventStore/handleCommand.js';
import { newId } from '../../ids.js';
import { oneAtATime } from '../../oneAtATime.js';
import type { ReadStore } from '../../readStore/readStore.js';
import type { Caller, Principal } from '../auth/principal.js';
import type { CredentialVault } from '../catalog/credentials.js';
import { TABLE_NAME } from '../tables/table.events.js';
import { formatPath, invalidDefinition, isExpression, parseDefinition, WORKFLOW_ID, type DefinitionIssue, type WorkflowDefinition } from './definition.js';
import { checkStepInputs, type StepInputChecks } from './stepInputs.js';
import { compileSchedule, shortestInterval } from './triggers/cron.js';
import { workflowDecider, type LiveWorkflowState, type WorkflowActor, type WorkflowCommand, type WorkflowState } from './workflow.decider.js';
import { webhookSecretContext, workflowStream, type WorkflowEvent } from './workflow.events.js';
import { checkWebhookSignature } from './webhookSignature.js';

/** A workflow as commands and queries answer it: its read-model document with the definition parsed. */
export type WorkflowView = Omit<WorkflowDoc, 'definition' | 'webhookSecretHash' | 'webhookSecretEncrypted'> & {
  readonly definition: WorkflowDefinition;
  readonly hasWebhookSecret: boolean;
  /** Whether calls may be signed (HMAC): the secret is kept sealed, not only hashed. */
  readonly webhookSignatures: boolean;
};

/** How a webhook call proves it comes from the secret's holder. */
export type WebhookProof =
  | { readonly kind: 'secret'; readonly secret: string }
  /** An HMAC-SHA256 signature over the timestamp and the raw body (webhookSignature.ts). */
  | { readonly kind: 'signature'; readonly signature: string; readonly timestamp: string | null; readonly body: Buffer }
  | { readonly kind: 'none' };

export interface RotatedWebhookSecret {
  readonly workflow: WorkflowView;
  /** The secret itself: it exists only here, never in an event or a read model. */
  readonly secret: string;
}


/** The steps whose `table` input names a table of the workflow's account. */
const TABLE_STEPS: ReadonlySet<string> = new Set(['search.entries', 'action.storeEntry', 'action.upsertEntry']);

/**
 * The tables a definition names literally, with where (an entry trigger's, a table step's `table` that is no
 * expression and a well-formed name: a malformed one is the schema's issue, stepInputs.ts). What saving checks exists
 * and dropping a table checks no workflow still names.
 */
const literalTables = (definition: WorkflowDefinition): { path: string; table: string }[] => {
  const named: { path: string; table: string }[] = [];
  if (definition.trigger.type === 'entry') named.push({ path: 'trigger.table', table: definition.trigger.table });
  definition.steps.forEach((step, index) => {
    const table = step.input['table'];
    if (TABLE_STEPS.has(step.type) && typeof table === 'string' && !isExpression(table)) named.push({ path: formatPath(['steps', index, 'input', 'table']), table });
  });
  return named.filter(({ table }) => TABLE_NAME.test(table));
};

/** Runs a command and returns once the read models have applied it (Core.execute). */
type Execute = <S, C, E extends DomainEvent>(stream: string, decider: Decider<S, C, E>, command: C, actor: Actor) => Promise<HandleResult<S, E>>;

const viewOfState = (state: WorkflowState): WorkflowView => {
  if (state.status === 'none') throw new Error('a workflow command decided on a workflow that does not exist');
  const { workflowId, accountId, version, definition, status, webhookSecretHash, webhookSecretEncrypted, createdAt, updatedAt } = state;
  return {
    _id: workflowId,
    accountId,
    name: definition.name,
    version,
    definition,
    triggerType: definition.trigger.type,
    status,
    hasWebhookSecret: webhookSecretHash !== null,
    webhookSignatures: webhookSecretEncrypted !== null,
    createdAt,
    updatedAt,
  };
};

const viewOfDoc = ({ definition, webhookSecretHash, webhookSecretEncrypted, ...doc }: WorkflowDoc): WorkflowView => ({
  ...doc,
  definition: JSON.parse(definition) as WorkflowDefinition,
  hasWebhookSecret: webhookSecretHash !== null,
  webhookSignatures: webhookSecretEncrypted !== null,
});

export const hashWebhookSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

const callerOf = (caller: Caller): Principal => {
  if (!caller.principal) throw new UnauthenticatedError();
  return caller.principal;
};
const actorOf = (principal: Principal): WorkflowActor => ({ accountId: principal.accountId, roles: [...principal.roles] });

/** A workflow as its stream has it: its state folded from every event, and the definition of each version. */
interface Folded {
  readonly revision: number;
  readonly state: WorkflowState;
  readonly versions: ReadonlyMap<number, WorkflowDefinition>;
}

/**
 * Workflows folded in memory, at most this many (the least recently folded are dropped first): a run's start and its
 * executor read a workflow's current version, owner and pinned definition every time, and 10,000 schedules due in
 * the same second must not each re-read and re-parse whole streams.
 */
const MAX_FOLDED = 20_000;

type PageArgs = Parameters<ReturnType<typeof workflowQueries>['pageForAccount']>[1];

/** Per account (config: WORKFLOW_MAX_PER_ACCOUNT, WORKFLOW_MIN_SCHEDULE_SECONDS). */
export interface WorkflowLimits {
  /** Workflows an account has that are not deleted. */
  readonly maxPerAccount: number;
  /** The shortest interval between two due times of a schedule trigger, in seconds. */
  readonly minScheduleSeconds: number;
}
export const DEFAULT_WORKFLOW_LIMITS: WorkflowLimits = { maxPerAccount: 100, minScheduleSeconds: 60 };

/** The workflows module's definitions: designers create and change versioned workflows; anyone of the account reads them. */
export const createWorkflowsApi = (deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  execute: Execute;
  /** Seals webhook secrets for HMAC signatures (the provider keys' vault); without a master key only hashes are kept. */
  vault: Pick<CredentialVault, 'canEncrypt' | 'encrypt' | 'decrypt'>;
  /** What a definition's step inputs are checked against when saved: the catalog's models, the account's presets, the outbound policy. */
  stepInputs: StepInputChecks;
  now: () => Date;
  limits?: Partial<WorkflowLimits>;
}) => {
  const limits: WorkflowLimits = { ...DEFAULT_WORKFLOW_LIMITS, ...deps.limits };
  const queries = workflowQueries(deps.readStore);
  const tables = tableQueries(deps.readStore);
  const at = () => deps.now().toISOString();

  const run = async (caller: Caller, command: WorkflowCommand) => {
    const principal = callerOf(caller);
    const { state } = await deps.execute(workflowStream(command.data.workflowId), workflowDecider, command, { actor: principal.accountId, correlationId: caller.requestId });
    return viewOfState(state);
  };
  const base = (caller: Caller, workflowId: string) => ({ workflowId, actor: actorOf(callerOf(caller)), at: at() });

  const folded = new Map<string, Folded>();
  /**
   * The workflow as its stream has it now, or null when there is none. Always as fresh as the log (the stream's last
   * revision is read each time, one indexed read of one event, so an update, disable or delete, also by another
   * process, is seen at once); only the events after the revision folded before are read and folded.
   */
  const fold = async (workflowId: string): Promise<Folded | null> => {
    if (!WORKFLOW_ID.test(workflowId)) return null;
    const stream = workflowStream(workflowId);
    const [last] = await deps.eventStore.readStream(stream, { direction: 'backwards', maxCount: 1 });
    if (last === undefined) return null;
    const known = folded.get(workflowId);
    if (known !== undefined && known.revision >= last.revision) return known;
    const events = (await deps.eventStore.readStream(stream, known === undefined ? {} : { fromRevision: known.revision + 1 })) as RecordedEvent<WorkflowEvent>[];
    let state = known?.state ?? workflowDecider.initialState();
    const versions = new Map(known?.versions);
    for (const event of events) {
      state = workflowDecider.evolve(state, event);
      if (event.type === 'WorkflowCreated' || event.type === 'WorkflowUpdated') versions.set(event.data.version, event.data.definition);
    }
    const next: Folded = { revision: events.at(-1)?.revision ?? known?.revision ?? last.revision, state, versions };
    // Two folds at once: the newer one stays.
    const now = folded.get(workflowId);
    if (now === undefined || now.revision < next.revision) {
      folded.delete(workflowId);
      folded.set(workflowId, next);
      if (folded.size > MAX_FOLDED) folded.delete(folded.keys().next().value!);
    }
    return next;
  };
  /** The owner never changes: a workflow folded before answers without a read. */
  const ownerOf = async (workflowId: string): Promise<string | null> => {
    const known = folded.get(workflowId)?.state;
    const { state } = known !== undefined && known.status !== 'none' ? { state: known } : ((await fold(workflowId)) ?? {});
    return state === undefined || state.status === 'none' ? null : state.accountId;
  };
  /** `settings.errorWorkflow` names another workflow of the same account (the one saving's, or the workflow's owner). */
  const errorWorkflowIssues = async (definition: WorkflowDefinition, accountId: string | null, self: string | null): Promise<DefinitionIssue[]> => {
    const target = definition.settings.errorWorkflow;
    if (target === undefined) return [];
    const problem =
      target === self ? 'a workflow cannot be its own error workflow' : accountId === null || (await ownerOf(target)) !== accountId ? `there is no workflow ${target} in this account` : null;
    return problem === null ? [] : [{ path: 'settings.errorWorkflow', message: problem }];
  };
  /**
   * The tables a definition names literally (an entry trigger's, a table step's) are tables of the account, as a model
   * step's preset must be its preset: a run storing into a missing table fails (an error workflow, whenever it is
   * needed), so saving says "create it first". A table named by an expression is looked up when the step runs.
   */
  const tableIssues = async (definition: WorkflowDefinition, accountId: string | null): Promise<DefinitionIssue[]> => {
    const lookups = literalTables(definition);
    const found = await Promise.all(lookups.map(({ table }) => (accountId === null ? null : tables.byName(accountId, table))));
    return lookups.flatMap(({ path, table }, i) => (found[i] ? [] : [{ path, message: `there is no table ${table} in this account: create it first (createTable)` }]));
  };
  /** A schedule fires at most once per minScheduleSeconds (a per-second cron on 150 workflows wrote 45 GB a day). */
  const scheduleIssues = (definition: WorkflowDefinition): DefinitionIssue[] => {
    const { trigger } = definition;
    if (trigger.type !== 'schedule') return [];
    const compiled = compileSchedule(trigger, deps.now());
    const shortest = compiled.ok ? shortestInterval(compiled.cron, deps.now()) : null;
    if (shortest === null || shortest >= limits.minScheduleSeconds * 1_000) return [];
    return [{ path: 'trigger.cron', message: `fires ${shortest / 1_000} s apart; a schedule may fire at most once every ${limits.minScheduleSeconds} s (WORKFLOW_MIN_SCHEDULE_SECONDS)` }];
  };
  /** The definition as saved (parsed), once its schedule, its step inputs and its error workflow pass; else VALIDATION naming each problem's path. */
  const validate = async (parsed: WorkflowDefinition, accountId: string | null, self: string | null): Promise<WorkflowDefinition> => {
    const issues = [
      ...scheduleIssues(parsed),
      ...checkStepInputs(parsed, accountId, deps.stepInputs),
      ...(await tableIssues(parsed, accountId)),
      ...(await errorWorkflowIssues(parsed, accountId, self)),
    ];
    if (issues.length > 0) throw invalidDefinition(issues);
    return parsed;
  };
  /**
   * An account's table drops and its saves of workflows naming tables literally run one at a time in this process,
   * each from its check (does the table exist / does a workflow name it) until the read model the other side checks
   * holds its write (execute and the tables' execute wait for it): whichever comes second sees the first and is
   * refused, never a saved workflow naming a dropped table. Nothing else takes this turn. Across processes sharing one
   * event store the two checks still read read models, so it stays a soft guarantee there (README).
   */
  const tableTurn = oneAtATime();
  const namingTables = <T>(definition: WorkflowDefinition, accountId: string | null, work: () => Promise<T>): Promise<T> =>
    accountId !== null && literalTables(definition).length > 0 ? tableTurn(accountId, work) : work();

  return {
    /** Create a workflow (version 1, enabled) for the caller's account; the definition is validated first. */
    async create(caller: Caller, definition: unknown): Promise<WorkflowView> {
      const principal = callerOf(caller);
      const parsed = parseDefinition(definition);
      return namingTables(parsed, principal.accountId, async () => {
        await validate(parsed, principal.accountId, null);
        // From the read model: two creates racing at the limit may both pass, which a soft limit tolerates (as tables).
        if ((await queries.countForAccount(principal.accountId)) >= limits.maxPerAccount) {
          throw new ConflictError(`The account has the maximum of ${limits.maxPerAccount} workflows; delete one first`, { reason: 'too_many_workflows', limit: limits.maxPerAccount });
        }
        const workflowId = newId('wf');
        return run(caller, { type: 'CreateWorkflow', data: { ...base(caller, workflowId), accountId: principal.accountId, definition: parsed } });
      });
    },
    /** Save a new version (the same definition again is no change). */
    update: async (caller: Caller, workflowId: string, definition: unknown) => {
      const parsed = parseDefinition(definition);
      const owner = await ownerOf(workflowId);
      return namingTables(parsed, owner, async () => run(caller, { type: 'UpdateWorkflow', data: { ...base(caller, workflowId), definition: await validate(parsed, owner, workflowId) } }));
    },
    // Enabling checks no table: a disabled workflow holds the tables it names as an enabled one does (namingTable).
    enable: (caller: Caller, workflowId: string) => run(caller, { type: 'EnableWorkflow', data: base(caller, workflowId) }),
    disable: (caller: Caller, workflowId: string) => run(caller, { type: 'DisableWorkflow', data: base(caller, workflowId) }),
    delete: (caller: Caller, workflowId: string) => run(caller, { type: 'DeleteWorkflow', data: base(caller, workflowId) }),
    /** A new webhook secret replaces the old one at once; the answer holds it, shown this once. */
    async rotateWebhookSecret(caller: Caller, workflowId: string): Promise<RotatedWebhookSecret> {
      const secret = `whsec_${randomBytes(32).toString('base64url')}`;
      const secretEncrypted = deps.vault.canEncrypt ? deps.vault.encrypt(webhookSecretContext(workflowId), secret) : null;
      const workflow = await run(caller, { type: 'RotateWebhookSecret', data: { ...base(caller, workflowId), secretHash: hashWebhookSecret(secret), secretEncrypted } });
      return { workflow, secret };
    },

    /** Policy: the account a workflow belongs to, from its stream (so it is manageable the moment it exists), or null. */
    ownerOf,
    /** The definition a run pins: version `version` of the workflow, from its stream; null if there is no such version. */
    async definitionAt(workflowId: string, version: number): Promise<WorkflowDefinition | null> {
      // A saved version never changes: one folded before answers without a read.
      return folded.get(workflowId)?.versions.get(version) ?? (await fold(workflowId))?.versions.get(version) ?? null;
    },
    /** The workflow as its stream has it now (status, owner, current version and definition), or null when it never existed. */
    async current(workflowId: string): Promise<LiveWorkflowState | null> {
      const state = (await fold(workflowId))?.state;
      return state === undefined || state.status === 'none' ? null : state;
    },
    /** A workflow that is not deleted, or NOT_FOUND (the caller's right to see it is checked by the adapter). */
    async get(workflowId: string): Promise<WorkflowView> {
      const [doc] = WORKFLOW_ID.test(workflowId) ? await queries.byIds([workflowId]) : [];
      if (!doc || doc.status === 'deleted') throw new NotFoundError('Workflow', workflowId);
      return viewOfDoc(doc);
    },
    /**
     * The workflow a webhook call names, if the call proves it holds the webhook secret: the secret itself (SHA-256
     * digests compared in constant time) or an HMAC signature of the body under it (webhookSignature.ts). A missing,
     * deleted or non-webhook workflow is NOT_FOUND; no secret rotated in, a wrong or missing secret, a bad or stale
     * signature, or a signature for a secret only hashed, is UNAUTHENTICATED. Whether it is enabled is left to the
     * run's start (only a secret holder learns it).
     */
    async webhookTarget(workflowId: string, proof: WebhookProof): Promise<WorkflowView> {
      const [doc] = WORKFLOW_ID.test(workflowId) ? await queries.byIds([workflowId]) : [];
      if (!doc || doc.status === 'deleted' || doc.triggerType !== 'webhook') throw new NotFoundError('Workflow', workflowId);
      const refuse = (reason: string, message: string) => new DomainError('UNAUTHENTICATED', message, 401, { reason });
      switch (proof.kind) {
        case 'none':
        case 'secret': {
          const stored = doc.webhookSecretHash === null ? null : Buffer.from(doc.webhookSecretHash, 'hex');
          const given = proof.kind === 'none' ? null : Buffer.from(hashWebhookSecret(proof.secret), 'hex');
          if (stored === null || given === null || stored.length !== given.length || !timingSafeEqual(stored, given)) {
            throw refuse('wrong_secret', 'Missing or wrong webhook secret: send it in the x-switchyard-webhook-secret header, or sign the call (x-switchyard-signature)');
          }
          return viewOfDoc(doc);
        }
        case 'signature': {
          if (doc.webhookSecretHash === null) throw refuse('wrong_secret', 'Wrong webhook signature: this workflow has no webhook secret yet (rotate one)');
          if (doc.webhookSecretEncrypted === null) {
            throw refuse(
              'secret_not_signable',
              "This workflow's webhook secret is kept only as a hash (it was rotated in before signatures, or on a server without SWITCHYARD_MASTER_KEY), so signed calls cannot be checked: rotate the secret, or send it in x-switchyard-webhook-secret",
            );
          }
          const opened = deps.vault.decrypt(webhookSecretContext(workflowId), doc.webhookSecretEncrypted);
          if (opened.secret === null) throw refuse('secret_not_signable', `The webhook secret cannot be read to check the signature (${opened.problem ?? 'unknown'}): rotate the secret`);
          const check = checkWebhookSignature({ secret: opened.secret, signature: proof.signature, timestamp: proof.timestamp, body: proof.body, nowMs: deps.now().getTime() });
          if (!check.ok) throw refuse(check.reason, check.message);
          return viewOfDoc(doc);
        }
        default: {
          const _never: never = proof;
          throw new Error(`unknown webhook proof ${String(_never)}`);
        }
      }
    },
    /**
     * The idempotency key a signed webhook call goes by. Its signature is claimed once (a stream per signature, appended
     * with `no_stream`): the first call with it names the key (its Idempotency-Key, else the signature itself), and
     * every later call with the same signature, a retry or a replay with any other Idempotency-Key (which is not
     * signed), goes by that first key, so it answers the same run. Across processes and restarts.
     */
    async signedCallKey(workflowId: string, signature: string, idempotencyKey: string | null): Promise<string> {
      const normalized = signature.trim().toLowerCase();
      const key = idempotencyKey ?? `signed ${normalized}`;
      const stream = `webhookSignature-${createHash('sha256').update(`${workflowId}\n${normalized}`).digest('hex').slice(0, 40)}`;
      try {
        await deps.eventStore.append(stream, [{ type: 'WebhookSignatureUsed', data: { workflowId, idempotencyKey: key, at: deps.now().toISOString() } }], { expectedRevision: 'no_stream' });
        return key;
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
        const [first] = await deps.eventStore.readStream(stream, { maxCount: 1 });
        const claimed = (first?.data as { idempotencyKey?: unknown } | undefined)?.idempotencyKey;
        return typeof claimed === 'string' ? claimed : key;
      }
    },
    /**
     * The account's workflows (not deleted; enabled or not) whose definition names the table literally (literalTables),
     * in id order: a table they name must not be dropped under them (their runs would fail NOT_FOUND). Read from the
     * read model, which a save on this process has reached before it answers.
     */
    async namingTable(accountId: string, table: string): Promise<{ id: string; name: string }[]> {
      const docs = await queries.forAccount(accountId);
      return docs.filter((doc) => literalTables(JSON.parse(doc.definition) as WorkflowDefinition).some((named) => named.table === table)).map((doc) => ({ id: doc._id, name: doc.name }));
    },
    /** Runs a table drop of the account in the turn its saves of workflows naming tables take (tableTurn). */
    tableTurn: <T>(accountId: string, work: () => Promise<T>): Promise<T> => tableTurn(accountId, work),
    /** One page of an account's workflows (filter and sort from idPage), deleted ones left out. */
    async pageForAccount(accountId: string, page: PageArgs): Promise<WorkflowView[]> {
      return (await queries.pageForAccount(accountId, page)).map(viewOfDoc);
    },
  };
};

export type WorkflowsApi = ReturnType<typeof createWorkflowsApi>;

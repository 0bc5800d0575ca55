/**
 * A generation's lifecycle: requested, then attempts (each started, and failed unless it is the last), then one end
 * (completed, failed or cancelled), then at most one usage over-report. Pure: times come in with the commands.
 *
 * The gateway records a generation in one append at its end (gateway.ts explains the trade-off), so its commands
 * are decided in order in memory (`decideAll`) and their events appended together; the decider still guards each
 * step, so a record out of order is refused rather than stored.
 */
import { ConflictError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import type {
  AttemptFailed,
  AttemptStarted,
  GenerationCancelled,
  GenerationCompleted,
  GenerationEvent,
  GenerationFailed,
  GenerationRequested,
  UsageOverReported,
} from './generation.events.js';

/** Stored messages are bounded: an upstream may send a whole HTML page as its error. */
export const ATTEMPT_MESSAGE_MAX = 500;
export const GENERATION_MESSAGE_MAX = 1000;

type Ended = 'completed' | 'failed' | 'cancelled';

export type GenerationState =
  | { readonly status: 'none' }
  | {
      readonly status: 'running' | Ended;
      readonly generationId: string;
      readonly accountId: string;
      readonly keyId: string | null;
      readonly stream: boolean;
      /** Attempts started so far (attempts are numbered from 1, in order). */
      readonly attempts: number;
      /** The attempt in flight: started and not failed (the last attempt ends with the generation). */
      readonly openAttempt: number | null;
      readonly overReported: boolean;
    };

/**
 * Commands carry their event's data whole: the decider checks it against the generation (same generation, account,
 * key and streaming as requested) rather than copying it, so a decided record costs no more than one built by hand
 * (it is decided on every call; measured in the module's report).
 */
export type GenerationCommand =
  | { readonly type: 'RequestGeneration'; readonly data: GenerationRequested['data'] }
  | { readonly type: 'StartAttempt'; readonly data: AttemptStarted['data'] }
  | { readonly type: 'FailAttempt'; readonly data: AttemptFailed['data'] }
  | { readonly type: 'CompleteGeneration'; readonly data: GenerationCompleted['data'] }
  | { readonly type: 'FailGeneration'; readonly data: GenerationFailed['data'] }
  | { readonly type: 'CancelGeneration'; readonly data: GenerationCancelled['data'] }
  | { readonly type: 'ReportUsageOverReported'; readonly data: UsageOverReported['data'] };

type Known = Exclude<GenerationState, { status: 'none' }>;

/** The requested generation this step belongs to (by id; and by account and key when the step names them). */
const requireRequested = (state: GenerationState, what: string, data: { generationId: string; accountId?: string; keyId?: string | null }): Known => {
  if (state.status === 'none') throw new ConflictError(`Cannot ${what}: generation ${data.generationId} was never requested`);
  if (data.generationId !== state.generationId || (data.accountId !== undefined && data.accountId !== state.accountId) || (data.keyId !== undefined && data.keyId !== state.keyId)) {
    throw new ConflictError(`Cannot ${what}: the step names another generation, account or key than generation ${state.generationId}`);
  }
  return state;
};

const requireRunning = (state: GenerationState, what: string, data: { generationId: string; accountId?: string; keyId?: string | null }): Known => {
  const known = requireRequested(state, what, data);
  if (known.status !== 'running') throw new ConflictError(`Generation ${known.generationId} has already ${known.status}: cannot ${what}`);
  return known;
};

/** An end names whether the generation streamed, which the request decided. */
const requireEnd = (state: GenerationState, what: string, data: GenerationCompleted['data'] | GenerationFailed['data'] | GenerationCancelled['data']): Known => {
  const known = requireRunning(state, what, data);
  if (data.streamed !== known.stream) throw new ConflictError(`Cannot ${what}: generation ${known.generationId} was requested ${known.stream ? '' : 'not '}streamed`);
  return known;
};

/** Bounded, copying only when it must (most messages are short). */
const bounded = <D extends { readonly message: string }>(data: D, max: number): D => (data.message.length > max ? { ...data, message: data.message.slice(0, max) } : data);

export const generationDecider: Decider<GenerationState, GenerationCommand, GenerationEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    if (event.type === 'GenerationRequested') {
      const { generationId, accountId, keyId, stream } = event.data;
      return { status: 'running', generationId, accountId, keyId, stream, attempts: 0, openAttempt: null, overReported: false };
    }
    if (state.status === 'none') return state;
    switch (event.type) {
      case 'AttemptStarted':
        return { ...state, attempts: event.data.attempt, openAttempt: event.data.attempt };
      case 'AttemptFailed':
        return { ...state, openAttempt: null };
      case 'GenerationCompleted':
        return { ...state, status: 'completed', openAttempt: null };
      case 'GenerationFailed':
        return { ...state, status: 'failed', openAttempt: null };
      case 'GenerationCancelled':
        return { ...state, status: 'cancelled', openAttempt: null };
      case 'UsageOverReported':
        return { ...state, overReported: true };
      default: {
        const _never: never = event;
        return state;
      }
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'RequestGeneration':
        if (state.status !== 'none') throw new ConflictError(`Generation ${command.data.generationId} was already requested`);
        return [{ type: 'GenerationRequested', data: command.data }];
      case 'StartAttempt': {
        const known = requireRunning(state, 'start an attempt', command.data);
        // The router tries one target at a time: a new attempt only after the previous one failed.
        if (known.openAttempt !== null) throw new ConflictError(`Attempt ${known.openAttempt} of generation ${known.generationId} has not ended`);
        if (command.data.attempt !== known.attempts + 1) {
          throw new ConflictError(`Attempt ${command.data.attempt} of generation ${known.generationId} is out of order (next is ${known.attempts + 1})`);
        }
        return [{ type: 'AttemptStarted', data: command.data }];
      }
      case 'FailAttempt': {
        const known = requireRunning(state, 'fail an attempt', command.data);
        if (known.openAttempt !== command.data.attempt) throw new ConflictError(`Attempt ${command.data.attempt} of generation ${known.generationId} is not in flight`);
        return [{ type: 'AttemptFailed', data: bounded(command.data, ATTEMPT_MESSAGE_MAX) }];
      }
      case 'CompleteGeneration': {
        requireEnd(state, 'complete', command.data);
        const { error } = command.data;
        // The error its provider ended the answer with is bounded as a failed generation's.
        const data = error === undefined || error.message.length <= GENERATION_MESSAGE_MAX ? command.data : { ...command.data, error: bounded(error, GENERATION_MESSAGE_MAX) };
        return [{ type: 'GenerationCompleted', data }];
      }
      case 'FailGeneration':
        requireEnd(state, 'fail', command.data);
        return [{ type: 'GenerationFailed', data: bounded(command.data, GENERATION_MESSAGE_MAX) }];
      case 'CancelGeneration':
        requireEnd(state, 'cancel', command.data);
        return [{ type: 'GenerationCancelled', data: command.data }];
      case 'ReportUsageOverReported': {
        const known = requireRequested(state, 'report usage', command.data);
        // Reported against the billed outcome, so only once the generation has ended; once is enough.
        if (known.status === 'running') throw new ConflictError(`Generation ${known.generationId} has not ended: its usage is not billed yet`);
        return known.overReported ? [] : [{ type: 'UsageOverReported', data: command.data }];
      }
      default: {
        const _never: never = command;
        return [];
      }
    }
  },
};

/** Decide commands in order against a state, each seeing the events of the ones before: the events of them all. */
export const decideAll = (commands: readonly GenerationCommand[], state: GenerationState = generationDecider.initialState()): GenerationEvent[] => {
  const events: GenerationEvent[] = [];
  for (const command of commands) {
    for (const event of generationDecider.decide(command, state)) {
      events.push(event);
      state = generationDecider.evolve(state, event);
    }
  }
  return events;
};

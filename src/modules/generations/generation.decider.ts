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

/** What the generation's record names itself with; the decider copies it from the request onto its end. */
type Identity = 'generationId' | 'accountId' | 'keyId' | 'streamed';

export type GenerationCommand =
  | { readonly type: 'RequestGeneration'; readonly data: GenerationRequested['data'] }
  | { readonly type: 'StartAttempt'; readonly data: Omit<AttemptStarted['data'], 'generationId'> }
  | { readonly type: 'FailAttempt'; readonly data: Omit<AttemptFailed['data'], 'generationId'> }
  | { readonly type: 'CompleteGeneration'; readonly data: Omit<GenerationCompleted['data'], Identity> }
  | { readonly type: 'FailGeneration'; readonly data: Omit<GenerationFailed['data'], Identity> }
  | { readonly type: 'CancelGeneration'; readonly data: Omit<GenerationCancelled['data'], Identity> }
  | { readonly type: 'ReportUsageOverReported'; readonly data: Omit<UsageOverReported['data'], 'generationId' | 'accountId' | 'keyId'> };

type Known = Exclude<GenerationState, { status: 'none' }>;

const requireRequested = (state: GenerationState, what: string): Known => {
  if (state.status === 'none') throw new ConflictError(`Cannot ${what}: the generation was never requested`);
  return state;
};

const requireRunning = (state: GenerationState, what: string): Known => {
  const known = requireRequested(state, what);
  if (known.status !== 'running') throw new ConflictError(`Generation ${known.generationId} has already ${known.status}: cannot ${what}`);
  return known;
};

const identity = (state: Known) => ({ generationId: state.generationId, accountId: state.accountId, keyId: state.keyId, streamed: state.stream });

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
        const known = requireRunning(state, 'start an attempt');
        // The router tries one target at a time: a new attempt only after the previous one failed.
        if (known.openAttempt !== null) throw new ConflictError(`Attempt ${known.openAttempt} of generation ${known.generationId} has not ended`);
        if (command.data.attempt !== known.attempts + 1) {
          throw new ConflictError(`Attempt ${command.data.attempt} of generation ${known.generationId} is out of order (next is ${known.attempts + 1})`);
        }
        return [{ type: 'AttemptStarted', data: { generationId: known.generationId, ...command.data } }];
      }
      case 'FailAttempt': {
        const known = requireRunning(state, 'fail an attempt');
        if (known.openAttempt !== command.data.attempt) throw new ConflictError(`Attempt ${command.data.attempt} of generation ${known.generationId} is not in flight`);
        return [{ type: 'AttemptFailed', data: { generationId: known.generationId, ...command.data, message: command.data.message.slice(0, ATTEMPT_MESSAGE_MAX) } }];
      }
      case 'CompleteGeneration':
        return [{ type: 'GenerationCompleted', data: { ...identity(requireRunning(state, 'complete')), ...command.data } }];
      case 'FailGeneration':
        return [{ type: 'GenerationFailed', data: { ...identity(requireRunning(state, 'fail')), ...command.data, message: command.data.message.slice(0, GENERATION_MESSAGE_MAX) } }];
      case 'CancelGeneration':
        return [{ type: 'GenerationCancelled', data: { ...identity(requireRunning(state, 'cancel')), ...command.data } }];
      case 'ReportUsageOverReported': {
        const known = requireRequested(state, 'report usage');
        // Reported against the billed outcome, so only once the generation has ended; once is enough.
        if (known.status === 'running') throw new ConflictError(`Generation ${known.generationId} has not ended: its usage is not billed yet`);
        if (known.overReported) return [];
        const { generationId, accountId, keyId } = known;
        return [{ type: 'UsageOverReported', data: { generationId, accountId, keyId, ...command.data } }];
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

/** The messages between the request thread and an expression thread (expressionThreads.ts, expressionWorker.ts). */
import type { JsonValue } from '../../eventStore/eventStore.js';
import type { ExpressionLimits } from './run.expressions.js';

/** Slots of the shared clock (a BigInt64Array): when the expression in progress started (ms, 0 between jobs)... */
export const CLOCK_STARTED = 0;
/** ...and which of its job's expressions it is (in evaluation order, from 0). */
export const CLOCK_INDEX = 1;
export const CLOCK_SLOTS = 2;

/**
 * A scope as sent: the trigger and each step's output as JSON text, which the request thread makes once per value (a
 * run's values do not change) and copies as one block, where a structured clone walks the whole value at every step.
 */
export interface WireScope {
  readonly trigger: string;
  readonly steps: Readonly<Record<string, string>>;
  readonly run: JsonValue;
  readonly workflow: JsonValue;
}

export type ExpressionJob = { readonly id: number; readonly scope: WireScope; readonly where: string; readonly limits: ExpressionLimits } & (
  | { readonly kind: 'input'; readonly input: JsonValue }
  | { readonly kind: 'expression'; readonly source: string }
);

export type ExpressionAnswer = { readonly id: number; readonly ok: true; readonly value: JsonValue } | { readonly id: number; readonly ok: false; readonly code: string | null; readonly message: string };

/**
 * Evaluating a step's inputs: a string starting with `=` is a JSONata expression over `{trigger, steps, run,
 * workflow}`, anything else a literal. Every evaluation is bounded in time, depth and sequence length by jsonata's
 * own guardrails (checked on every evaluation step, so a recursive function that never ends stops with an error),
 * every string it makes in length, and its result in size.
 *
 * The server runs these on its expression threads (expressionThreads.ts), which stop an evaluation at its time limit
 * even inside one synchronous call that no guardrail between steps can reach (a regexp that backtracks for ever).
 */
import jsonata from 'jsonata';
import type { JsonValue } from '../../eventStore/eventStore.js';
import { linearRegex } from '../../linearRegex.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../objects.js';
import { isExpression } from './definition.js';
import { StepError } from './steps/step.js';

export interface ExpressionLimits {
  readonly timeoutMs: number;
  /** Nested evaluations (recursion). */
  readonly maxDepth: number;
  /** Items of one sequence. */
  readonly maxSequence: number;
  /** UTF-8 bytes of one value as JSON. */
  readonly maxOutputBytes: number;
}
export const DEFAULT_EXPRESSION_LIMITS: ExpressionLimits = { timeoutMs: 1_000, maxDepth: 500, maxSequence: 100_000, maxOutputBytes: 1024 * 1024 };

/** jsonata awaits the function bound to this symbol before every evaluation step (the hook its own timebox tests use). */
const EVALUATE_ENTRY = Symbol.for('jsonata.__evaluate_entry');
/** jsonata awaits the function bound to this symbol after every evaluation step, with the step's value. */
const EVALUATE_EXIT = Symbol.for('jsonata.__evaluate_exit');
/** Evaluation steps between two hand-backs of the event loop (a few hundred microseconds of work). */
const YIELD_EVERY = 1_000;

/**
 * The longest string an expression may make (as long as a run's whole state, 16 MiB, could hold). `"x" & "x"` doubled
 * 28 times is a string of 268 million characters made in microseconds, and `$split` of it into characters, `$length`
 * or `$substring` (which make an array of its code points) abort the whole process: V8's "invalid size" is fatal, not
 * an exception, on any thread. Checked on every step's value, so no built-in ever gets such a string.
 */
export const MAX_EXPRESSION_STRING = 16 * 1024 * 1024;
/** The widest a `$fromMillis` picture's width modifier (`[Y,4]`, `[f,1-3]`) may make one component. */
export const MAX_PICTURE_WIDTH = 1_000;

/*
 * A regular expression runs inside one synchronous call that no timeout can interrupt: `/(a+)+$/` against 30 a's and a
 * "!" holds the event loop for half a minute. V8 switches a regexp that backtracks too much to its linear-time engine,
 * but only one that engine can run: linearRegex (the check every designer regexp passes) refuses the others and writes
 * out `i`, which that engine cannot run either. Nested quantifiers are the fallback's to defuse here (no store runs these).
 */
class LinearRegExp extends RegExp {
  constructor(pattern: RegExp | string, flags?: string) {
    const source = typeof pattern === 'string' ? pattern : pattern.source;
    const linear = linearRegex(source, flags ?? (typeof pattern === 'string' ? '' : pattern.flags), { allowNestedQuantifiers: true });
    if (!linear.ok) throw new Error(`regular expression /${source}/ is not allowed in workflows: ${linear.problem} (it could run for ever)`);
    super(linear.source, linear.flags);
  }
}
/** jsonata only ever calls its RegexEngine with `new`; the type asks for RegExp's call signature too. */
const LINEAR_REGEXP = LinearRegExp as unknown as RegExpConstructor;

export const EXPRESSION_ERROR_CODES = { failed: 'EXPRESSION_FAILED', timeout: 'EXPRESSION_TIMEOUT', tooDeep: 'EXPRESSION_TOO_DEEP', tooLarge: 'EXPRESSION_TOO_LARGE' } as const;

export interface ExpressionScope {
  readonly trigger: JsonValue;
  readonly steps: Readonly<Record<string, JsonValue>>;
  readonly run: JsonValue;
  readonly workflow: JsonValue;
}

/** jsonata throws plain objects `{code, message, value}`. */
const describe = (error: unknown): { code: string | null; message: string } => {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return { code: typeof code === 'string' ? code : null, message: typeof message === 'string' ? message : String(error) };
  }
  return { code: null, message: String(error) };
};

/** A JSON copy of the value (jsonata returns functions, sequences, undefined), or a size error. */
const toJson = (value: unknown, where: string, limits: ExpressionLimits): JsonValue => {
  if (value === undefined || typeof value === 'function') return null;
  const tooDeep = () => new StepError(EXPRESSION_ERROR_CODES.tooDeep, `${where}: the value nests more than ${MAX_JSON_DEPTH} levels deep`, false);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    // V8's JSON.stringify checks its stack: thousands of levels are a RangeError here, not a crash.
    if (error instanceof RangeError && /call stack/i.test(error.message)) throw tooDeep();
    throw new StepError(EXPRESSION_ERROR_CODES.failed, `${where}: the value is not JSON (${describe(error).message})`, false);
  }
  if (text === undefined) return null;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxOutputBytes) {
    throw new StepError(EXPRESSION_ERROR_CODES.tooLarge, `${where}: the value is ${bytes} bytes, over the limit of ${limits.maxOutputBytes}`, false);
  }
  const json = JSON.parse(text) as JsonValue;
  // Checked on the JSON copy (a jsonata value may hold functions and cycles): every later walk of a step's input
  // (its schema, storing, emitting) recurses once per level.
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) throw tooDeep();
  return json;
};

/**
 * jsonata's `$pad` builds its padding as `new Array(width).join(char)` in one synchronous call: a width of 150
 * million aborts the whole process (V8's "invalid array length" is fatal, not an exception) before any timeout can
 * act, and a resumed run would do it again at every start. This one refuses a width past the output limit and builds
 * the padding by `repeat`, in code points, as jsonata's does.
 */
const boundedPad = (limits: ExpressionLimits, where: string) => (str: string | undefined, width: number, char?: string): string | undefined => {
  if (str === undefined) return undefined;
  const fill = char === undefined || char.length === 0 ? ' ' : char;
  const wide = Math.trunc(width);
  if (!Number.isFinite(wide) || Math.abs(wide) > limits.maxOutputBytes) {
    throw new StepError(EXPRESSION_ERROR_CODES.tooLarge, `${where}: $pad to ${width} characters is over the limit of ${limits.maxOutputBytes}`, false);
  }
  const missing = Math.abs(wide) - [...str].length;
  if (missing <= 0) return str;
  const fillPoints = [...fill];
  const padding = fillPoints.length === 1 ? fill.repeat(missing) : [...fill.repeat(Math.ceil(missing / fillPoints.length))].slice(0, missing).join('');
  return wide > 0 ? str + padding : padding + str;
};

/**
 * The widths a date-time picture's markers ask for, as jsonata reads them (analyseDateTimePicture: `[[` is a literal,
 * a marker ends at the next `]`, blanks in it are ignored, the width modifier follows its last comma as `min` or
 * `min-max`, each read by parseInt without a radix, so `0x10` is 16).
 */
const pictureWidths = (picture: string): number[] => {
  const widths: number[] = [];
  for (let at = 0; at < picture.length; at++) {
    if (picture[at] !== '[') continue;
    if (picture[at + 1] === '[') {
      at++;
      continue;
    }
    const end = picture.indexOf(']', at);
    if (end === -1) break;
    const marker = picture.slice(at + 1, end).replace(/\s+/g, '');
    const comma = marker.lastIndexOf(',');
    if (comma !== -1) for (const width of marker.slice(comma + 1).split('-', 2)) widths.push(parseInt(width));
    at = end;
  }
  return widths.filter((width) => !Number.isNaN(width));
};

/**
 * jsonata's `$fromMillis` pads a component to its picture's width in one synchronous call, and with a non-ASCII zero
 * digit turns the padded text into an array of code points: `[Y٠,200000000]` (30 characters) aborts the process
 * (V8's "invalid size", fatal on any thread). This one refuses a width over MAX_PICTURE_WIDTH, then calls jsonata's.
 */
const boundedFromMillis = (original: (...args: unknown[]) => unknown, where: string) =>
  function (this: unknown, millis: unknown, picture: unknown, timezone: unknown): unknown {
    if (typeof picture === 'string') {
      const tooWide = pictureWidths(picture).find((width) => width > MAX_PICTURE_WIDTH);
      if (tooWide !== undefined) throw new StepError(EXPRESSION_ERROR_CODES.tooLarge, `${where}: a $fromMillis picture width of ${tooWide} is over the limit of ${MAX_PICTURE_WIDTH}`, false);
    }
    return original.call(this, millis, picture, timezone);
  };
/** jsonata's own `$fromMillis` (its built-ins are not exported: a bound name evaluates to the function's definition). */
let originalFromMillis: Promise<(...args: unknown[]) => unknown> | null = null;
const jsonataFromMillis = () =>
  (originalFromMillis ??= jsonata('$fromMillis')
    .evaluate(null)
    .then((definition: { implementation: (...args: unknown[]) => unknown }) => definition.implementation));

/**
 * jsonata's `$toMillis` without a picture hands its ISO 8601 text to Date.parse, which reads a date-time without a
 * zone (`2027-01-01T00:00:00`) in the process's own zone (its `TZ`): the same expression would give another instant on
 * another host. This one reads it as UTC, as jsonata does everywhere else (`$fromMillis` writes UTC unless given a
 * zone; a picture's parse counts from UTC; a day alone, `2027-01-01`, is UTC in Date.parse too).
 */
const ZONELESS_DATE_TIME = /^\d{4}(?:-\d{2}){0,2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?$/;
const utcToMillis = (original: (...args: unknown[]) => unknown) =>
  function (this: unknown, timestamp: unknown, picture: unknown): unknown {
    const text = picture === undefined && typeof timestamp === 'string' && ZONELESS_DATE_TIME.test(timestamp) ? `${timestamp}Z` : timestamp;
    return original.call(this, text, picture);
  };
let originalToMillis: Promise<(...args: unknown[]) => unknown> | null = null;
const jsonataToMillis = () =>
  (originalToMillis ??= jsonata('$toMillis')
    .evaluate(null)
    .then((definition: { implementation: (...args: unknown[]) => unknown }) => definition.implementation));

/** Hooks of an evaluation: `started` hears each expression as it starts (its place, e.g. `steps.t.input.text`). */
export interface EvaluationHooks {
  readonly started?: (where: string) => void;
}

/** One expression's value. Errors are StepErrors (not retryable: the same inputs fail the same way). */
export const evaluateExpression = async (source: string, scope: ExpressionScope, where: string, limits: ExpressionLimits = DEFAULT_EXPRESSION_LIMITS, hooks: EvaluationHooks = {}): Promise<JsonValue> => {
  let value: unknown;
  try {
    hooks.started?.(where);
    const expression = jsonata(source.slice(1), { timeout: limits.timeoutMs, stack: limits.maxDepth, sequence: limits.maxSequence, RegexEngine: LINEAR_REGEXP });
    // jsonata awaits between evaluation steps, but only on microtasks: left alone, a long expression would hold the
    // event loop until its timeout. Its entry hook hands the loop back now and then.
    let steps = 0;
    const yieldNowAndThen = (): Promise<void> | undefined => (++steps % YIELD_EVERY === 0 ? new Promise((resolve) => setImmediate(resolve)) : undefined);
    expression.assign(EVALUATE_ENTRY as unknown as string, yieldNowAndThen);
    const boundedString = (_expr: unknown, _input: unknown, _environment: unknown, result: unknown): undefined => {
      if (typeof result === 'string' && result.length > MAX_EXPRESSION_STRING) {
        throw new StepError(EXPRESSION_ERROR_CODES.tooLarge, `${where}: the expression made a string of ${result.length} characters, over the limit of ${MAX_EXPRESSION_STRING}`, false);
      }
      return undefined;
    };
    expression.assign(EVALUATE_EXIT as unknown as string, boundedString);
    expression.registerFunction('pad', boundedPad(limits, where), '<s-ns?:s>');
    expression.registerFunction('fromMillis', boundedFromMillis(await jsonataFromMillis(), where), '<n-s?s?:s>');
    expression.registerFunction('toMillis', utcToMillis(await jsonataToMillis()), '<s-s?:n>');
    value = await expression.evaluate(scope);
  } catch (error) {
    if (error instanceof StepError) throw error;
    const { code, message } = describe(error);
    if (code === 'D1012') throw new StepError(EXPRESSION_ERROR_CODES.timeout, `${where}: the expression ran longer than ${limits.timeoutMs} ms and was stopped`, false);
    if (code === 'D1011') throw new StepError(EXPRESSION_ERROR_CODES.tooDeep, `${where}: the expression nested deeper than ${limits.maxDepth} evaluations (runaway recursion?) and was stopped`, false);
    if (code === 'D2015') throw new StepError(EXPRESSION_ERROR_CODES.tooLarge, `${where}: the expression built a sequence longer than ${limits.maxSequence} items`, false);
    if (error instanceof RangeError) {
      // V8's own limits: the call stack, or the longest string or array it can make.
      const deep = /call stack/i.test(error.message);
      throw new StepError(deep ? EXPRESSION_ERROR_CODES.tooDeep : EXPRESSION_ERROR_CODES.tooLarge, `${where}: the expression was stopped: ${error.message}`, false);
    }
    throw new StepError(EXPRESSION_ERROR_CODES.failed, `${where}: ${code === null ? '' : `${code} `}${message}`, false);
  }
  return toJson(value, where, limits);
};

/** A step's input with every expression replaced by its value (literals, nested ones too, as they are). */
const evaluateInput = async (input: JsonValue, scope: ExpressionScope, path: string, limits: ExpressionLimits, hooks: EvaluationHooks): Promise<JsonValue> => {
  if (isExpression(input)) return evaluateExpression(input, scope, path, limits, hooks);
  if (Array.isArray(input)) {
    const out: JsonValue[] = [];
    for (const [index, item] of input.entries()) out.push(await evaluateInput(item, scope, `${path}[${index}]`, limits, hooks));
    return out;
  }
  if (typeof input === 'object' && input !== null) {
    const out: Record<string, JsonValue> = {};
    for (const [key, value] of Object.entries(input)) {
      // defineProperty: a `__proto__` key (refused at save, but be safe) must stay data, not a prototype.
      Object.defineProperty(out, key, { value: await evaluateInput(value, scope, `${path}.${key}`, limits, hooks), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return input;
};

/** The places of a step input's expressions, in the order evaluateStepInput evaluates them. */
export const expressionPlaces = (input: JsonValue, path: string): string[] => {
  if (isExpression(input)) return [path];
  if (Array.isArray(input)) return input.flatMap((item, index) => expressionPlaces(item, `${path}[${index}]`));
  if (typeof input === 'object' && input !== null) return Object.entries(input).flatMap(([key, value]) => expressionPlaces(value, `${path}.${key}`));
  return [];
};

/** A step's whole input, evaluated and bounded in size. */
export const evaluateStepInput = async (input: JsonValue, scope: ExpressionScope, path: string, limits: ExpressionLimits = DEFAULT_EXPRESSION_LIMITS, hooks: EvaluationHooks = {}): Promise<JsonValue> =>
  toJson(await evaluateInput(input, scope, path, limits, hooks), path, limits);

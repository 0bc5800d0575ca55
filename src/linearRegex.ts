/**
 * The one check for every regular expression a designer writes (a `$regex` in an entry or event filter, a `/…/` in a
 * workflow expression): such a regexp runs in one synchronous call on the server's thread, which no timeout can
 * interrupt, so it must be one that cannot run for ever.
 *
 * V8 can switch a regexp that backtracks too much to its experimental linear-time engine (the flags below), but only a
 * regexp that engine can run; any other keeps backtracking, and `.*.*.*.*.*.*.*.*.*.*.*.*(?=x)` then holds the thread
 * for ever on 40 characters. That engine refuses (Node 20, V8 11.3; checked against its own `l` flag in
 * test/unit/linearRegex.unit.test.ts): lookarounds, back-references, the `i`, `u`, `v` and `d` flags, and counted
 * repetitions above 16 (or nested to more than 16 copies). So a designer's regexp is refused when it uses any of
 * these, and `i` (case-insensitive matching) is written out instead: each letter becomes the class of its cases
 * (`é` → `[éÉ]`, `[a-c]` → `[A-Ca-c]`) with the ECMAScript rules for a non-Unicode regexp, and the flag dropped.
 *
 * Also refused: counts above {10}, octal escapes, and (unless allowed) nested quantifiers (`(a+)+`, `(a|aa)*`), which
 * only the fallback keeps linear: a filter may run on a MongoDB read store, which has none.
 */
import v8 from 'node:v8';

/*
 * Backtracks before V8 falls back to the linear engine. Its default (50,000) is counted per start position: `.*x`
 * against a 64 KiB entry ran 5.4 s before the fallback, 0.17 s at 1,000 (the linear engine gives the same answers).
 */
const BACKTRACKS_BEFORE_FALLBACK = 1_000;
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
v8.setFlagsFromString(`--regexp-backtracks-before-fallback=${BACKTRACKS_BEFORE_FALLBACK}`);

export const LINEAR_REGEX_LIMITS = {
  /** The largest count of a counted repetition (`{n}`, `{n,m}`): the linear engine copies the repeated part that often. */
  maxCount: 10,
  /** Characters of a regexp once its `i` is written out (a class of every letter grows a lot). */
  maxExpandedLength: 8 * 1024,
} as const;

/** Flags a designer's regexp may have: `g` and `y` (how it is applied), `m`, `s`, and `i` (written out). */
const ALLOWED_FLAGS = /^[gimsy]*$/;

export type LinearRegex = { readonly ok: true; readonly source: string; readonly flags: string } | { readonly ok: false; readonly problem: string };

class Refusal extends Error {}
const refuse = (problem: string): never => {
  throw new Refusal(problem);
};

/**
 * ECMAScript's Canonicalize for a non-Unicode, case-insensitive regexp: two code units match when these are equal.
 * The full uppercase mapping must be one code unit, and a non-ASCII unit never matches an ASCII one (`ſ` is not `s`).
 */
const canonicalize = (unit: number): number => {
  const upper = String.fromCharCode(unit).toUpperCase();
  if (upper.length !== 1) return unit;
  const canonical = upper.charCodeAt(0);
  return unit >= 128 && canonical < 128 ? unit : canonical;
};

/** Per code unit with other cases: those others (built once, on the first case-insensitive regexp). */
let casePartners: { readonly of: ReadonlyMap<number, readonly number[]>; readonly units: readonly number[] } | null = null;
const partners = () => {
  if (casePartners !== null) return casePartners;
  const groups = new Map<number, number[]>();
  for (let unit = 0; unit <= 0xffff; unit++) {
    const canonical = canonicalize(unit);
    const group = groups.get(canonical);
    if (group) group.push(unit);
    else groups.set(canonical, [unit]);
  }
  const of = new Map<number, number[]>();
  for (const group of groups.values()) if (group.length > 1) for (const unit of group) of.set(unit, group.filter((other) => other !== unit));
  casePartners = { of, units: [...of.keys()].sort((a, b) => a - b) };
  return casePartners;
};

/** The other cases of the units and ranges of a class, less those already in it, as class text. */
const otherCases = (units: readonly number[], ranges: readonly [number, number][]): string => {
  const { of, units: cased } = partners();
  const inClass = (unit: number) => units.includes(unit) || ranges.some(([lo, hi]) => unit >= lo && unit <= hi);
  const added = new Set<number>();
  const add = (unit: number) => {
    for (const other of of.get(unit) ?? []) if (!inClass(other)) added.add(other);
  };
  units.forEach(add);
  for (const [lo, hi] of ranges) for (const unit of cased) if (unit >= lo && unit <= hi) add(unit);
  // Cased code units are letters (never `\`, `]`, `^` or `-`): written as themselves, runs as ranges.
  const sorted = [...added].sort((a, b) => a - b);
  let text = '';
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    text += j - i >= 2 ? `${String.fromCharCode(sorted[i]!)}-${String.fromCharCode(sorted[j]!)}` : sorted.slice(i, j + 1).map((unit) => String.fromCharCode(unit)).join('');
    i = j + 1;
  }
  return text;
};

const HEX2 = /^[0-9A-Fa-f]{2}/;
const HEX4 = /^[0-9A-Fa-f]{4}/;
const CONTROL_ESCAPES: Readonly<Record<string, number>> = { f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b };

/**
 * An escape at `source[at] === '\\'`: its text, and the code unit it stands for (null for `\d`, `\w`, `\s` and their
 * negations, and for `\b` and `\B` outside a class). Refuses what the linear engine cannot run or JavaScript would read
 * differently from what its writer meant.
 */
const readEscape = (source: string, at: number, inClass: boolean): { text: string; unit: number | null } => {
  const c = source[at + 1];
  if (c === undefined) return refuse('a regular expression cannot end with \\');
  if (/[1-9]/.test(c)) return refuse(inClass ? 'octal escapes (\\1) are not allowed: write \\xHH' : 'back-references (\\1) are not allowed');
  if (c === '0') {
    if (/[0-9]/.test(source[at + 2] ?? '')) return refuse('octal escapes (\\01) are not allowed: write \\xHH');
    return { text: '\\0', unit: 0 };
  }
  if (c === 'k') return refuse('back-references (\\k<name>) are not allowed');
  if ('dDwWsS'.includes(c)) return { text: `\\${c}`, unit: null };
  if (c === 'b') return { text: '\\b', unit: inClass ? 0x08 : null };
  if (c === 'B' && !inClass) return { text: '\\B', unit: null };
  if (c === 'c') {
    const letter = source[at + 2] ?? '';
    if (!/^[A-Za-z]$/.test(letter)) return refuse('\\c must be followed by a letter (a control character)');
    return { text: `\\c${letter}`, unit: letter.charCodeAt(0) % 32 };
  }
  if (c === 'x') {
    const hex = HEX2.exec(source.slice(at + 2))?.[0] ?? refuse('\\x takes two hex digits (\\x41)');
    return { text: `\\x${hex}`, unit: parseInt(hex, 16) };
  }
  if (c === 'u') {
    const hex = HEX4.exec(source.slice(at + 2))?.[0] ?? refuse('\\u takes four hex digits (\\u00e9)');
    return { text: `\\u${hex}`, unit: parseInt(hex, 16) };
  }
  const control = CONTROL_ESCAPES[c];
  if (control !== undefined) return { text: `\\${c}`, unit: control };
  // Any other character escaped is itself (`\.`, `\/`, `\-`; `\q` and `\p` too, without the `u` flag).
  return { text: `\\${c}`, unit: c.charCodeAt(0) };
};

/** A character class at `source[at] === '['`: its rewritten text (cases added under `i`) and where it ends. */
const readClass = (source: string, at: number, ignoreCase: boolean): { text: string; end: number } => {
  let i = at + 1;
  const negated = source[i] === '^';
  if (negated) i++;
  const start = i;
  // Its members in order: a code unit, null for a class escape (\d, \w ...), or 'dash' for an unescaped `-`.
  const items: (number | null | 'dash')[] = [];
  while (i < source.length && source[i] !== ']') {
    if (source[i] === '\\') {
      const escape = readEscape(source, i, true);
      items.push(escape.unit);
      i += escape.text.length;
    } else {
      items.push(source[i] === '-' ? 'dash' : source.charCodeAt(i));
      i++;
    }
  }
  if (i >= source.length) return { text: source.slice(at), end: source.length };
  const units: number[] = [];
  const ranges: [number, number][] = [];
  for (let k = 0; k < items.length; k++) {
    const item = items[k]!;
    const next = items[k + 1];
    const after = items[k + 2];
    // `a-z` is a range; a `-` first, last or beside a class escape is itself (a non-Unicode regexp).
    if (item !== 'dash' && item !== null && next === 'dash' && after !== undefined && after !== 'dash' && after !== null) {
      ranges.push([item, after]);
      k += 2;
    } else if (item === 'dash') units.push(0x2d);
    else if (item !== null) units.push(item);
  }
  const body = source.slice(start, i);
  const added = ignoreCase ? otherCases(units, ranges) : '';
  // The additions go first; a `-` that opened the class would join them into a range, so it is escaped.
  const rest = added !== '' && body.startsWith('-') ? `\\${body}` : body;
  return { text: `[${negated ? '^' : ''}${added}${rest}]`, end: i + 1 };
};

interface Group {
  /** A quantifier inside it (or inside a group in it). */
  quantified: boolean;
  /** An alternation directly in it. */
  alternation: boolean;
  /** The most copies of one part of it the linear engine makes (counted repetitions nested in it, multiplied). */
  replication: number;
}

/** The linear engine's bound on the copies nested counted repetitions make (V8's kMaxReplicationFactor). */
const MAX_REPLICATION = 16;

const QUANTIFIER = /^\{(\d+)(?:,(\d*))?\}/;

/** The source rewritten (cases written out under `i`), or a Refusal. */
const rewrite = (source: string, ignoreCase: boolean, allowNested: boolean): string => {
  const root: Group = { quantified: false, alternation: false, replication: 1 };
  const stack: Group[] = [];
  const innermost = () => stack[stack.length - 1] ?? root;
  let out = '';
  // The group a quantifier right here would repeat (it just closed), or null for any other atom.
  let closed: Group | null = null;
  const literal = (text: string, unit: number | null) => {
    const others = ignoreCase && unit !== null ? partners().of.get(unit) : undefined;
    out += others ? `[${text}${others.map((other) => String.fromCharCode(other)).join('')}]` : text;
  };
  const quantifier = (text: string, min: number, max: number) => {
    if (!allowNested && closed && (closed.quantified || closed.alternation)) refuse('nested quantifiers (such as (a+)+ or (a|aa)*) are not allowed');
    // As V8 counts: a bounded repetition copies its part `max` times, an unbounded one `min + 1` times.
    const replication = (closed?.replication ?? 1) * (Number.isFinite(max) ? max : min + 1);
    if (replication > MAX_REPLICATION) refuse(`repetitions nested this deep (${replication} copies, over ${MAX_REPLICATION}) are not allowed`);
    const top = innermost();
    // An optional part (`a?`) repeats nothing: `(ab?)+` stays allowed.
    if (max !== 1) top.quantified = true;
    top.replication = Math.max(top.replication, replication);
    out += text;
  };
  for (let i = 0; i < source.length; ) {
    const c = source[i]!;
    const wasClosed: Group | null = closed;
    closed = null;
    if (c === '\\') {
      const escape = readEscape(source, i, false);
      literal(escape.text, escape.unit);
      i += escape.text.length;
    } else if (c === '[') {
      const cls = readClass(source, i, ignoreCase);
      out += cls.text;
      i = cls.end;
    } else if (c === '(') {
      if (source[i + 1] === '?') {
        const head = /^\(\?(?::|<[A-Za-z_$][A-Za-z0-9_$]*>)/.exec(source.slice(i))?.[0];
        if (head === undefined) {
          if (/^\(\?<?[=!]/.test(source.slice(i))) refuse('lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not allowed');
          refuse('only (…), (?:…) and (?<name>…) groups are allowed');
        }
        out += head;
        i += head!.length;
      } else {
        out += '(';
        i++;
      }
      stack.push({ quantified: false, alternation: false, replication: 1 });
    } else if (c === ')') {
      const group = stack.pop();
      const parent = innermost();
      if (group?.quantified) parent.quantified = true;
      if (group) parent.replication = Math.max(parent.replication, group.replication);
      closed = group ?? null;
      out += ')';
      i++;
    } else if (c === '*' || c === '+' || c === '?') {
      closed = wasClosed;
      const lazy = source[i + 1] === '?' ? '?' : '';
      quantifier(c + lazy, c === '+' ? 1 : 0, c === '?' ? 1 : Infinity);
      i += 1 + lazy.length;
    } else if (c === '{' && QUANTIFIER.test(source.slice(i))) {
      const [text, min, max] = QUANTIFIER.exec(source.slice(i))!;
      if (Math.max(Number(min), Number(max || 0)) > LINEAR_REGEX_LIMITS.maxCount) refuse(`counted repetition above {${LINEAR_REGEX_LIMITS.maxCount}} is not allowed`);
      closed = wasClosed;
      const lazy = source[i + text.length] === '?' ? '?' : '';
      quantifier(text + lazy, Number(min), max === undefined ? Number(min) : max === '' ? Infinity : Number(max));
      i += text.length + lazy.length;
    } else if (c === '|') {
      innermost().alternation = true;
      out += '|';
      i++;
    } else {
      // A non-Unicode regexp reads code units: a surrogate (half of a pair) has no other case.
      literal(c, '^$.'.includes(c) ? null : source.charCodeAt(i));
      i++;
    }
  }
  return out;
};

/**
 * Whether a designer's regexp is one the linear-time engine can run, and the regexp to run instead (`i` written out):
 * `{ok: true, source, flags}`, or `{ok: false, problem}` saying what is not allowed.
 */
export const linearRegex = (source: string, flags = '', options: { readonly allowNestedQuantifiers?: boolean } = {}): LinearRegex => {
  if (!ALLOWED_FLAGS.test(flags)) return { ok: false, problem: `flags ${JSON.stringify(flags)} are not allowed (allowed: i, m, s, g, y)` };
  const ignoreCase = flags.includes('i');
  let rewritten: string;
  try {
    rewritten = rewrite(source, ignoreCase, options.allowNestedQuantifiers ?? false);
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, problem: error.message };
    throw error;
  }
  if (rewritten.length > LINEAR_REGEX_LIMITS.maxExpandedLength) return { ok: false, problem: `over ${LINEAR_REGEX_LIMITS.maxExpandedLength} characters once made case-insensitive` };
  const linearFlags = flags.replace('i', '');
  try {
    new RegExp(rewritten, linearFlags);
    new RegExp(source, flags);
  } catch {
    return { ok: false, problem: 'not a valid regular expression' };
  }
  return { ok: true, source: rewritten, flags: linearFlags };
};

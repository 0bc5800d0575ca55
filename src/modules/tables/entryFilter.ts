/**
 * Entry filters and sorts: MongoDB's query language over an entry's own fields (`{"text": "HELLO"}`), checked
 * before any store sees them and rewritten onto the read model's document (`data.text`), so the same filter runs on
 * the embedded store (mingo), on MongoDB and in the entry trigger. Pure: no I/O.
 *
 * Only query operators that compare data are accepted: nothing that runs code ($where, $function, $accumulator,
 * $expr) or reaches outside the document. Hostile shapes are bounded: nesting, size, `$in` lists, and regular
 * expressions (length, and src/linearRegex.ts's check: the embedded store and the triggers run them on the server's
 * one thread, so only regexps V8's linear-time engine can run, with `i` written out for it).
 */
import { ValidationError } from '../../errors.js';
import { linearRegex } from '../../linearRegex.js';

export const FILTER_LIMITS = {
  /** Bytes of the filter as JSON. */
  maxBytes: 16 * 1024,
  /** Nesting of objects and arrays. */
  maxDepth: 8,
  /** Values of an `$in`, `$nin` or `$all` list. */
  maxList: 100,
  /** Characters of a `$regex`. */
  maxRegex: 200,
  /** Fields of a sort. */
  maxSortFields: 3,
} as const;

/** Comparison and element operators, allowed in a field's operator object. */
const FIELD_OPERATORS: ReadonlySet<string> = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$type', '$regex', '$options', '$not', '$all', '$elemMatch', '$size', '$mod']);
/** Logical operators, allowed where a field may be. */
const LOGICAL_OPERATORS: ReadonlySet<string> = new Set(['$and', '$or', '$nor']);

/** Entry fields the platform keeps (not in `data`): an entry may not use these names at its top level. */
export const RESERVED_ENTRY_FIELDS: ReadonlySet<string> = new Set(['id', 'createdAt', 'updatedAt']);
/** Where each reserved name lives in the read model's document (a Map: an object would answer `toString` too). */
const RESERVED_PATH: ReadonlyMap<string, string> = new Map([
  ['id', '_id'],
  ['createdAt', 'createdAt'],
  ['updatedAt', 'updatedAt'],
]);

const FIELD_PATH = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/;
/**
 * Names that reach an object's prototype, not its data: a path through one is refused (mingo throws on `__proto__`),
 * and so is an entry field of one of these names (tables.api.ts), so that what is stored can be read and searched.
 */
export const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const NOT_PROTOTYPE_NAMES = `none of ${[...PROTOTYPE_NAMES].join(', ')}`;
const isFieldPath = (path: string) => FIELD_PATH.test(path) && !path.split('.').some((name) => PROTOTYPE_NAMES.has(name));

const refuse = (reason: string, message: string, path: string) => new ValidationError(`Invalid filter at ${path}: ${message}`, { reason, path });

/** `$options` letters: what JavaScript's RegExp and MongoDB share. */
const OPTIONS = /^(?!.*(.).*\1)[ims]{0,3}$/;

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A field path of the entry as stored: a reserved name where the platform keeps it, anything else under `data`. */
const storedPath = (field: string) => {
  const [head, ...rest] = field.split('.');
  const reserved = RESERVED_PATH.get(head!);
  return reserved !== undefined ? [reserved, ...rest].join('.') : `data.${field}`;
};

/** A literal value compared as is: bounded depth, and no `$` keys (a store would take them as operators). */
const checkLiteral = (value: unknown, path: string, depth: number): void => {
  if (depth > FILTER_LIMITS.maxDepth) throw refuse('too_deep', `nested deeper than ${FILTER_LIMITS.maxDepth} levels`, path);
  if (Array.isArray(value)) {
    if (value.length > FILTER_LIMITS.maxList) throw refuse('list_too_long', `a list of more than ${FILTER_LIMITS.maxList} values`, path);
    value.forEach((item, index) => checkLiteral(item, `${path}[${index}]`, depth + 1));
    return;
  }
  if (isPlainObject(value)) {
    for (const [key, inner] of Object.entries(value)) {
      if (key.startsWith('$')) throw refuse('operator_not_allowed', `${key} inside a literal value`, path);
      checkLiteral(inner, `${path}.${key}`, depth + 1);
    }
  }
};

/**
 * A field's condition: an operator object (every key an allowed operator) or a literal to compare with. Returns it as
 * the stores run it: a `$regex` as linearRegex writes it (with `$options: "i"`, the cases written out).
 */
const checkCondition = (condition: unknown, path: string, depth: number): unknown => {
  if (depth > FILTER_LIMITS.maxDepth) throw refuse('too_deep', `nested deeper than ${FILTER_LIMITS.maxDepth} levels`, path);
  if (!isPlainObject(condition) || !Object.keys(condition).some((k) => k.startsWith('$'))) {
    checkLiteral(condition, path, depth);
    return condition;
  }
  const out: Record<string, unknown> = { ...condition };
  for (const [op, operand] of Object.entries(condition)) {
    const at = `${path}.${op}`;
    if (!FIELD_OPERATORS.has(op)) throw refuse('operator_not_allowed', `${op} is not an allowed operator (allowed: ${[...FIELD_OPERATORS, ...LOGICAL_OPERATORS].join(', ')})`, at);
    switch (op) {
      case '$in':
      case '$nin':
      case '$all':
        if (!Array.isArray(operand)) throw refuse('bad_operand', `${op} takes a list`, at);
        checkLiteral(operand, at, depth + 1);
        break;
      case '$regex': {
        if (typeof operand !== 'string') throw refuse('bad_operand', '$regex takes a string', at);
        if (operand.length > FILTER_LIMITS.maxRegex) throw refuse('regex_too_long', `a regular expression of more than ${FILTER_LIMITS.maxRegex} characters`, at);
        const options = condition['$options'];
        const linear = linearRegex(operand, typeof options === 'string' && OPTIONS.test(options) ? options : '');
        if (!linear.ok) throw refuse('unsafe_regex', linear.problem, at);
        out['$regex'] = linear.source;
        if (options !== undefined || linear.flags !== '') out['$options'] = linear.flags;
        break;
      }
      case '$options':
        // JavaScript has no `x` (MongoDB's extended syntax): mingo could not run it.
        if (typeof operand !== 'string' || !OPTIONS.test(operand)) throw refuse('bad_operand', '$options takes letters among i, m, s', at);
        break;
      case '$not':
        if (!isPlainObject(operand)) throw refuse('bad_operand', '$not takes an operator object', at);
        out[op] = checkCondition(operand, at, depth + 1);
        break;
      case '$elemMatch':
        if (!isPlainObject(operand)) throw refuse('bad_operand', '$elemMatch takes an object', at);
        // Its fields are the array elements' own, not the entry's: checked, never renamed.
        if (Object.keys(operand).some((k) => k.startsWith('$') && !LOGICAL_OPERATORS.has(k))) out[op] = checkCondition(operand, at, depth + 1);
        else out[op] = checkQuery(operand, at, depth + 1, (field) => field);
        break;
      case '$exists':
        if (typeof operand !== 'boolean') throw refuse('bad_operand', '$exists takes true or false', at);
        break;
      case '$size':
        if (!Number.isInteger(operand) || (operand as number) < 0) throw refuse('bad_operand', '$size takes a whole number', at);
        break;
      case '$mod':
        if (!Array.isArray(operand) || operand.length !== 2 || !operand.every((n) => Number.isInteger(n)) || operand[0] === 0) throw refuse('bad_operand', '$mod takes [divisor, remainder], whole numbers, divisor not 0', at);
        break;
      case '$type':
        if (typeof operand !== 'string' || !['string', 'number', 'bool', 'object', 'array', 'null', 'double', 'int', 'long'].includes(operand)) throw refuse('bad_operand', '$type takes a type name (string, number, bool, object, array, null)', at);
        break;
      default:
        checkLiteral(operand, at, depth + 1);
    }
  }
  return out;
};

/** A query object: fields and logical operators. Returns it rewritten with `path` applied to each field. */
const checkQuery = (query: Record<string, unknown>, path: string, depth: number, rename: (field: string) => string): Record<string, unknown> => {
  if (depth > FILTER_LIMITS.maxDepth) throw refuse('too_deep', `nested deeper than ${FILTER_LIMITS.maxDepth} levels`, path);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    const at = path === '$' ? key : `${path}.${key}`;
    if (LOGICAL_OPERATORS.has(key)) {
      if (!Array.isArray(value) || value.length === 0) throw refuse('bad_operand', `${key} takes a non-empty list of filters`, at);
      if (value.length > FILTER_LIMITS.maxList) throw refuse('list_too_long', `a list of more than ${FILTER_LIMITS.maxList} filters`, at);
      out[key] = value.map((inner, index) => {
        if (!isPlainObject(inner)) throw refuse('bad_operand', `${key} takes a list of filters (objects)`, `${at}[${index}]`);
        return checkQuery(inner, `${at}[${index}]`, depth + 1, rename);
      });
      continue;
    }
    if (key.startsWith('$')) throw refuse('operator_not_allowed', `${key} is not an allowed operator here (code, $expr and other operators are refused)`, at);
    if (!isFieldPath(key)) throw refuse('bad_field', `a field path is 1 to 8 names of letters, digits, _ and -, joined by dots (${NOT_PROTOTYPE_NAMES})`, at);
    out[rename(key)] = checkCondition(value, at, depth + 1);
  }
  return out;
};

/**
 * A filter over an entry's own fields, checked and rewritten for the read model (`{"text": "x"}` → `{"data.text":
 * "x"}`; `id`, `createdAt`, `updatedAt` name the platform's fields). null or undefined is no filter. A bad filter is
 * a ValidationError naming the bad part and why (metadata.reason).
 */
export const entryFilter = (filter: unknown): Record<string, unknown> => checkedFilter(filter, storedPath);

/** The same checks over any document's own fields, unrenamed: an event trigger's filter over the event's payload. */
export const payloadFilter = (filter: unknown): Record<string, unknown> => checkedFilter(filter, (field) => field);

const checkedFilter = (filter: unknown, rename: (field: string) => string): Record<string, unknown> => {
  if (filter === null || filter === undefined) return {};
  if (!isPlainObject(filter)) throw refuse('not_an_object', 'a filter is a JSON object, e.g. {"text": "HELLO"}', '$');
  const bytes = Buffer.byteLength(JSON.stringify(filter), 'utf8');
  if (bytes > FILTER_LIMITS.maxBytes) throw refuse('too_large', `${bytes} bytes, over the limit of ${FILTER_LIMITS.maxBytes}`, '$');
  return checkQuery(filter, '$', 0, rename);
};

/** A sort over an entry's fields (`{"score": -1}`), rewritten like a filter; ties always break by id (creation order). */
export const entrySort = (sort: unknown): Record<string, 1 | -1> => {
  if (sort === null || sort === undefined) return { _id: 1 };
  if (!isPlainObject(sort)) throw new ValidationError('Invalid sort: a sort is a JSON object of fields to 1 or -1, e.g. {"score": -1}', { reason: 'not_an_object' });
  const entries = Object.entries(sort);
  if (entries.length > FILTER_LIMITS.maxSortFields) throw new ValidationError(`Invalid sort: at most ${FILTER_LIMITS.maxSortFields} fields`, { reason: 'too_many_fields' });
  const out: Record<string, 1 | -1> = {};
  for (const [field, direction] of entries) {
    if (!isFieldPath(field)) throw new ValidationError(`Invalid sort at ${field}: a field path is names of letters, digits, _ and -, joined by dots (${NOT_PROTOTYPE_NAMES})`, { reason: 'bad_field', path: field });
    if (direction !== 1 && direction !== -1) throw new ValidationError(`Invalid sort at ${field}: a direction is 1 or -1`, { reason: 'bad_direction', path: field });
    out[storedPath(field)] = direction;
  }
  if (!('_id' in out)) out['_id'] = 1;
  return out;
};

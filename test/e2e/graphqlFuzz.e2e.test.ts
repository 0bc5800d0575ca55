/**
 * A schema-driven GraphQL fuzzer (shared/reference/reliability.md §6, T-GQL-4): documents generated from the served
 * schema (random root fields of Query and Mutation, aliases, arguments of every type as variables (huge strings,
 * unicode, extreme numbers, nulls, unknown enum values and input fields, other accounts' ids), nested selections,
 * inline fragments on unions and interfaces), sent over HTTP by an account with the user, designer and provider roles,
 * introspection off as in production. Oracles: no 5xx, no INTERNAL error, no stack trace, no "Did you mean", and no
 * trace of another account's data. A failure prints its document, the answer, and fast-check's seed to replay it.
 * It found two INTERNAL errors, fixed: bad page arguments on the lists paged by offset, and `node(id: "constructor")`.
 */
import fc from 'fast-check';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

const RUNS = 10_000;
/** Only another account's own data: its name and its key's name and hint (ids may be echoed back in a NOT_FOUND). */
const CANARY_NAME = 'Canary Zq7 Account';
const CANARY_KEY_NAME = 'canary-zq7-key';

let h: GatewayHarness;
let a: Account;
/** The key the fuzzer calls with: its id is not among the generated ones, so no document revokes it. */
let fuzzKey: string;
let b: Account;
let canaries: string[];
let ids: string[];

beforeAll(async () => {
  h = await startGatewayHarness({ GRAPHQL_INTROSPECTION: 'false' });
  a = await h.openAccount({ name: 'Fuzzer', roles: ['user', 'designer', 'provider'], credits: 1_000_000_000 });
  fuzzKey = (await h.gqlOk(`mutation { createApiKey(name: "fuzz") { ... on CreatedApiKey { secret } } }`, {}, a.key)).createApiKey.secret as string;
  b = await h.openAccount({ name: CANARY_NAME, credits: 1_000_000_000 });
  const created = await h.gqlOk(`mutation { createApiKey(name: "${CANARY_KEY_NAME}") { ... on CreatedApiKey { key { id hint } } } }`, {}, b.key);
  // Both accounts have generations, so lists and lookups have something to show (or to withhold).
  const generationIds: string[] = [];
  for (const account of [a, b]) {
    const res = await h.chat(account.key, { model: 'switchyard/demo', messages: [{ role: 'user', content: 'hello' }] });
    expect(res.status).toBe(200);
    generationIds.push(res.headers.get('x-generation-id')!);
  }
  await h.running.core.gateway.idle();
  canaries = [CANARY_NAME, CANARY_KEY_NAME, created.createApiKey.key.hint as string];
  ids = [a.accountId, a.keyId, b.accountId, b.keyId, created.createApiKey.key.id as string, ...generationIds, 'acc_root', 'gen-missing', 'switchyard/demo', 'switchyard', ''];
});
afterAll(async () => {
  await h.stop();
});

type Draw = <T>(arbitrary: fc.Arbitrary<T>) => T;

const PERCENT = fc.noBias(fc.integer({ min: 0, max: 99 }));
/** True with probability `p`. */
const chance = (draw: Draw, p: number): boolean => draw(PERCENT) < p * 100;
/** One to `max` distinct items of `items`, drawn as indexes (so that a counterexample prints as numbers). */
const someOf = <T>(draw: Draw, items: readonly T[], max: number): T[] =>
  draw(fc.uniqueArray(fc.nat({ max: items.length - 1 }), { minLength: 1, maxLength: Math.min(max, items.length) })).map((i) => items[i]!);

const STRINGS = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 2, arbitrary: fc.constantFrom('', ' ', '$where', '{"$gt":""}', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '../../etc/passwd', '%00', 'switchyard/demo', 'https://127.0.0.1/x', '2026-01-01T00:00:00Z', '=$string(1)') },
);
const INTS = fc.oneof(fc.integer({ min: -5, max: 200 }), fc.integer(), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, 99_999_999, 1.5));
const MONEY = fc.oneof(fc.integer({ min: -10, max: 10_000_000_000 }), fc.constantFrom(2 ** 60, -1, 0.5, '1000', 'abc', 1e308));
const DATES = fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('tomorrow', '', '2020-13-45T99:00:00Z', 'x'.repeat(100)));

/** A JSON value for a variable of `type`, mostly fitting it, sometimes not. */
const valueFor = (draw: Draw, type: GraphQLInputType, depth: number): unknown => {
  if (isNonNullType(type)) return chance(draw, 0.03) ? null : valueFor(draw, type.ofType, depth);
  if (chance(draw, 0.1)) return null;
  if (isListType(type)) return depth > 3 ? [] : Array.from({ length: draw(fc.nat({ max: 3 })) }, () => valueFor(draw, type.ofType, depth + 1));
  if (isEnumType(type)) {
    const values = type.getValues().map((v) => v.name);
    return chance(draw, 0.9) ? draw(fc.constantFrom(...values)) : draw(fc.string({ maxLength: 8 }));
  }
  if (isInputObjectType(type)) {
    if (depth > 3) return {};
    const out: Record<string, unknown> = {};
    for (const field of Object.values(type.getFields())) {
      if (isNonNullType(field.type) || chance(draw, 0.5)) out[field.name] = valueFor(draw, field.type, depth + 1);
    }
    if (chance(draw, 0.05)) out.unexpectedField = 1;
    return out;
  }
  switch (type.name) {
    case 'ID':
      return draw(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ids) }, { weight: 1, arbitrary: STRINGS }));
    case 'String':
      return draw(STRINGS);
    case 'Int':
      return draw(INTS);
    case 'Float':
      return draw(fc.oneof(fc.double(), fc.integer()));
    case 'Boolean':
      return draw(fc.oneof({ weight: 9, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constant('yes') }));
    case 'Money':
      return draw(MONEY);
    case 'DateTime':
      return draw(DATES);
    case 'JSON':
      return draw(fc.jsonValue({ maxDepth: 3 }));
    default:
      return draw(STRINGS);
  }
};

/** A generated operation: its text and its variables. */
const documentOf = (draw: Draw): { query: string; variables: Record<string, unknown> } => {
  const definitions: string[] = [];
  const variables: Record<string, unknown> = {};
  const argumentsOf = (field: GraphQLField<unknown, unknown>): string => {
    const given = field.args.filter((arg) => isNonNullType(arg.type) || chance(draw, 0.4));
    if (given.length === 0) return '';
    return `(${given
      .map((arg) => {
        const name = `v${definitions.length}`;
        definitions.push(`$${name}: ${arg.type.toString()}`);
        variables[name] = valueFor(draw, arg.type, 0);
        return `${arg.name}: $${name}`;
      })
      .join(', ')})`;
  };
  const selectionOf = (type: GraphQLNamedType, depth: number): string => {
    if (isLeafType(type)) return '';
    if (isUnionType(type) || (isInterfaceType(type) && chance(draw, 0.5))) {
      const members = isUnionType(type) ? type.getTypes() : schema.getPossibleTypes(type);
      const chosen = someOf(draw, members, 2);
      return `{ __typename ${chosen.map((member) => `... on ${member.name} ${selectionOf(member, depth + 1)}`).join(' ')} }`;
    }
    if (!isObjectType(type) && !isInterfaceType(type)) return '';
    const fields = Object.values(type.getFields());
    const candidates = depth >= 4 ? fields.filter((f) => isLeafType(getNamedType(f.type)) && f.args.every((arg) => !isNonNullType(arg.type))) : fields;
    if (candidates.length === 0) return '{ __typename }';
    const chosen = someOf(draw, candidates, 3);
    return `{ ${chosen.map((field, i) => fieldOf(field, depth, i)).join(' ')} }`;
  };
  const fieldOf = (field: GraphQLField<unknown, unknown>, depth: number, index: number): string => {
    const alias = chance(draw, 0.2) ? `f${depth}_${index}: ` : '';
    return `${alias}${field.name}${argumentsOf(field)} ${selectionOf(getNamedType(field.type), depth + 1)}`;
  };
  const operation = chance(draw, 0.75) ? 'query' : 'mutation';
  const root = operation === 'query' ? schema.getQueryType()! : schema.getMutationType()!;
  const chosen = someOf(draw, Object.values(root.getFields()), 3);
  // Each root field under its own alias, so two picks of one field with different arguments never conflict.
  const selections = chosen.map((field, i) => `r${i}: ${field.name}${argumentsOf(field)} ${selectionOf(getNamedType(field.type), 1)}`);
  return { query: `${operation} Fuzz${definitions.length ? `(${definitions.join(', ')})` : ''} { ${selections.join(' ')} }`, variables };
};

interface Answer {
  readonly status: number;
  readonly text: string;
}

const send = async (doc: { query: string; variables: Record<string, unknown> }): Promise<Answer> => {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${fuzzKey}` },
    body: JSON.stringify(doc),
  });
  return { status: res.status, text: await res.text() };
};

/** What must hold of every answer: the oracles. */
const check = ({ status, text }: Answer) => {
  expect(status).toBeLessThan(500);
  const body = JSON.parse(text) as { errors?: { message: string; extensions?: { code?: string } }[] };
  for (const error of body.errors ?? []) {
    expect(error.extensions?.code, error.message).toBeDefined();
    expect(error.extensions?.code, error.message).not.toBe('INTERNAL');
    expect(error.message).not.toMatch(/Did you mean/);
    expect(error.message).not.toMatch(/\n\s+at |\.[jt]s:\d+|node_modules/);
  }
  for (const canary of canaries) expect(text, `another account's data (${canary})`).not.toContain(canary);
};

describe('T-GQL-4: schema-driven GraphQL fuzzing', () => {
  it(`${RUNS.toLocaleString('en-US')} generated documents: no 5xx, no INTERNAL, no stack, no "Did you mean", no other account's data`, { timeout: 600_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.gen(), async (g) => {
        const doc = documentOf((arbitrary) => g(() => arbitrary));
        const answer = await send(doc);
        try {
          check(answer);
        } catch (error) {
          throw new Error(`${(error as Error).message}\ndocument: ${JSON.stringify(doc).slice(0, 2_000)}\nanswer: ${answer.status} ${answer.text.slice(0, 2_000)}`);
        }
      }),
      // No shrinking: the failure names its document and answer, and the seed and path replay it.
      { numRuns: RUNS, endOnFailure: true },
    );
    // The fuzzer's own account still answers normally, and the other's data is intact.
    expect((await h.gqlOk('{ me { id } }', {}, fuzzKey)).me.id).toBe(a.accountId);
    expect((await h.gqlOk('{ me { name } }', {}, b.key)).me.name).toBe(CANARY_NAME);
  });
});

import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesPlugin } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import {
  GraphQLError,
  Kind,
  getOperationAST,
  isIntrospectionType,
  type ASTVisitor,
  type DocumentNode,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { isErrorCode, type ErrorCode } from '../errors.js';

/**
 * Every error about the request itself (syntax, validation, query limits, variable values) leaves with a code the
 * client can act on (`VALIDATION` for the document, `BAD_USER_INPUT` for a value), a message in plain words (never
 * graphql-js's "Syntax Error:" prefix) and, when introspection is off, no "Did you mean" hints that would leak the
 * schema. The hooks run for HTTP and for graphql-ws alike (app.ts's subscribe handler uses the enveloped functions).
 */

/** Duck-typed: graphql may be loaded twice (ESM and CJS builds), which breaks `instanceof GraphQLError`. */
export const isGraphQLError = (error: unknown): error is GraphQLError =>
  error instanceof Error && error.name === 'GraphQLError' && 'extensions' in error && 'path' in error;

/** Codes other layers give GraphQL-level errors, in our terms. */
const FOREIGN_CODES: Readonly<Record<string, ErrorCode>> = {
  GRAPHQL_PARSE_FAILED: 'VALIDATION',
  GRAPHQL_VALIDATION_FAILED: 'VALIDATION',
  OPERATION_RESOLUTION_FAILURE: 'VALIDATION',
};

/** A literal argument value or input field (validation reports a bad one on its node): a bad value, not a bad query. */
const VALUE_KINDS: ReadonlySet<string> = new Set([Kind.INT, Kind.FLOAT, Kind.STRING, Kind.BOOLEAN, Kind.NULL, Kind.ENUM, Kind.LIST, Kind.OBJECT, Kind.OBJECT_FIELD]);

const SUGGESTION = / ?Did you mean [^?]*\?/g;

const HTTP_REQUEST_ERROR = { status: 400, spec: true } as const;

interface Coding {
  readonly code: ErrorCode;
  readonly message?: string;
  /** Over HTTP: 400 under application/graphql-response+json (yoga's `spec` flag keeps 200 for application/json). */
  readonly http: boolean;
}

const recode = (error: GraphQLError, coding: Coding, suggestions: boolean): GraphQLError => {
  const message = coding.message ?? error.message;
  return new GraphQLError(suggestions ? message : message.replace(SUGGESTION, ''), {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: { ...error.extensions, code: coding.code, ...(coding.http ? { http: HTTP_REQUEST_ERROR } : {}) },
  });
};

const hasCode = (error: GraphQLError): boolean => isErrorCode(error.extensions?.code);

/** graphql-js's syntax errors read "Syntax Error: Expected Name, found <EOF>." with the place in `locations`. */
const syntaxMessage = (error: GraphQLError): string => {
  const what = error.message.replace(/^Syntax Error: /, '').replace(/\.$/, '');
  const at = error.locations?.[0];
  return `The query is not valid GraphQL: ${what}${at ? ` at line ${at.line}, column ${at.column}` : ''}`;
};

/** A query-limit refusal of graphql-armor (its messages carry a fixed "Syntax Error: " prefix). */
const limitExceeded = (error: GraphQLError): GraphQLError =>
  new GraphQLError(`The query is over a limit: ${error.message.replace(/^Syntax Error: /, '')}`, { extensions: { code: 'VALIDATION' } });

/** Report instead of throwing: a throw would abort validation (and close a graphql-ws socket with 4500). */
const reportLimit = { propagateOnRejection: false, onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(limitExceeded(error))] };

/**
 * The depth and cost limits leave `__schema` out (graphql-js's standard introspection query, GraphiQL's, is 15 deep
 * and costs about 87,000 by their measure), so introspection is bounded by its shape: no alias on `__schema` nor on a
 * field of an introspection type. Fields of one name then merge, and an operation reads the schema at most once, within
 * graphql-js's MaxIntrospectionDepthRule: at most about six times the standard answer (1.7 MB against 0.28 MB here,
 * where 30 aliased `__schema` answered 23 MB after 2.7 s). `__type` is held to the depth and cost limits as any field.
 */
const introspectOnce = (context: ValidationContext): ASTVisitor => ({
  Field(node) {
    const name = node.name.value;
    if (!node.alias || node.alias.value === name || name === '__typename') return;
    const parent = context.getParentType();
    if (name !== '__schema' && !(parent && isIntrospectionType(parent))) return;
    context.reportError(
      new GraphQLError(`The query is over a limit: introspection reads the schema once per query, so its fields take no aliases ("${node.alias.value}: ${name}")`, {
        nodes: node,
        extensions: { code: 'VALIDATION' },
      }),
    );
  },
});

/** A @skip or @include on a subscription's top-level selection (through its fragments, each read once), if any. */
const conditionalRoot = (selectionSet: SelectionSetNode, context: ValidationContext, seen = new Set<string>()): SelectionNode | null => {
  for (const selection of selectionSet.selections) {
    if (selection.directives?.some((directive) => directive.name.value === 'skip' || directive.name.value === 'include')) return selection;
    let inner: SelectionSetNode | undefined;
    if (selection.kind === Kind.INLINE_FRAGMENT) inner = selection.selectionSet;
    else if (selection.kind === Kind.FRAGMENT_SPREAD && !seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      inner = (context.getFragment(selection.name.value) as FragmentDefinitionNode | null | undefined)?.selectionSet;
    }
    const found = inner && conditionalRoot(inner, context, seen);
    if (found) return found;
  }
  return null;
};

/**
 * A subscription follows exactly one field, so its top-level field cannot be conditional (as the GraphQL spec's
 * draft and graphql-js 17 say): one left out by @skip/@include would leave nothing to follow (the executor failed on
 * it with a TypeError, INTERNAL), and graphql-js 16's single-field rule throws from `validate` on an @include whose
 * variable it is not given (graphql-ws closed the socket 4500). Refused as VALIDATION; that rule is not run on it.
 */
const unconditionalSubscriptionRoot = (context: ValidationContext): ASTVisitor => ({
  OperationDefinition(node) {
    if (node.operation !== 'subscription') return;
    const found = conditionalRoot(node.selectionSet, context);
    if (!found) return;
    context.reportError(
      new GraphQLError("The query is not valid: @skip and @include are not allowed on a subscription's top-level field (it follows exactly one field)", {
        nodes: found,
        extensions: { code: 'VALIDATION' },
      }),
    );
  },
});

/** graphql-js's SingleFieldSubscriptionsRule, left out of the subscriptions unconditionalSubscriptionRoot refuses. */
const singleFieldUnlessConditional =
  (rule: ValidationRule): ValidationRule =>
  (context) => {
    const visitor = rule(context) as ASTVisitor & { OperationDefinition?: (...args: never[]) => unknown };
    const enter = visitor.OperationDefinition;
    if (typeof enter !== 'function') return visitor;
    return {
      ...visitor,
      OperationDefinition: (...args: Parameters<typeof enter>) => {
        const [node] = args as unknown as [{ operation: string; selectionSet: SelectionSetNode }];
        if (node.operation === 'subscription' && conditionalRoot(node.selectionSet, context)) return undefined;
        return enter(...args);
      },
    } as ASTVisitor;
  };

/** OWASP query-shape limits, refused before any resolver runs. */
export const queryLimits = (): Plugin[] => [
  {
    onValidate: ({ addValidationRule }) => {
      addValidationRule(introspectOnce);
      addValidationRule(unconditionalSubscriptionRoot);
    },
  },
  // The token limit stops the parser itself: its refusal is thrown (replaced by ours) and answered like a syntax error.
  maxTokensPlugin({
    n: 5_000,
    onReject: [
      (_context, error) => {
        throw limitExceeded(error);
      },
    ],
  }),
  maxDepthPlugin({ n: 12, flattenFragments: true, ...reportLimit }),
  maxAliasesPlugin({ n: 30, ...reportLimit }),
  maxDirectivesPlugin({ n: 30, ...reportLimit }),
  costLimitPlugin({ maxCost: 5_000, ...reportLimit }),
];

const thrownByUs = (error: GraphQLError): boolean => error.originalError !== undefined && !isGraphQLError(error.originalError);

/**
 * A variable's bad value as the executor's `subscribe` reports it: coded BAD_USER_INPUT in place, with graphql-js's
 * coercion error kept as its originalError, which the mask would take for one our code threw (INTERNAL, logged).
 */
const badVariableOfSubscribe = (error: GraphQLError): boolean =>
  error.nodes?.[0]?.kind === Kind.VARIABLE_DEFINITION && error.originalError !== undefined && isGraphQLError(error.originalError);

/** Requests that failed before execution began (an unknown operation, a variable that does not fit its type). */
const recodeRequestErrors = (result: ExecutionResult, http: boolean, suggestions: boolean): ExecutionResult | null => {
  if (result.data !== undefined || !result.errors?.length) return null;
  return {
    ...result,
    errors: result.errors.map((error) =>
      // An error our own code threw (e.g. scope-auth refusing a subscription) is maskError's to shape, not a bad request;
      // so is one that is no GraphQLError at all (the executor's own failure).
      !isGraphQLError(error) || ((hasCode(error) || thrownByUs(error)) && !badVariableOfSubscribe(error))
        ? error
        : recode(error, { code: error.nodes?.[0]?.kind === Kind.VARIABLE_DEFINITION ? 'BAD_USER_INPUT' : 'VALIDATION', http }, suggestions),
    ),
  };
};

const isExecutionResult = (result: unknown): result is ExecutionResult =>
  typeof result === 'object' && result !== null && !(Symbol.asyncIterator in result);

/** Over HTTP yoga puts the fetch Request in the context; the graphql-ws path does not. */
const overHttp = (context: unknown): boolean => typeof context === 'object' && context !== null && 'request' in context && context.request !== undefined;

/** A GET's or a form's `variables` or `extensions` that is no JSON: the client's 400, as a JSON body that is none. */
const notJson = (error: unknown): never => {
  if (!(error instanceof SyntaxError)) throw error;
  throw new GraphQLError(`The variables or extensions parameter is not valid JSON: ${error.message}`, { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
};

export const useClientErrors = ({ suggestions }: { suggestions: boolean }): Plugin => ({
  // yoga reads the query string of a GET and a form-encoded body with a bare JSON.parse: its SyntaxError would be an
  // unexpected error (INTERNAL). Its parser for a JSON body answers bad JSON itself.
  onRequestParse: ({ request, requestParser, setRequestParser }) => {
    if (!requestParser || (request.method !== 'GET' && !request.headers.get('content-type')?.startsWith('application/x-www-form-urlencoded'))) return;
    setRequestParser((req) => {
      try {
        const params = requestParser(req);
        return params instanceof Promise ? params.catch(notJson) : params;
      } catch (error) {
        return notJson(error);
      }
    });
  },
  onParse:
    () =>
    ({ result, replaceParseResult, context }) => {
      if (isGraphQLError(result) && !hasCode(result)) {
        replaceParseResult(recode(result, { code: 'VALIDATION', message: syntaxMessage(result), http: overHttp(context) }, suggestions));
      } else if (result instanceof RangeError) {
        // graphql-js parses recursively: a literal nested a few thousand levels deep overflows the stack before the
        // token limit is reached. The query's fault, and said so.
        replaceParseResult(new GraphQLError('The query is nested too deeply to parse', { extensions: { code: 'VALIDATION', ...(overHttp(context) && { http: HTTP_REQUEST_ERROR }) } }));
      }
    },
  onValidate: ({ validateFn, setValidationFn, context }) => {
    // graphql-js leaves out its hints itself (fields, arguments, types, enum values) when asked to. Its rules are
    // matched by name: graphql may be loaded twice (ESM and CJS builds).
    setValidationFn((schema, document, rules, options, typeInfo) => {
      const ours = rules?.map((rule: ValidationRule) => (rule.name === 'SingleFieldSubscriptionsRule' ? singleFieldUnlessConditional(rule) : rule));
      try {
        return validateFn(schema, document, ours, suggestions ? options : { ...options, hideSuggestions: true }, typeInfo);
      } catch (error) {
        // A rule that throws (rather than reports) would close a graphql-ws socket with 4500: the document's fault.
        if (!isGraphQLError(error)) throw error;
        return [error];
      }
    });
    return ({ valid, result, setResult }) => {
      if (valid) return;
      const http = overHttp(context);
      setResult(
        result.map((error) =>
          hasCode(error) ? error : recode(error, { code: VALUE_KINDS.has(error.nodes?.[0]?.kind ?? '') ? 'BAD_USER_INPUT' : 'VALIDATION', http }, suggestions),
        ),
      );
    };
  },
  // Variable values are coerced when execution starts; the executor does not pass `hideSuggestions` on to
  // graphql-js's coerceInputValue (an unknown enum value gets "Did you mean"), hence the strip in `recode`.
  onExecute: ({ args }) => ({
    onExecuteDone: ({ result, setResult }) => {
      if (!isExecutionResult(result)) return;
      const recoded = recodeRequestErrors(result, overHttp(args.contextValue), suggestions);
      if (recoded) setResult(recoded);
    },
  }),
  onSubscribe: ({ args }) => ({
    onSubscribeResult: ({ result, setResult }) => {
      if (!isExecutionResult(result)) return;
      const recoded = recodeRequestErrors(result, overHttp(args.contextValue), suggestions);
      if (recoded) setResult(recoded);
    },
  }),
});

/**
 * What maskError does with an error GraphQL or yoga raised (not one our code threw): it is about the request, so it
 * is shown, with a code (yoga's own, e.g. "Could not determine what operation to execute", are mapped to ours).
 */
export const requestError = (error: GraphQLError): GraphQLError => {
  if (hasCode(error)) return error;
  const foreign = error.extensions.code;
  return recode(error, { code: (typeof foreign === 'string' && FOREIGN_CODES[foreign]) || 'BAD_REQUEST', http: false }, true);
};

/** graphql-ws refuses a document whose operation it cannot pick with an uncoded "Unable to identify operation": say which. */
export const operationError = (document: DocumentNode, operationName: string | null | undefined): GraphQLError | null => {
  if (getOperationAST(document, operationName)) return null;
  const message = operationName
    ? `The query has no operation named "${operationName}"`
    : 'The query has several operations: name the one to run (operationName)';
  return new GraphQLError(message, { extensions: { code: 'VALIDATION' } });
};

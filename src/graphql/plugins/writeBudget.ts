import { getDirectiveValues, getOperationAST, getVariableValues, GraphQLError, GraphQLIncludeDirective, GraphQLSkipDirective, Kind, type FragmentDefinitionNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DomainError } from '../../errors.js';
import type { WriteBudget } from '../../modules/auth/writeBudget.js';
import type { GraphQLContext } from '../context.js';

/**
 * A mutation field's `extensions` when it calls a model: the call is charged (credits, a key's limit, the free plan's
 * limits), so it takes nothing of the account's write budget.
 */
export const BILLED_CALL = { billed: true } as const;

/**
 * The mutation fields an operation runs, by response key (two aliases of one field are two changes), with `@skip` and
 * `@include` applied: what graphql-js's executor collects at the root. Fragments are known to exist and to form no
 * cycle (validation ran first).
 */
const rootFields = (
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Record<string, unknown> | undefined,
  into = new Map<string, string>(),
): Map<string, string> => {
  for (const selection of selectionSet.selections) {
    if (getDirectiveValues(GraphQLSkipDirective, selection, variables)?.['if'] === true) continue;
    if (getDirectiveValues(GraphQLIncludeDirective, selection, variables)?.['if'] === false) continue;
    if (selection.kind === Kind.FIELD) {
      const key = selection.alias?.value ?? selection.name.value;
      if (!into.has(key)) into.set(key, selection.name.value);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      rootFields(selection.selectionSet, fragments, variables, into);
    } else {
      const fragment = fragments.get(selection.name.value);
      if (fragment) rootFields(fragment.selectionSet, fragments, variables, into);
    }
  }
  return into;
};

/**
 * Every mutation field an account's key runs takes one of its writes (WRITES_PER_MINUTE, modules/auth/writeBudget.ts),
 * all of an operation's before any runs: past the budget the operation is refused whole with RATE_LIMITED
 * (`write_rate`, `retry_after_ms`) and nothing of it is written. Fields marked BILLED_CALL are not counted, nor is a
 * caller without a key (its only mutation, openAccount, has a limit of its own) or an admin.
 */
export const boundWrites = (budget: WriteBudget): Plugin<GraphQLContext> => ({
  onExecute: ({ args, setResultAndStopExecution }) => {
    const principal = args.contextValue.principal;
    if (!principal) return;
    const operation = getOperationAST(args.document, args.operationName);
    const mutationType = args.schema.getMutationType();
    if (operation?.operation !== 'mutation' || !mutationType) return;
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of args.document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    // Variables that do not fit their types: the executor refuses the operation itself, and nothing runs.
    const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
    if (variables.errors) return;
    const fields = mutationType.getFields();
    let writes = 0;
    for (const name of rootFields(operation.selectionSet, fragments, variables.coerced).values()) {
      // `__typename` writes nothing; a field the schema lacks is refused by validation before this.
      if (!name.startsWith('__') && fields[name]?.extensions['billed'] !== true) writes += 1;
    }
    try {
      budget.take(principal, writes);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      setResultAndStopExecution({ errors: [new GraphQLError(error.message, { extensions: { code: error.code, ...error.metadata } })] });
    }
  },
});

import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { CAPABILITIES, TASK_TYPES, type AutoRouterEvent, type AutoRule } from './autoRouter.events.js';

export type AutoRouterState = { readonly rules: readonly AutoRule[] | null };
export type AutoRouterCommand = { readonly type: 'SetAutoRouterRules'; readonly data: { readonly rules: readonly AutoRule[]; readonly at: string } };

const count = z.number({ error: 'must be a non-negative integer' }).int({ error: 'must be a non-negative integer' }).min(0, { error: 'must be a non-negative integer' }).max(Number.MAX_SAFE_INTEGER, { error: 'must be a non-negative integer' });
const oneOf = (what: string, values: readonly string[]) => (issue: { input?: unknown }) => `${what} ${JSON.stringify(issue.input)} is unknown (one of ${values.join(', ')})`;

/** One rule as an admin or a seed writes it: unknown fields are refused (a misspelt `modles` would otherwise match everything). */
const autoRuleSchema = z.strictObject(
  {
    name: z.string({ error: 'must be a string' }).refine((name) => name.trim() !== '', { error: 'must not be empty' }),
    taskTypes: z.array(z.enum(TASK_TYPES, { error: oneOf('task type', TASK_TYPES) }), { error: 'must be a list of task types' }).optional(),
    capabilities: z.array(z.enum(CAPABILITIES, { error: oneOf('capability', CAPABILITIES) }), { error: 'must be a list of capabilities' }).optional(),
    models: z.array(z.string({ error: 'must be a model id' }), { error: 'must be a list of model ids' }).optional(),
    maxPromptPrice: count.optional(),
    maxCompletionPrice: count.optional(),
    minContextLength: count.optional(),
    sort: z.enum(['price', 'throughput', 'latency'], { error: 'must be price, throughput or latency' }).optional(),
    limit: count.optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `has unknown fields ${issue.keys.join(', ')}` : 'must be an object') },
);

export const autoRulesSchema = z.array(autoRuleSchema, { error: 'must be a list' }).max(50, { error: 'at most 50 auto-router rules' });

/** `rules[0].taskTypes[1]` */
const pathOf = (root: string, path: readonly PropertyKey[]) => path.reduce<string>((at, key) => (typeof key === 'number' ? `${at}[${key}]` : `${at}.${String(key)}`), root);

/** Auto-router rules from JSON (GraphQL's JSON scalar, a seed): every problem named by its path, e.g. `rules[0].limit must be a non-negative integer`. */
export const parseAutoRules = (json: unknown): AutoRule[] => {
  const parsed = autoRulesSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${pathOf('rules', issue.path)} ${issue.message}`);
  throw new ValidationError(problems.join('; '), { field: pathOf('rules', parsed.error.issues[0]?.path ?? []) });
};

export const autoRouterDecider: Decider<AutoRouterState, AutoRouterCommand, AutoRouterEvent> = {
  initialState: () => ({ rules: null }),
  evolve: (_state, event) => ({ rules: event.data.rules }),
  decide: (command, state) => {
    // Typed rules still come from code (tests, seeds): parsing is pure, so the decider keeps the invariant itself.
    parseAutoRules(command.data.rules);
    if (state.rules !== null && JSON.stringify(state.rules) === JSON.stringify(command.data.rules)) return [];
    return [{ type: 'AutoRouterRulesSet', data: command.data }];
  },
};

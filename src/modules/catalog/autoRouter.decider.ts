import { ValidationError } from '../../errors.js';
import type { Decider } from '../../eventStore/handleCommand.js';
import { CAPABILITIES, TASK_TYPES, type AutoRouterEvent, type AutoRule } from './autoRouter.events.js';

export type AutoRouterState = { readonly rules: readonly AutoRule[] | null };
export type AutoRouterCommand = { readonly type: 'SetAutoRouterRules'; readonly data: { readonly rules: readonly AutoRule[]; readonly at: string } };

const isCount = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0);

export const validateAutoRules = (rules: readonly AutoRule[]): void => {
  if (rules.length > 50) throw new ValidationError('at most 50 auto-router rules');
  rules.forEach((rule, i) => {
    const where = `rules[${i}]`;
    if (typeof rule.name !== 'string' || rule.name.trim() === '') throw new ValidationError(`${where}.name must not be empty`);
    for (const t of rule.taskTypes ?? []) if (!(TASK_TYPES as readonly string[]).includes(t)) throw new ValidationError(`${where}.taskTypes: unknown task type "${t}" (one of ${TASK_TYPES.join(', ')})`);
    for (const c of rule.capabilities ?? []) if (!(CAPABILITIES as readonly string[]).includes(c)) throw new ValidationError(`${where}.capabilities: unknown capability "${c}" (one of ${CAPABILITIES.join(', ')})`);
    if (rule.models !== undefined && (!Array.isArray(rule.models) || rule.models.some((m) => typeof m !== 'string'))) throw new ValidationError(`${where}.models must be a list of model ids`);
    for (const field of ['maxPromptPrice', 'maxCompletionPrice', 'minContextLength', 'limit'] as const) {
      if (!isCount(rule[field])) throw new ValidationError(`${where}.${field} must be a non-negative integer`);
    }
    if (rule.sort !== undefined && !['price', 'throughput', 'latency'].includes(rule.sort)) throw new ValidationError(`${where}.sort must be price, throughput or latency`);
  });
};

export const autoRouterDecider: Decider<AutoRouterState, AutoRouterCommand, AutoRouterEvent> = {
  initialState: () => ({ rules: null }),
  evolve: (_state, event) => ({ rules: event.data.rules }),
  decide: (command, state) => {
    validateAutoRules(command.data.rules);
    if (state.rules !== null && JSON.stringify(state.rules) === JSON.stringify(command.data.rules)) return [];
    return [{ type: 'AutoRouterRulesSet', data: command.data }];
  },
};

/**
 * The `autorouter-rules` stream: the admin-defined rules of the `auto` model (`switchyard/auto`, aliases
 * `openrouter/auto` and `openrouter/auto-beta`). Rules are tried in order; the first whose conditions match the
 * request picks the candidate models. Set as a whole (each event replaces the previous rules).
 */

export const TASK_TYPES = ['code', 'math', 'translation', 'summarization', 'extraction', 'creative', 'chat'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export const CAPABILITIES = ['tools', 'vision', 'json'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface AutoRule {
  readonly name: string;
  /** Matches when the request's task type is one of these (absent: any task). */
  readonly taskTypes?: readonly TaskType[];
  /** Capabilities a candidate must have, on top of those the request itself needs (tools, images, JSON mode). */
  readonly capabilities?: readonly Capability[];
  /** Candidate models in preference order; absent means every model of the catalog. */
  readonly models?: readonly string[];
  /** Nano-dollars per token. */
  readonly maxPromptPrice?: number;
  readonly maxCompletionPrice?: number;
  readonly minContextLength?: number;
  /** How candidates are ordered when `models` is absent (default `price`). */
  readonly sort?: 'price' | 'throughput' | 'latency';
  /** How many models become the primary pick plus fallbacks (default 3). */
  readonly limit?: number;
}

export type AutoRouterRulesSet = { readonly type: 'AutoRouterRulesSet'; readonly data: { readonly rules: readonly AutoRule[]; readonly at: string } };
export type AutoRouterEvent = AutoRouterRulesSet;

export const AUTO_ROUTER_STREAM = 'autorouter-rules';
export const AUTO_MODEL_IDS: readonly string[] = ['switchyard/auto', 'openrouter/auto', 'openrouter/auto-beta', 'auto'];
/** OpenRouter's free-models router: a model of the catalog that has an endpoint costing nothing, and only such endpoints. */
export const FREE_ROUTER_ID = 'openrouter/free';
/** The ids that name a router rather than a model of the catalog. */
export const ROUTER_MODEL_IDS: readonly string[] = [...AUTO_MODEL_IDS, FREE_ROUTER_ID];

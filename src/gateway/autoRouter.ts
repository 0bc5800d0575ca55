/**
 * The `auto` model: classify the request's task with cheap keyword heuristics (no model call on the hot path), then
 * let the first matching admin rule pick candidate models, keeping those the catalog can serve right now.
 */
import type { AutoRule, Capability, TaskType } from '../modules/catalog/autoRouter.events.js';
import type { Catalog, EndpointEntry } from '../modules/catalog/catalog.js';
import { resolveModelId } from '../modules/catalog/modelId.js';
import type { ParsedChat } from './chatRequest.js';
import type { EndpointStatsView } from './routeStats.js';

const PATTERNS: readonly [TaskType, RegExp][] = [
  ['code', /```|\b(function|def|class|const|let|var|import|return|compile|stack ?trace|typescript|javascript|python|rust|golang|java|sql|regex|bug|refactor|unit test)\b|=>|\{\s*$/im],
  ['math', /\b(solve|equation|integral|derivative|prove|theorem|calculate|probability|matrix)\b|\d\s*[-+*/^=]\s*\d/i],
  ['translation', /\b(translate|translation|in (french|german|spanish|italian|japanese|chinese|portuguese|english))\b/i],
  ['summarization', /\b(summari[sz]e|summary|tl;?dr|key points)\b/i],
  ['extraction', /\b(extract|parse|classify|label|json)\b/i],
  ['creative', /\b(poem|story|lyrics|haiku|slogan|novel|creative)\b/i],
];

export const classifyTask = (text: string): TaskType => {
  const sample = text.length > 4000 ? text.slice(0, 4000) : text;
  for (const [task, pattern] of PATTERNS) if (pattern.test(sample)) return task;
  return 'chat';
};

const supports = (endpoint: EndpointEntry, capability: Capability, catalog: Catalog): boolean => {
  switch (capability) {
    case 'tools':
      return endpoint.supportedParameters.has('tools');
    case 'json':
      return endpoint.supportedParameters.has('response_format');
    case 'vision':
      return catalog.model(endpoint.model)?.spec.inputModalities.includes('image') ?? false;
    default: {
      const _never: never = capability;
      return false;
    }
  }
};

/**
 * Whether `id` matches `pattern`, where `*` stands for any run of characters, ignoring case. Greedy, backtracking only
 * to the last star: at most pattern × id length steps (no regular expression, whose backtracking a caller's pattern of
 * many stars could make exponential).
 */
export const matchesModelPattern = (pattern: string, id: string): boolean => {
  const p = pattern.toLowerCase();
  const t = id.toLowerCase();
  let i = 0;
  let j = 0;
  let star = -1;
  let resume = 0;
  while (j < t.length) {
    if (i < p.length && p[i] !== '*' && p[i] === t[j]) {
      i++;
      j++;
    } else if (i < p.length && p[i] === '*') {
      star = i++;
      resume = j;
    } else if (star !== -1) {
      i = star + 1;
      j = ++resume;
    } else {
      return false;
    }
  }
  while (i < p.length && p[i] === '*') i++;
  return i === p.length;
};

export interface AutoPick {
  readonly models: readonly string[];
  readonly rule: string | null;
  readonly taskType: TaskType;
}

const DEFAULT_RULES: readonly AutoRule[] = [{ name: 'default', sort: 'price' }];

/**
 * `admits` is the route's own endpoint filter (the router id's variant, the account's provider lists, the request's
 * provider restrictions, data policy and require_parameters, and a key the account may use: its own (BYOK) or the
 * provider's shared one): a model is picked only when one of its endpoints passes it, so a pick is never a model the
 * route would then find no endpoint of.
 */
export const pickAutoModels = (input: {
  catalog: Catalog;
  parsed: ParsedChat;
  stats: EndpointStatsView;
  exclude: ReadonlySet<string>;
  admits: (endpoint: EndpointEntry) => boolean;
}): AutoPick => {
  const { catalog, parsed, stats } = input;
  const taskType = classifyTask(parsed.lastUserText);
  const needed: Capability[] = [];
  if (parsed.needs.tools) needed.push('tools');
  if (parsed.needs.vision) needed.push('vision');
  if (parsed.needs.json) needed.push('json');
  const minContext = parsed.promptTokens + (parsed.request.max_tokens ?? 0);

  const rules = catalog.autoRules() ?? DEFAULT_RULES;
  // The auto-router plugin narrows every rule's choice: only allowed models, never excluded ones.
  const plugin = parsed.autoRouter;
  const permitted = (modelId: string) =>
    (!plugin?.allowed || plugin.allowed.some((p) => matchesModelPattern(p, modelId))) && !plugin?.excluded?.some((p) => matchesModelPattern(p, modelId));
  for (const rule of rules) {
    if (rule.taskTypes && !rule.taskTypes.includes(taskType)) continue;
    const capabilities = [...needed, ...(rule.capabilities ?? [])];
    if (rule.capabilities && rule.capabilities.some((c) => !needed.includes(c)) && !rule.taskTypes) {
      // A capability rule without a task condition applies only to requests that need that capability.
      continue;
    }
    const usable = (modelId: string): EndpointEntry[] => {
      const model = catalog.model(modelId);
      // A chat needs a model that writes text (not an embeddings model), as when it is named.
      if (input.exclude.has(modelId) || model?.retired || (model && !model.spec.outputModalities.includes('text')) || !permitted(modelId)) return [];
      return catalog.endpoints(modelId).filter(
        (e) =>
          input.admits(e) &&
          e.contextLength >= Math.max(minContext, rule.minContextLength ?? 0) &&
          (rule.maxPromptPrice === undefined || e.prices.prompt <= rule.maxPromptPrice) &&
          (rule.maxCompletionPrice === undefined || e.prices.completion <= rule.maxCompletionPrice) &&
          capabilities.every((c) => supports(e, c, catalog)),
      );
    };
    let candidates: { modelId: string; endpoints: EndpointEntry[] }[];
    if (rule.models) {
      // Each id read as a request's is (resolveModelId: an admin's alias, another spelling of the version), once.
      const ids = new Set<string>();
      for (const named of rule.models) {
        const modelId = resolveModelId(catalog, named).modelId;
        if (modelId !== null) ids.add(modelId);
      }
      candidates = [...ids].map((modelId) => ({ modelId, endpoints: usable(modelId) })).filter((c) => c.endpoints.length > 0);
    } else {
      candidates = catalog
        .models()
        .map((m) => ({ modelId: m.spec.modelId, endpoints: usable(m.spec.modelId) }))
        .filter((c) => c.endpoints.length > 0);
      const by = rule.sort ?? 'price';
      const score = (c: { endpoints: EndpointEntry[] }): number => {
        const values = c.endpoints.map((e) => {
          if (by === 'price') return e.prices.prompt + e.prices.completion;
          const s = stats.get(e.id);
          return by === 'throughput' ? -(s?.throughputP50 ?? 0) : (s?.latencyP50Ms ?? Number.MAX_SAFE_INTEGER);
        });
        return Math.min(...values);
      };
      candidates.sort((a, b) => score(a) - score(b) || a.modelId.localeCompare(b.modelId));
    }
    if (candidates.length === 0) continue;
    return { models: candidates.slice(0, rule.limit ?? 3).map((c) => c.modelId), rule: rule.name, taskType };
  }
  return { models: [], rule: null, taskType };
};

/**
 * Routing, the pure half: from the requested models (with variants and the auto model), OpenRouter's `provider`
 * preferences, the request's needs and the endpoints' health, an ordered list of targets to try. No I/O and no
 * awaits: it reads the in-memory catalog, the breakers and a stats snapshot.
 */
import type { AccountProviderPreferences } from '../modules/accounts/account.events.js';
import { originOf } from '../modules/accounts/byok.js';
import { AUTO_MODEL_IDS, FREE_ROUTER_ID } from '../modules/catalog/autoRouter.events.js';
import type { Catalog, EndpointEntry } from '../modules/catalog/catalog.js';
import type { Modality } from '../modules/catalog/model.events.js';
import { resolveModelId, retiredRefusal } from '../modules/catalog/modelId.js';
import { namesEndpoint } from '../modules/catalog/endpointTag.js';
import type { DataPolicy } from '../modules/catalog/provider.events.js';
import { pickAutoModels } from './autoRouter.js';
import { isZeroPriced } from './pricing.js';
import type { Breakers } from './breaker.js';
import { messageMaxTokens, messageTokens, type Cutoffs, type ParsedChat, type ProviderPreferences, type SortBy } from './chatRequest.js';
import { ANTHROPIC_MAX_MESSAGES, compressionApplies, middleOut } from './contextCompression.js';
import type { ChatMessage, ReasoningConfig } from './types.js';
import { GatewayError, invalidRequest } from './gatewayErrors.js';
import type { EndpointStats, EndpointStatsView } from './routeStats.js';

export interface RouteTarget {
  readonly endpoint: EndpointEntry;
  /** The model id reported to the client and billed: the base id, or `…:free` for the free variant. */
  readonly model: string;
  /** The id the client asked for that this target serves (with its variant suffixes; the auto router's id for its picks). */
  readonly requested: string;
  readonly free: boolean;
  /** Output tokens this target may produce: `max_tokens`, else what the endpoint and the context allow. */
  readonly maxOutput: number;
  readonly apiKey: string | null;
  /** `apiKey` is the account's own key for the provider (BYOK): billed a fee on the list price. */
  readonly byok: boolean;
  /** The conversation compressed to fit this endpoint (context compression); absent, the request's own. */
  readonly messages?: ChatMessage[];
  /** The estimated prompt tokens of that compressed conversation: what an estimated bill counts. */
  readonly promptTokens?: number;
  /** The most tokens that compressed conversation can count (ParsedChat.maxPromptTokens): what its reservation counts. */
  readonly maxPromptTokens?: number;
  /** Reasoning turned on by `:thinking` when the request set none; absent, the request's own. */
  readonly reasoning?: ReasoningConfig;
}

/**
 * The caller's own provider keys (BYOK) that may be used now, as the gateway resolved them: each provider's key, for
 * providers whose endpoints still point at the origin the key was bound to; and the providers whose shared key must
 * not serve the account (their key says fallbackToShared: false), whether or not the key itself can be used.
 */
export interface ByokRoute {
  readonly keys: ReadonlyMap<string, { readonly apiKey: string; readonly origin: string }>;
  readonly noShared: ReadonlySet<string>;
}

export interface RoutePlan {
  readonly targets: readonly RouteTarget[];
  /** `switchyard/auto (rule)` when the auto router chose the models. */
  readonly router: string | null;
  /**
   * The request orders the first model's endpoints itself: `provider.order`, `provider.sort`, a sort variant (`:floor`,
   * `:nitro`) or a performance threshold. A sticky session's pin does not override that (stickySessions.ts).
   */
  readonly ordered: boolean;
}

type Stage = 'input' | 'variant' | 'provider' | 'data_policy' | 'parameters' | 'max_tokens' | 'context' | 'credentials';

interface Group {
  readonly requested: string;
  readonly base: string;
  /** What the requested id's variant suffixes ask for (a router's picks take the router id's own). */
  readonly free: boolean;
  readonly sort: SortBy | null;
  readonly thinking: boolean;
  readonly endpoints: readonly EndpointEntry[];
}

/** How many models `openrouter/free` tries, in turn (the first that serves answers). */
const FREE_ROUTER_MODELS = 3;

/**
 * `openrouter/free`: the models of the catalog that write text and have an endpoint costing nothing that the route's
 * filter admits (`admits`: a key the account may use reaches it, the account's own or the shared one, and the
 * request's and account's restrictions let it through), with only those endpoints (a `:free`
 * variant's, else a zero-priced base model's: the paid endpoints of the same model are never reached this way); the
 * best uptime over the last 30 minutes first (an endpoint without stats counts as up), then by id, at most three.
 */
const freeModels = (
  catalog: Catalog,
  stats: EndpointStatsView,
  seen: ReadonlySet<string>,
  admits: (e: EndpointEntry) => boolean,
): { base: string; free: boolean; endpoints: EndpointEntry[] }[] => {
  const picks: { base: string; free: boolean; endpoints: EndpointEntry[]; uptime: number }[] = [];
  for (const model of catalog.models()) {
    const base = model.spec.modelId;
    if (seen.has(base) || model.retired || !model.spec.outputModalities.includes('text')) continue;
    const zero = catalog.endpoints(base).filter((e) => isZeroPriced(e.prices) && admits(e));
    if (zero.length === 0) continue;
    const variant = zero.filter((e) => e.free);
    const endpoints = variant.length > 0 ? variant : zero;
    const uptime = Math.max(...endpoints.map((e) => stats.get(e.id)?.uptime30m ?? 1));
    picks.push({ base, free: variant.length > 0, endpoints, uptime });
  }
  picks.sort((a, b) => b.uptime - a.uptime || (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  return picks.slice(0, FREE_ROUTER_MODELS);
};

/** `:thinking`'s reasoning: on, at the default effort, as `reasoning: { enabled: true }` asks. */
const THINKING: ReasoningConfig = { enabled: true };

const priceScore = (e: EndpointEntry) => e.prices.prompt + e.prices.completion;

/**
 * OpenRouter's default load balancing (no sort, no provider order): among the healthy endpoints (breaker closed), the
 * one tried first is drawn with probability weighted by 1/price² (1 and 3 nano-dollars: the first 9× as likely as the
 * second; among endpoints that cost nothing, evenly); the others follow in their (price) order, as fallbacks.
 */
const balanced = (endpoints: EndpointEntry[], healthy: (e: EndpointEntry) => boolean, random: () => number): EndpointEntry[] => {
  const candidates = endpoints.filter(healthy);
  if (candidates.length < 2) return endpoints;
  const free = candidates.filter((e) => priceScore(e) === 0);
  let pick: EndpointEntry;
  if (free.length > 0) {
    pick = free[Math.min(free.length - 1, Math.floor(random() * free.length))]!;
  } else {
    const weights = candidates.map((e) => 1 / priceScore(e) ** 2);
    let r = random() * weights.reduce((sum, w) => sum + w, 0);
    let i = 0;
    while (i < candidates.length - 1 && r >= weights[i]!) r -= weights[i++]!;
    pick = candidates[i]!;
  }
  return pick === endpoints[0] ? endpoints : [pick, ...endpoints.filter((e) => e !== pick)];
};

const sortEndpoints = (endpoints: EndpointEntry[], by: SortBy | null, stats: EndpointStatsView): EndpointEntry[] => {
  if (by === 'throughput') return endpoints.sort((a, b) => (stats.get(b.id)?.throughputP50 ?? -1) - (stats.get(a.id)?.throughputP50 ?? -1) || priceScore(a) - priceScore(b));
  if (by === 'latency') {
    const latency = (e: EndpointEntry) => stats.get(e.id)?.latencyP50Ms ?? Number.MAX_SAFE_INTEGER;
    return endpoints.sort((a, b) => latency(a) - latency(b) || priceScore(a) - priceScore(b));
  }
  // Price (also the default): cheapest first; Array.prototype.sort is stable, so ties keep publication order.
  return endpoints.sort((a, b) => priceScore(a) - priceScore(b));
};

/** A provider whose policy is unstated counts as one that collects data. */
const meetsDataPolicy = (policy: DataPolicy | null, prefs: ProviderPreferences | null | undefined) =>
  (!prefs?.zdr || policy === 'zero_retention') && (!prefs?.denyDataCollection || policy === 'no_collection' || policy === 'zero_retention');
/** Whether one of the entries (a provider, or `provider/variant`: endpointTag.ts) names the endpoint. */
const matchesProvider = (e: EndpointEntry, names: readonly string[]) => names.some((n) => namesEndpoint(n, e));
/** The request's own provider restrictions (the account's lists apply beside them). */
const requestAdmits = (e: EndpointEntry, prefs: ProviderPreferences | null) =>
  (!prefs?.only || matchesProvider(e, prefs.only)) &&
  (!prefs?.ignore || !matchesProvider(e, prefs.ignore)) &&
  (!prefs?.order || prefs.allowFallbacks || matchesProvider(e, prefs.order)) &&
  (!prefs?.quantizations || prefs.quantizations.includes(e.quantization ?? 'unknown')) &&
  (!prefs?.maxPrice ||
    ((prefs.maxPrice.prompt === undefined || e.prices.prompt <= prefs.maxPrice.prompt) &&
      (prefs.maxPrice.completion === undefined || e.prices.completion <= prefs.maxPrice.completion) &&
      (prefs.maxPrice.request === undefined || e.prices.request <= prefs.maxPrice.request)));
/** The account's lists: its ignore list is merged with the request's, and the request's `only` narrows within its allow list. */
const accountAdmits = (e: EndpointEntry, account: AccountProviderPreferences) => (account.allow.length === 0 || matchesProvider(e, account.allow)) && !matchesProvider(e, account.ignore);
/** What a router's picks were narrowed by, when nothing was left. */
const RESTRICTIONS = "your provider preferences (the request's provider object and your account's provider settings)";
const accountLists = (account: AccountProviderPreferences) =>
  [account.ignore.length > 0 && `ignore: ${account.ignore.join(', ')}`, account.allow.length > 0 && `allow: ${account.allow.join(', ')}`].filter(Boolean).join('; ');

/**
 * Whether an endpoint's last 5 minutes miss a performance threshold of the request. Without samples in that window
 * nothing shows it misses one: it keeps its place.
 */
const missesThresholds = (stats: EndpointStats | undefined, prefs: ProviderPreferences): boolean => {
  const beyond = (measured: Partial<Record<keyof Cutoffs, number>> | null | undefined, cutoffs: Cutoffs | undefined, worse: (value: number, cutoff: number) => boolean) =>
    cutoffs !== undefined && measured != null && Object.entries(cutoffs).some(([p, cutoff]) => measured[p as keyof Cutoffs] !== undefined && worse(measured[p as keyof Cutoffs]!, cutoff));
  return beyond(stats?.latency5m, prefs.maxLatencyMs, (ms, max) => ms > max) || beyond(stats?.throughput5m, prefs.minThroughput, (tps, min) => tps < min);
};

/** Stable: the items that do not miss first, then those that do, each judged once. */
const meetFirst = <T>(list: readonly T[], misses: (item: T) => boolean): T[] => {
  const met: T[] = [];
  const missed: T[] = [];
  for (const item of list) (misses(item) ? missed : met).push(item);
  return [...met, ...missed];
};

/** A model that cannot give what the call asks for: a chat needs text, an embeddings call embeddings. */
const wrongOutput = (requested: string, output: Modality, has: readonly Modality[]) =>
  invalidRequest(
    output === 'text'
      ? `${requested} does not produce text (its output is ${has.join(', ')}); call /api/v1/embeddings for embeddings`
      : `${requested} is not an embeddings model (its output is ${has.join(', ')})`,
    { param: 'model', model: requested },
  );

export const planRoute = (input: {
  catalog: Catalog;
  /** What every requested model must produce: `text` for a chat (and the APIs built on it), `embeddings` for embeddings. */
  output: 'text' | 'embeddings';
  breakers: Breakers;
  stats: EndpointStatsView;
  parsed: ParsedChat;
  /** The account's provider lists (setProviderPreferences); absent or null: none. */
  account?: AccountProviderPreferences | null;
  /** The account's own provider keys; absent or null: none. */
  byok?: ByokRoute | null;
  nowMs: number;
  /** A number in [0, 1): the default load balancing's draw; absent, Math.random; null: no load balancing (the cheapest first). */
  random?: (() => number) | null;
}): RoutePlan => {
  const { catalog, breakers, stats, parsed } = input;
  const draw = input.random === undefined ? Math.random : input.random;
  const prefs: ProviderPreferences | null = parsed.provider;
  const account = input.account ?? null;
  const byok = input.byok ?? null;
  /** The provider's shared key may serve this account; its own key (BYOK) may. */
  const sharedKey = (e: EndpointEntry) => e.provider.auth().problem === null && !byok?.noShared.has(e.provider.slug);
  /** The account's key for the endpoint's provider, only where the endpoint points at the origin the key is bound to. */
  const ownKey = (e: EndpointEntry): string | undefined => {
    const key = byok?.keys.get(e.provider.slug);
    return key !== undefined && originOf(e.provider.baseUrl) === key.origin ? key.apiKey : undefined;
  };
  /** Some key the account may use reaches the endpoint: the provider's shared one (checked first: cheaper), or its own. */
  const callable = (e: EndpointEntry) => sharedKey(e) || ownKey(e) !== undefined;
  const maxTokens = parsed.request.max_tokens;
  let router: string | null = null;

  // The endpoint filter of every route, in the stages of step 2, and the one the routers pick their models within (with
  // `callable`): a router never picks a model none of whose endpoints the account's lists and the request's preferences
  // admit, or that no key the account may use reaches.
  const admitsVariant = (free: boolean) => (e: EndpointEntry) => (free ? e.free : !e.free);
  // Checked once per route, not per endpoint: most accounts have no lists.
  const admitsProvider = account === null ? (e: EndpointEntry) => requestAdmits(e, prefs) : (e: EndpointEntry) => accountAdmits(e, account) && requestAdmits(e, prefs);
  const admitsPolicy = (e: EndpointEntry) => meetsDataPolicy(e.provider.dataPolicy, prefs);
  const admitsParameters = (e: EndpointEntry) => !prefs?.requireParameters || parsed.usedParameters.every((p) => e.supportedParameters.has(p));
  const admits = (e: EndpointEntry) => admitsProvider(e) && admitsPolicy(e) && admitsParameters(e);
  const restricted = account !== null || prefs !== null;

  // 1. Requested ids → groups of candidate endpoints (auto expanded, variants split, aliases resolved, unknown ids refused).
  // Each id is read once (resolveModelId); every id is checked before any other refusal: a retired model (as a saved id
  // is: the catalog's modelProblem) and one without the output the call needs are refused.
  const resolved = parsed.models.map((requested) => resolveModelId(catalog, requested));
  resolved.forEach((id, i) => {
    const model = id.modelId === null ? undefined : catalog.model(id.modelId);
    if (model?.retired) throw invalidRequest(retiredRefusal(parsed.models[i]!, id), { param: 'model', model: parsed.models[i]! });
    if (model && !model.spec.outputModalities.includes(input.output)) throw wrongOutput(parsed.models[i]!, input.output, model.spec.outputModalities);
  });
  const groups: Group[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < resolved.length; i++) {
    const { base, free, sort, thinking, problem, modelId } = resolved[i]!;
    const requested = parsed.models[i]!;
    if (problem !== null) throw invalidRequest(problem, { param: 'model', model: requested });
    if (AUTO_MODEL_IDS.includes(base)) {
      const variant = admitsVariant(free);
      const pick = pickAutoModels({ catalog, parsed, stats, exclude: seen, admits: (e) => variant(e) && admits(e) && callable(e) });
      if (pick.models.length === 0) {
        const within = [
          parsed.autoRouter && (parsed.autoRouter.allowed || parsed.autoRouter.excluded) && "the auto-router plugin's allowed_models and excluded_models",
          restricted && RESTRICTIONS,
        ].filter(Boolean);
        const narrowed = within.length > 0 ? ` within ${within.join(' and ')}` : '';
        throw new GatewayError(404, 'not_found', `The auto router found no model it can serve for this request${narrowed} (task: ${pick.taskType})`, { task_type: pick.taskType });
      }
      router = `${base}${pick.rule ? ` (${pick.rule})` : ''}`;
      for (const picked of pick.models) {
        if (seen.has(picked)) continue;
        seen.add(picked);
        // The router's own variant suffixes hold for its picks (`openrouter/auto:free` never reaches a paid endpoint).
        groups.push({ requested, base: picked, free, sort, thinking, endpoints: catalog.endpoints(picked) });
      }
      continue;
    }
    if (base === FREE_ROUTER_ID) {
      const picks = freeModels(catalog, stats, seen, (e) => admits(e) && callable(e));
      if (picks.length === 0) {
        throw new GatewayError(404, 'not_found', `${FREE_ROUTER_ID} found no model with an endpoint that costs nothing and can serve now${restricted ? ` within ${RESTRICTIONS}` : ''}`);
      }
      router ??= FREE_ROUTER_ID;
      for (const pick of picks) {
        seen.add(pick.base);
        groups.push({ requested, base: pick.base, free: pick.free, sort: null, thinking: false, endpoints: pick.endpoints });
      }
      continue;
    }
    if (modelId === null) throw invalidRequest(`${requested} is not a valid model ID`, { param: 'model', model: requested });
    if (seen.has(requested)) continue;
    seen.add(requested);
    groups.push({ requested, base: modelId, free, sort, thinking, endpoints: catalog.endpoints(modelId) });
  }

  // Judged once per endpoint: the group's order and the order across groups both ask.
  const judged = new Map<string, boolean>();
  const misses =
    prefs && (prefs.maxLatencyMs || prefs.minThroughput)
      ? (e: EndpointEntry) => {
          let miss = judged.get(e.id);
          if (miss === undefined) judged.set(e.id, (miss = missesThresholds(stats.get(e.id), prefs)));
          return miss;
        }
      : null;

  // Context compression: an endpoint the request does not fit may take it compressed, whatever it lacks (how much
  // must be cut orders a model's compressed endpoints below, and step 5 refuses what cannot fit at all).
  const required = parsed.promptTokens + (maxTokens ?? 1);

  // 2. Filter each group stage by stage, remembering why the first group ran dry.
  let firstFailure: { stage: Stage; group: Group; detail: string } | null = null;
  const filtered: { group: Group; endpoints: EndpointEntry[] }[] = [];
  // What the messages carry beyond text: a model must list it among its input modalities, and the endpoint's
  // protocol must have a way to send it (Anthropic's Messages API has no audio). As OpenRouter, only endpoints that
  // take every part are routed to; none is a 404 in its words ("No endpoints found that support image input").
  const inputs = [
    ...(parsed.needs.vision ? (['image'] as const) : []),
    ...(parsed.needs.files ? (['file'] as const) : []),
    ...(parsed.needs.audio ? (['audio'] as const) : []),
  ];
  for (const group of groups) {
    const modalities = catalog.model(group.base)?.spec.inputModalities;
    const lacking = (e: EndpointEntry) => inputs.filter((m) => (modalities !== undefined && !modalities.includes(m)) || (m === 'audio' && e.provider.protocol === 'anthropic'));
    // `explain` is told the endpoints that reached the stage.
    const stages: [Stage, (e: EndpointEntry) => boolean, (reaching: readonly EndpointEntry[]) => string][] = [
      [
        'input',
        (e) => lacking(e).length === 0,
        () => `No endpoints found that support ${[...new Set(group.endpoints.flatMap(lacking))].join(' or ')} input (${group.base} takes ${(modalities ?? ['text']).join(', ')})`,
      ],
      ['variant', admitsVariant(group.free), () => (group.free ? `${group.base} has no free endpoints` : `${group.base} has only free endpoints: ask for ${group.base}:free`)],
      [
        'provider',
        admitsProvider,
        (reaching) => {
          // Where to look: the account's settings when they excluded what the request's own restrictions left.
          if (account !== null) {
            const byAccountAlone = !reaching.some((e) => accountAdmits(e, account));
            if (byAccountAlone || reaching.some((e) => requestAdmits(e, prefs))) {
              const left = byAccountAlone ? '' : ' that your provider restrictions (only, ignore, order, quantizations, max_price) leave';
              return `Your account's provider settings (${accountLists(account)}; setProviderPreferences changes them) exclude every endpoint of ${group.base}${left}`;
            }
          }
          return `No endpoints of ${group.base} match your provider restrictions (only, ignore, order, quantizations, max_price)`;
        },
      ],
      [
        'data_policy',
        admitsPolicy,
        () => {
          const asked = prefs?.zdr ? 'zdr: zero data retention' : 'data_collection "deny": providers that neither store nor train on your data';
          const providers = [...new Set(group.endpoints.map((e) => `${e.provider.name} (${e.provider.dataPolicy ?? 'unstated'})`))].join(', ');
          return `No endpoints of ${group.base} meet your data policy (${asked}) as an admin stated the providers': ${providers}`;
        },
      ],
      [
        'parameters',
        admitsParameters,
        () => `No endpoints of ${group.base} support every parameter of this request (${parsed.usedParameters.join(', ')}) and require_parameters is set`,
      ],
      ['max_tokens', (e) => maxTokens === undefined || maxTokens <= e.maxOutput, () => `max_tokens ${maxTokens} is more than any endpoint of ${group.base} can return`],
      [
        'context',
        (e) => required <= e.contextLength || compressionApplies(parsed.contextCompression, e.contextLength),
        () => {
          const largest = Math.max(...group.endpoints.map((e) => e.contextLength));
          return `This request needs about ${parsed.promptTokens + (maxTokens ?? 0)} tokens (${parsed.promptTokens} of prompt${maxTokens ? ` + ${maxTokens} of max_tokens` : ''}), but ${group.base}'s context length is ${largest} tokens. Shorten the messages or lower max_tokens.`;
        },
      ],
      [
        'credentials',
        callable,
        // The reason a credential is missing (a variable's name, a master key) is the operator's business, not the caller's.
        () =>
          `No provider of ${group.base} is available: ${[
            ...new Set(
              group.endpoints.map(
                (e) =>
                  `${e.provider.name} (${
                    byok?.noShared.has(e.provider.slug)
                      ? 'your own key for it (BYOK) cannot be sent now, and it does not allow the shared key (fallbackToShared: false): see Account.byokKeys'
                      : e.provider.auth().problem === null
                        ? 'filtered out'
                        : 'its credentials are not configured'
                  })`,
              ),
            ),
          ].join('; ')}`,
      ],
    ];
    let endpoints = [...group.endpoints];
    for (const [stage, keep, explain] of stages) {
      const next = endpoints.filter(keep);
      if (next.length === 0) {
        if (!firstFailure) firstFailure = { stage, group, detail: group.endpoints.length === 0 ? `${group.base} has no active endpoints` : explain(endpoints) };
        endpoints = [];
        break;
      }
      endpoints = next;
    }
    if (endpoints.length === 0) continue;
    // Tools are best-effort without require_parameters: prefer endpoints that support them when some do.
    if (parsed.needs.tools && endpoints.some((e) => e.supportedParameters.has('tools'))) endpoints = endpoints.filter((e) => e.supportedParameters.has('tools'));
    const by = group.sort ?? prefs?.sort?.by ?? null;
    sortEndpoints(endpoints, by, stats);
    if (by === null && !prefs?.order && endpoints.length > 1 && draw !== null) endpoints = balanced(endpoints, (e) => !breakers.isOpen(e.id, input.nowMs), draw);
    if (prefs?.order) {
      const order = prefs.order;
      const rank = (e: EndpointEntry) => {
        const i = order.findIndex((n) => matchesProvider(e, [n]));
        return i === -1 ? order.length : i;
      };
      endpoints.sort((a, b) => rank(a) - rank(b));
    }
    // The one endpoint allow_fallbacks: false leaves is the first that meets the performance thresholds, if any does.
    if (misses) endpoints = meetFirst(endpoints, misses);
    // The endpoints the account's own key reaches before the others, so that the one allow_fallbacks: false leaves is one.
    if (byok !== null) endpoints = meetFirst(endpoints, (e) => ownKey(e) === undefined);
    if (prefs && !prefs.allowFallbacks && !prefs.order) endpoints = endpoints.slice(0, 1);
    filtered.push({ group, endpoints });
  }

  // 3. Healthy endpoints before those with an open breaker (never dropped: if all are open, they are all tried).
  const demote = (list: EndpointEntry[]) => {
    const open = list.filter((e) => breakers.isOpen(e.id, input.nowMs));
    return open.length === 0 || open.length === list.length ? list : [...list.filter((e) => !open.includes(e)), ...open];
  };
  let ordered: { group: Group; endpoint: EndpointEntry }[];
  if (prefs?.sort?.partition === 'none') {
    const all = filtered.flatMap(({ group, endpoints }) => endpoints.map((endpoint) => ({ group, endpoint })));
    const sorted = sortEndpoints(all.map((a) => a.endpoint), prefs.sort.by, stats);
    ordered = demote(sorted).map((endpoint) => all.find((a) => a.endpoint === endpoint)!);
  } else {
    ordered = filtered.flatMap(({ group, endpoints }) => demote(endpoints).map((endpoint) => ({ group, endpoint })));
  }

  // 4. Performance thresholds deprioritise, never exclude: endpoints that miss one go after every endpoint that does
  // not, across the requested models (a fallback model that meets them is tried before a primary that misses them).
  if (misses) ordered = meetFirst(ordered, (a) => misses(a.endpoint));

  if (ordered.length === 0) {
    const failure = firstFailure!;
    switch (failure.stage) {
      case 'context':
        throw new GatewayError(400, 'context_length_exceeded', failure.detail, { model: failure.group.requested, prompt_tokens_estimate: parsed.promptTokens });
      case 'input':
        throw new GatewayError(404, 'not_found', failure.detail, { model: failure.group.requested, param: 'messages', input_modalities: inputs });
      case 'max_tokens':
        throw new GatewayError(400, 'max_tokens_exceeded', failure.detail, { model: failure.group.requested, param: 'max_tokens' });
      case 'credentials':
        // Only an operator (a provider's credentials, the master key) or the account (its BYOK key's settings) can
        // change this: a retry meets the same refusal (REST: x-should-retry false).
        throw new GatewayError(503, 'provider_unavailable', failure.detail, { model: failure.group.requested }, undefined, undefined, false);
      default:
        throw new GatewayError(404, 'not_found', failure.detail, { model: failure.group.requested });
    }
  }

  // 5. The conversation as each endpoint takes it: whole, or compressed where it does not fit (or, on Anthropic's API,
  // has too many messages); null where compression cannot fit it. (The context stage let through only endpoints it
  // fits or compression applies to.)
  const { messages } = parsed.request;
  let fixedTokens: number | undefined;
  let fixedMaxTokens: number | undefined;
  const fitFor = (endpoint: EndpointEntry): { messages?: ChatMessage[]; promptTokens: number; maxPromptTokens?: number } | null => {
    const anthropic = endpoint.provider.protocol === 'anthropic';
    const tooMany = anthropic && messages.length > ANTHROPIC_MAX_MESSAGES;
    if ((required <= endpoint.contextLength && !tooMany) || !compressionApplies(parsed.contextCompression, endpoint.contextLength)) return { promptTokens: parsed.promptTokens };
    // What is not messages (tools) stays as it is.
    fixedTokens ??= Math.max(0, parsed.promptTokens - messages.reduce((n, m) => n + messageTokens(m), 0));
    fixedMaxTokens ??= Math.max(0, parsed.maxPromptTokens - messages.reduce((n, m) => n + messageMaxTokens(m), 0));
    const room = maxTokens ?? Math.min(endpoint.maxOutput, Math.floor(endpoint.contextLength / 4));
    const fitted = middleOut(messages, endpoint.contextLength - room - fixedTokens, anthropic ? ANTHROPIC_MAX_MESSAGES : Infinity);
    return (
      fitted && {
        messages: fitted,
        promptTokens: fixedTokens + fitted.reduce((n, m) => n + messageTokens(m), 0),
        maxPromptTokens: fixedMaxTokens + fitted.reduce((n, m) => n + messageMaxTokens(m), 0),
      }
    );
  };
  // Within a model, endpoints that take the conversation whole go first: compression loses part of it; then those
  // that keep the most of it (a stable sort: equals keep their order). The models keep the order they were asked in:
  // a model's compressed targets follow its last whole one.
  let targets: RouteTarget[] = [];
  const lastOf = new Map(ordered.map(({ group }, i) => [group, i]));
  const compressed = new Map<Group, { target: RouteTarget; kept: number }[]>();
  ordered.forEach(({ group, endpoint }, i) => {
    const fit = fitFor(endpoint);
    if (fit) {
      // Built whole (a spread that adds keys is slow on Node 20's V8 and promotes its garbage: src/objects.ts).
      const targetWith = (apiKey: string | null, byok: boolean): RouteTarget => ({
        endpoint,
        model: group.free ? `${group.base}:free` : group.base,
        requested: group.requested,
        free: endpoint.free,
        maxOutput: maxTokens ?? Math.max(1, Math.min(endpoint.maxOutput, endpoint.contextLength - fit.promptTokens)),
        apiKey,
        byok,
        ...(fit.messages && { messages: fit.messages, promptTokens: fit.promptTokens, maxPromptTokens: fit.maxPromptTokens ?? parsed.maxPromptTokens }),
        ...(group.thinking && parsed.request.reasoning === undefined && { reasoning: THINKING }),
      });
      // The account's own key first, then (when it may serve) the provider's shared key on the same endpoint.
      const own = ownKey(endpoint);
      const keys: RouteTarget[] = [];
      if (own !== undefined) keys.push(targetWith(own, true));
      if (sharedKey(endpoint)) keys.push(targetWith(endpoint.provider.auth().secret, false));
      for (const target of keys) {
        if (fit.messages) compressed.set(group, [...(compressed.get(group) ?? []), { target, kept: fit.promptTokens }]);
        else targets.push(target);
      }
    }
    if (lastOf.get(group) === i) for (const { target } of (compressed.get(group) ?? []).sort((a, b) => b.kept - a.kept)) targets.push(target);
  });
  // OpenRouter tries BYOK endpoints first, ahead of provider.order and every sort: within each model, in the order
  // asked for, the account's own keys go before the shared ones.
  if (byok !== null && targets.some((t) => t.byok)) {
    const models = [...new Set(targets.map((t) => t.model))];
    targets = models.flatMap((model) => [...targets.filter((t) => t.model === model && t.byok), ...targets.filter((t) => t.model === model && !t.byok)]);
  }
  if (targets.length === 0) {
    const { group } = ordered[0]!;
    throw new GatewayError(
      400,
      'context_length_exceeded',
      `This request needs about ${required} tokens, and context compression could not fit it into ${group.base}'s context of ${Math.max(...ordered.map((o) => o.endpoint.contextLength))} tokens (what is left cannot be dropped or shortened). Shorten the messages or lower max_tokens.`,
      { model: group.requested, prompt_tokens_estimate: parsed.promptTokens },
    );
  }
  const firstGroup = groups.find((g) => g.requested === targets[0]!.requested);
  const requestOrdered = prefs?.order !== undefined || prefs?.sort !== undefined || misses !== null || (firstGroup?.sort ?? null) !== null;
  return { router, targets, ordered: requestOrdered };
};

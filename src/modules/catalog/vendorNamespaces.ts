import { providerHandle } from './providerHandle.events.js';

/**
 * Model makers' namespaces (`mistralai/…`) and brand names that no account but an admin registers a provider under:
 * a provider's slug is the namespace it creates models in at once, so a provider `mistralai` would serve
 * `mistralai/mistral-large` to every user naming it, before the maker (or an admin) ever listed one. The makers
 * OpenRouter lists most models of, the seed's, and the routers' own. A maker missing here is still guarded once one of
 * its models is in the catalog (a slug whose namespace holds another account's models is refused too).
 */
export const RESERVED_VENDOR_NAMESPACES: readonly string[] = [
  // Routers and this instance's own models (switchyard/demo, openrouter/auto).
  'switchyard',
  'openrouter',
  // Model makers, as OpenRouter names their namespaces.
  'openai',
  'anthropic',
  'google',
  'mistralai',
  'meta-llama',
  'x-ai',
  'qwen',
  'deepseek',
  'cohere',
  'microsoft',
  'amazon',
  'nvidia',
  'perplexity',
  'ai21',
  '01-ai',
  'nousresearch',
  'moonshotai',
  'z-ai',
  'thudm',
  'minimax',
  'baidu',
  'tencent',
  'bytedance',
  'bytedance-seed',
  'alibaba',
  'inflection',
  'liquid',
  'ibm-granite',
  'allenai',
  'arcee-ai',
  'stepfun-ai',
  'inception',
  'meituan',
  'huggingfaceh4',
  'eleutherai',
  'databricks',
  'snowflake',
  'upstage',
  'reka',
  'writer',
  // Short forms of the same brands, which read as the maker just as well.
  'mistral',
  'meta',
  'ibm',
];

/**
 * What a slug or a name is compared by: its provider handle (NFKC, case folded: fullwidth "ＭｉｓｔｒａｌＡＩ" is
 * "mistralai") with everything but letters and digits left out, so that `mistral-ai`, `Mistral AI`, `x_ai` and `xai`
 * all read as the reserved `mistralai` and `x-ai` they pass for.
 */
const skeleton = (slugOrName: string): string => providerHandle(slugOrName).replace(/[^\p{L}\p{N}]/gu, '');

const RESERVED = new Map(RESERVED_VENDOR_NAMESPACES.map((slug) => [skeleton(slug), slug]));

/** The reserved namespace a provider's slug or name passes for (`Mistral AI` → `mistralai`), or undefined. */
export const reservedVendorOf = (slugOrName: string): string | undefined => RESERVED.get(skeleton(slugOrName));

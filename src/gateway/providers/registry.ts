import type { ProviderProtocol } from '../../modules/catalog/provider.events.js';
import type { Protocol, ProviderAdapter, ReasoningControls } from './adapter.js';
import { anthropicAdapter } from './anthropic/index.js';
import { DEMO_SUPPORTED_PARAMETERS } from './demo/demoProvider.js';
import { geminiAdapter } from './gemini/index.js';
import { openaiAdapter } from './openai/index.js';

/** The HTTP protocols and their pure adapters. `demo` has none: it runs in-process (demo/demoProvider.ts). */
export const ADAPTERS: Readonly<Record<Protocol, ProviderAdapter>> = { openai: openaiAdapter, anthropic: anthropicAdapter, gemini: geminiAdapter };

const DEMO = { supportedParameters: DEMO_SUPPORTED_PARAMETERS, reasoning: { efforts: [], maxTokens: false } };

export const adapterFor = (protocol: ProviderProtocol): { readonly supportedParameters: readonly string[]; readonly reasoning: ReasoningControls } =>
  protocol === 'demo' ? DEMO : ADAPTERS[protocol];

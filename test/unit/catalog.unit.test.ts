import { describe, expect, it } from 'vitest';
import { summarizeStats, providerStatsProjection, type ProviderStatsDoc } from '../../projections/providerStats.js';
import { ConflictError, ForbiddenError, NotFoundError, RateLimitedError, ValidationError } from '../../src/errors.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { autoRouterDecider } from '../../src/modules/catalog/autoRouter.decider.js';
import { createCredentialVault, parseEnvAllowList } from '../../src/modules/catalog/credentials.js';
import { modelDecider } from '../../src/modules/catalog/model.decider.js';
import { modelAliasDecider } from '../../src/modules/catalog/modelAlias.decider.js';
import { providerDecider } from '../../src/modules/catalog/provider.decider.js';
import type { EndpointProposed, EndpointSpec, ProviderEvent, ProviderRegistered } from '../../src/modules/catalog/provider.events.js';
import { DEFAULT_SEED_FILE, readSeed, seedPrices } from '../../src/modules/catalog/seed.js';
import type { GenerationEvent } from '../../src/modules/generations/generation.events.js';
import { prices } from '../support/catalogFixture.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const at = '2026-01-01T00:00:00.000Z';
const registered: ProviderRegistered = {
  type: 'ProviderRegistered',
  data: { slug: 'acme', name: 'Acme', protocol: 'openai', baseUrl: 'https://api.acme.test/v1', credential: { encrypted: 'v1.sealed.acme.key' }, headers: {}, ownerAccountId: 'acc_owner', trusted: false, at },
};
const spec: EndpointSpec = { model: 'acme/one', upstreamModel: 'one', prices: prices(), contextLength: 8000, maxOutput: 1000, quantization: null, supportedParameters: ['max_tokens'], variants: [] };
const owner = { accountId: 'acc_owner', admin: false };
const stranger = { accountId: 'acc_other', admin: false };
const admin = { accountId: 'acc_root', admin: true };
const given = deciderSpec(providerDecider);
/** The model the provider's owner created. */
const ownModel = { ownerAccountId: 'acc_owner', openToProviders: false };

describe('provider decider', () => {
  it('holds an owner a minute between base URL or cancellation changes that re-file pending proposals, at most a minute whatever the clocks', () => {
    const later = (seconds: number) => new Date(Date.parse(at) + seconds * 1000).toISOString();
    const proposed: EndpointProposed = {
      type: 'EndpointProposed',
      data: { ...spec, model: 'other/model', providerSlug: 'acme', modelOwnerAccountId: 'acc_other', proposedBy: owner, baseUrl: 'https://api.acme.test/v1', cancellable: true, version: 1, at },
    };
    const moved = (by: typeof owner, seconds: number): ProviderEvent => ({ type: 'ProviderBaseUrlChanged', data: { providerSlug: 'acme', baseUrl: 'https://moved.acme.test/v1', at: later(seconds), decidedBy: by } });
    const move = (by: typeof owner, seconds: number) => ({ type: 'ChangeBaseUrl' as const, data: { providerSlug: 'acme', freeModels: [], actor: by, baseUrl: 'https://again.acme.test/v1', at: later(seconds) } });
    const cancel = (seconds: number) => ({ type: 'SetCancellation' as const, data: { providerSlug: 'acme', freeModels: [], actor: owner, cancellable: false, at: later(seconds) } });
    given([registered, proposed, moved(owner, 0)]).when(move(owner, 10)).thenThrows(RateLimitedError, /less than a minute ago.*1 pending proposal.*try again in 50 s/);
    given([registered, proposed, moved(owner, 0)]).when(cancel(10)).thenThrows(RateLimitedError, /try again in 50 s/);
    // Another process's clock ten minutes ahead stamped the last change: held a minute at most.
    given([registered, proposed, moved(owner, 600)]).when(move(owner, 0)).thenThrows(RateLimitedError, /try again in 60 s/);
    // After the minute; an admin's change (neither held nor holding); a change that re-filed nothing (none pending).
    expect(providerDecider.decide(move(owner, 61), foldEvents(providerDecider, [registered, proposed, moved(owner, 0)])).map((e) => e.type)).toEqual(['ProviderBaseUrlChanged', 'EndpointProposed']);
    given([registered, proposed, moved(owner, 0)]).when(move(admin, 10)).then([
      { type: 'ProviderBaseUrlChanged', data: { providerSlug: 'acme', baseUrl: 'https://again.acme.test/v1', at: later(10), decidedBy: admin } },
      { type: 'EndpointProposed', data: { ...proposed.data, baseUrl: 'https://again.acme.test/v1', version: 2, at: later(10) } },
    ]);
    given([registered, proposed, moved(admin, 0)]).when(cancel(10)).then([
      { type: 'ProviderCancellationSet', data: { providerSlug: 'acme', cancellable: false, at: later(10), decidedBy: owner } },
      { type: 'EndpointProposed', data: { ...proposed.data, baseUrl: 'https://moved.acme.test/v1', cancellable: false, version: 2, at: later(10) } },
    ]);
    given([registered, moved(owner, 0), proposed]).when(cancel(10)).then([
      { type: 'ProviderCancellationSet', data: { providerSlug: 'acme', cancellable: false, at: later(10), decidedBy: owner } },
      { type: 'EndpointProposed', data: { ...proposed.data, baseUrl: 'https://moved.acme.test/v1', cancellable: false, version: 2, at: later(10) } },
    ]);
  });

  it('registers a provider once', () => {
    given([]).when({ type: 'RegisterProvider', data: registered.data }).then([registered]);
    given([registered]).when({ type: 'RegisterProvider', data: registered.data }).thenThrows(ConflictError);
  });

  it('refuses bad registrations', () => {
    given([]).when({ type: 'RegisterProvider', data: { ...registered.data, slug: 'Not A Slug' } }).thenThrows(ValidationError, /slug/);
    given([]).when({ type: 'RegisterProvider', data: { ...registered.data, baseUrl: 'ftp://x' } }).thenThrows(ValidationError, /baseUrl/);
    given([]).when({ type: 'RegisterProvider', data: { ...registered.data, credential: { env: 'lower-case' }, trusted: true } }).thenThrows(ValidationError, /environment variable/);
    given([]).when({ type: 'RegisterProvider', data: { ...registered.data, credential: { env: 'ACME_KEY' } } }).thenThrows(ForbiddenError, /Only an admin may name an environment variable/);
    given([]).when({ type: 'RegisterProvider', data: { ...registered.data, credential: { env: 'ACME_KEY' }, trusted: undefined } }).thenThrows(ForbiddenError, /Only an admin/);
  });

  it('leaves a provider an admin registered to admins: its owner, no longer one, changes nothing on it', () => {
    const byAdmin: ProviderRegistered = { ...registered, data: { ...registered.data, credential: { env: 'ACME_KEY' }, trusted: true } };
    given([]).when({ type: 'RegisterProvider', data: byAdmin.data }).then([byAdmin]);
    given([byAdmin]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: owner, spec, model: ownModel, at } }).thenThrows(ForbiddenError, /registered by an admin: only an admin changes it/);
    given([byAdmin]).when({ type: 'SetCancellation', data: { providerSlug: 'acme', freeModels: [], actor: owner, cancellable: false, at } }).thenThrows(ForbiddenError, /registered by an admin/);
    given([byAdmin]).when({ type: 'ChangeBaseUrl', data: { providerSlug: 'acme', freeModels: [], actor: owner, baseUrl: 'https://elsewhere.test/v1', at } }).thenThrows(ForbiddenError, /registered by an admin/);
    given([byAdmin]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: admin, spec, model: ownModel, at } }).then([
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'acme', at, status: 'active', decidedBy: admin } },
    ]);
    // Registered before `trusted` was recorded: an admin's only when the root account owns it.
    const legacy = (ownerAccountId: string): ProviderRegistered => ({ ...registered, data: { ...registered.data, ownerAccountId, trusted: undefined } });
    given([legacy('acc_owner')]).when({ type: 'SetCancellation', data: { providerSlug: 'acme', freeModels: [], actor: owner, cancellable: false, at } }).then([
      { type: 'ProviderCancellationSet', data: { providerSlug: 'acme', cancellable: false, at, decidedBy: owner } },
    ]);
  });

  it("lets the provider's owner and admins publish on it, and nobody else", () => {
    given([registered]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: owner, spec, model: ownModel, at } }).then([
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'acme', at, status: 'active', decidedBy: owner } },
    ]);
    given([registered]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: admin, spec, model: ownModel, at } }).then([
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'acme', at, status: 'active', decidedBy: admin } },
    ]);
    given([registered]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: stranger, spec, model: ownModel, at } }).thenThrows(ForbiddenError);
    given([]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: admin, spec, model: ownModel, at } }).thenThrows(NotFoundError);
  });

  it("takes a provider's data policy from an admin only, once per change", () => {
    const set = (dataPolicy: 'collects' | 'no_collection' | 'zero_retention' | null, actor = admin) => ({ type: 'SetDataPolicy' as const, data: { providerSlug: 'acme', actor, dataPolicy, at } });
    const stated: ProviderEvent = { type: 'ProviderDataPolicySet', data: { providerSlug: 'acme', dataPolicy: 'zero_retention', at, decidedBy: admin } };
    given([registered]).when(set('zero_retention')).then([stated]);
    given([registered, stated]).when(set('zero_retention')).then([]);
    given([registered, stated]).when(set(null)).then([{ type: 'ProviderDataPolicySet', data: { providerSlug: 'acme', dataPolicy: null, at, decidedBy: admin } }]);
    // Its owner's word about its own provider is not taken: requests rely on it.
    given([registered]).when(set('zero_retention', owner)).thenThrows(ForbiddenError, /Only an admin/);
    given([]).when(set('collects')).thenThrows(NotFoundError);
    given([registered]).when(set('forgets' as 'collects')).thenThrows(ValidationError, /dataPolicy/);
  });

  it("takes whether a provider is cancellable from its owner or an admin, once per change", () => {
    const set = (cancellable: boolean, actor = owner) => ({ type: 'SetCancellation' as const, data: { providerSlug: 'acme', freeModels: [], actor, cancellable, at } });
    const notCancellable: ProviderEvent = { type: 'ProviderCancellationSet', data: { providerSlug: 'acme', cancellable: false, at, decidedBy: owner } };
    // Cancellable until stated otherwise: saying so changes nothing.
    given([registered]).when(set(true)).then([]);
    given([registered]).when(set(false)).then([notCancellable]);
    given([registered, notCancellable]).when(set(false, admin)).then([]);
    given([registered, notCancellable]).when(set(true, admin)).then([{ type: 'ProviderCancellationSet', data: { providerSlug: 'acme', cancellable: true, at, decidedBy: admin } }]);
    given([registered]).when(set(false, stranger)).thenThrows(ForbiddenError, /another account/);
    given([]).when(set(false, admin)).thenThrows(NotFoundError);
    given([registered]).when(set('no' as unknown as boolean)).thenThrows(ValidationError, /cancellable/);
  });

  it('validates endpoint specs: integer prices, limits, free means zero', () => {
    const publish = (s: Partial<EndpointSpec>) => given([registered]).when({ type: 'PublishEndpoint', data: { providerSlug: 'acme', actor: owner, spec: { ...spec, ...s }, model: ownModel, at } });
    publish({ prices: { ...prices(), prompt: 0.5 } }).thenThrows(ValidationError, /prices.prompt/);
    publish({ prices: { ...prices(), completion: -1 } }).thenThrows(ValidationError);
    publish({ maxOutput: 9000 }).thenThrows(ValidationError, /maxOutput/);
    publish({ model: 'no-slash' }).thenThrows(ValidationError, /author\/slug/);
    publish({ variants: ['free'] }).thenThrows(ValidationError, /free/);
  });

  it('refuses a price for an endpoint tagged free, as publishing does, however it was published or disabled', () => {
    const free: EndpointSpec = { ...spec, prices: prices({ prompt: 0, completion: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }), variants: ['free'] };
    const published: ProviderEvent = { type: 'EndpointPublished', data: { ...free, providerSlug: 'acme', at } };
    const disabled: ProviderEvent = { type: 'EndpointDisabled', data: { providerSlug: 'acme', model: 'acme/one', reason: 'paused', at, decidedBy: owner } };
    const reprice = (p: typeof free.prices) => ({ type: 'ChangeEndpointPrice' as const, data: { providerSlug: 'acme', access: ownModel, actor: owner, model: 'acme/one', prices: p, at } });
    given([registered, published]).when(reprice(prices({ prompt: 1, completion: 1 }))).thenThrows(ValidationError, /an endpoint tagged free must have every price at 0/);
    given([registered, published, disabled]).when(reprice(prices({ prompt: 1, completion: 1 }))).thenThrows(ValidationError, /tagged free/);
    given([registered, published]).when(reprice(free.prices)).then([]);
    // Republished without the tag, it may be priced.
    const untagged: ProviderEvent = { type: 'EndpointPublished', data: { ...free, variants: [], providerSlug: 'acme', at } };
    given([registered, published, untagged]).when(reprice(prices({ prompt: 1, completion: 1 }))).then([
      { type: 'EndpointPriceChanged', data: { providerSlug: 'acme', model: 'acme/one', prices: prices({ prompt: 1, completion: 1 }), at, decidedBy: owner } },
    ]);
  });

  it('changes a price only when it differs, and only for the owner', () => {
    const published: ProviderEvent = { type: 'EndpointPublished', data: { ...spec, providerSlug: 'acme', at } };
    const newPrices = prices({ prompt: 999 });
    given([registered, published]).when({ type: 'ChangeEndpointPrice', data: { providerSlug: 'acme', access: ownModel, actor: owner, model: 'acme/one', prices: newPrices, at } }).then([
      { type: 'EndpointPriceChanged', data: { providerSlug: 'acme', model: 'acme/one', prices: newPrices, at, decidedBy: owner } },
    ]);
    given([registered, published]).when({ type: 'ChangeEndpointPrice', data: { providerSlug: 'acme', access: ownModel, actor: owner, model: 'acme/one', prices: spec.prices, at } }).then([]);
    given([registered, published]).when({ type: 'ChangeEndpointPrice', data: { providerSlug: 'acme', access: ownModel, actor: stranger, model: 'acme/one', prices: newPrices, at } }).thenThrows(ForbiddenError);
    given([registered]).when({ type: 'ChangeEndpointPrice', data: { providerSlug: 'acme', access: ownModel, actor: owner, model: 'acme/one', prices: newPrices, at } }).thenThrows(NotFoundError);
    given([registered, published]).when({ type: 'DisableEndpoint', data: { providerSlug: 'acme', actor: owner, model: 'acme/one', reason: 'gone', at } }).then([
      { type: 'EndpointDisabled', data: { providerSlug: 'acme', model: 'acme/one', reason: 'gone', at, decidedBy: owner } },
    ]);
  });
});

describe('model and auto-router deciders', () => {
  const model = { modelId: 'acme/one', name: 'One', description: '', contextLength: 8000, inputModalities: ['text'] as const, outputModalities: ['text'] as const, tokenizer: 'Other' };
  it('publishes a model, ignores an identical republish, retires it once', () => {
    const published = { type: 'ModelPublished' as const, data: { ...model, inputModalities: ['text' as const], outputModalities: ['text' as const], at, ownerAccountId: 'acc_root', decidedBy: admin } };
    const { ownerAccountId: _owner, decidedBy: _by, ...spec } = published.data;
    deciderSpec(modelDecider)([]).when({ type: 'PublishModel', data: { ...spec, actor: admin, provider: null } }).then([published]);
    deciderSpec(modelDecider)([published]).when({ type: 'PublishModel', data: { ...spec, actor: admin, provider: null } }).then([]);
    deciderSpec(modelDecider)([published]).when({ type: 'RetireModel', data: { modelId: 'acme/one', at } }).then([{ type: 'ModelRetired', data: { modelId: 'acme/one', at } }]);
    deciderSpec(modelDecider)([]).when({ type: 'RetireModel', data: { modelId: 'acme/one', at } }).thenThrows(NotFoundError);
  });

  it('keeps a retired model retired when it is published again (as the routing catalog and the read model do)', () => {
    const published = { type: 'ModelPublished' as const, data: { ...model, inputModalities: ['text' as const], outputModalities: ['text' as const], at, ownerAccountId: 'acc_root', decidedBy: admin } };
    const retired = { type: 'ModelRetired' as const, data: { modelId: 'acme/one', at } };
    const republished = { ...published, data: { ...published.data, description: 'Updated' } };
    const { ownerAccountId: _owner, decidedBy: _by, ...spec } = published.data;
    deciderSpec(modelDecider)([published, retired]).when({ type: 'PublishModel', data: { ...spec, actor: admin, provider: null } }).then([]);
    deciderSpec(modelDecider)([published, retired, republished]).when({ type: 'RetireModel', data: { modelId: 'acme/one', at } }).thenThrows(ConflictError, /already retired/);
  });

  it('validates auto-router rules', () => {
    deciderSpec(autoRouterDecider)([]).when({ type: 'SetAutoRouterRules', data: { rules: [{ name: 'x', taskTypes: ['code'], limit: 2 }], at } }).then([
      { type: 'AutoRouterRulesSet', data: { rules: [{ name: 'x', taskTypes: ['code'], limit: 2 }], at } },
    ]);
    deciderSpec(autoRouterDecider)([]).when({ type: 'SetAutoRouterRules', data: { rules: [{ name: 'x', capabilities: ['telepathy' as never] }], at } }).thenThrows(ValidationError, /telepathy/);
  });
});

describe('model alias decider', () => {
  const set = { type: 'ModelAliasSet' as const, data: { alias: '~acme/one-latest', model: 'acme/one', at } };
  it('sets an alias, ignores setting it to the same model, removes it naming what it named', () => {
    deciderSpec(modelAliasDecider)([]).when({ type: 'SetModelAlias', data: set.data }).then([set]);
    deciderSpec(modelAliasDecider)([set]).when({ type: 'SetModelAlias', data: set.data }).then([]);
    deciderSpec(modelAliasDecider)([set]).when({ type: 'SetModelAlias', data: { ...set.data, model: 'acme/two' } }).then([{ type: 'ModelAliasSet', data: { ...set.data, model: 'acme/two' } }]);
    deciderSpec(modelAliasDecider)([set]).when({ type: 'RemoveModelAlias', data: { alias: '~acme/one-latest', at } }).then([{ type: 'ModelAliasRemoved', data: { alias: '~acme/one-latest', model: 'acme/one', at } }]);
    deciderSpec(modelAliasDecider)([set, { type: 'ModelAliasRemoved', data: { alias: '~acme/one-latest', model: 'acme/one', at } }]).when({ type: 'RemoveModelAlias', data: { alias: '~acme/one-latest', at } }).thenThrows(NotFoundError);
  });

  it('keeps the forms: ~author/slug naming a model id, never another alias nor variants', () => {
    for (const alias of ['acme/one-latest', '~acme', '~Acme/one', '~acme/one:nitro', '~~acme/one']) {
      deciderSpec(modelAliasDecider)([]).when({ type: 'SetModelAlias', data: { ...set.data, alias } }).thenThrows(ValidationError, /~author\/slug/);
    }
    deciderSpec(modelAliasDecider)([]).when({ type: 'SetModelAlias', data: { ...set.data, model: '~acme/two-latest' } }).thenThrows(ValidationError, /never another alias/);
    deciderSpec(modelAliasDecider)([]).when({ type: 'SetModelAlias', data: { ...set.data, model: 'acme/one:free' } }).thenThrows(ValidationError, /no variant suffix/);
  });
});

describe('provider credentials at rest', () => {
  const vault = createCredentialVault({ masterKey: 'a-master-key-that-is-long-enough-0123456789', envAllow: parseEnvAllowList(['ACME_KEY', 'MISSING_KEY', 'TEAM_*']), env: { ACME_KEY: 'from-env', TEAM_ONE: 'team-secret', ADMIN_API_KEY: 'the-admin-key', OTHER: 'other' } });
  const noKey = (masterKey: string | undefined) => createCredentialVault({ masterKey, envAllow: parseEnvAllowList([]) });

  it('encrypts with AES-256-GCM bound to the provider, and decrypts back', () => {
    const sealed = vault.encrypt('acme', 'sk-secret');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('sk-secret');
    expect(vault.resolve('acme', { encrypted: sealed }, false)).toEqual({ secret: 'sk-secret', problem: null });
    expect(vault.resolve('other', { encrypted: sealed }, false).problem).toMatch(/does not decrypt/);
    expect(noKey('another-master-key-0123456789abcdef').resolve('acme', { encrypted: sealed }, false).problem).toMatch(/does not decrypt/);
  });

  it('resolves environment references and explains what is missing', () => {
    expect(vault.resolve('acme', { env: 'ACME_KEY' }, true)).toEqual({ secret: 'from-env', problem: null });
    expect(vault.resolve('acme', { env: 'MISSING_KEY' }, true)).toEqual({ secret: null, problem: 'environment variable MISSING_KEY is not set' });
    expect(noKey(undefined).resolve('acme', { encrypted: 'v1.a.b.c' }, false).problem).toMatch(/SWITCHYARD_MASTER_KEY is not set/);
    expect(() => noKey(undefined).encrypt('acme', 'x')).toThrow(/SWITCHYARD_MASTER_KEY/);
  });

  it('reads only allowed variables (names and prefixes), never the server secrets, and only for admin-registered providers', () => {
    expect(vault.resolve('acme', { env: 'TEAM_ONE' }, true)).toEqual({ secret: 'team-secret', problem: null });
    expect(vault.resolve('acme', { env: 'OTHER' }, true)).toEqual({ secret: null, problem: 'environment variable OTHER is not allowed by PROVIDER_CREDENTIAL_ENV_ALLOW' });
    expect(vault.resolve('acme', { env: 'ADMIN_API_KEY' }, true).secret).toBeNull();
    expect(createCredentialVault({ masterKey: undefined, envAllow: parseEnvAllowList(['*']), env: { ADMIN_API_KEY: 'k' } }).resolve('a', { env: 'ADMIN_API_KEY' }, true).secret).toBeNull();
    expect(vault.resolve('acme', { env: 'ACME_KEY' }, false)).toEqual({ secret: null, problem: 'environment variable ACME_KEY was named by a provider not registered by an admin' });
    expect(() => vault.checkEnvName('TEAM_TWO')).not.toThrow();
    expect(() => vault.checkEnvName('OTHER')).toThrow(ForbiddenError);
    expect(() => vault.checkEnvName('SWITCHYARD_MASTER_KEY')).toThrow(/PROVIDER_CREDENTIAL_ENV_ALLOW/);
  });
});

describe('the shipped seed', () => {
  it('parses, and its list prices convert to exact nano-dollars', async () => {
    const seed = await readSeed(DEFAULT_SEED_FILE);
    const openai = seed.providers.find((p) => p.slug === 'openai')!;
    const mini = openai.endpoints.find((e) => e.model === 'openai/gpt-4o-mini')!;
    expect(seedPrices(mini.price, 'x')).toEqual({ prompt: 150, completion: 600, request: 0, reasoning: 600, cacheRead: 75, cacheWrite: 150 });
    expect(seed.providers.find((p) => p.protocol === 'demo')!.endpoints.map((e) => e.model)).toContain('switchyard/demo');
    for (const provider of seed.providers) for (const e of provider.endpoints) expect(seed.models.some((m) => m.id === e.model)).toBe(true);
  });
});

describe('providerStats projection', () => {
  const ev = (event: GenerationEvent, position: number): RecordedEvent =>
    ({ ...event, id: `e${position}`, stream: `generation-${event.data.generationId}`, revision: 0, position, metadata: {}, recordedAt: event.data.at }) as unknown as RecordedEvent;
  const completed = (id: string, at: string, latencyMs: number, generationTimeMs: number, completion: number): GenerationEvent => ({
    type: 'GenerationCompleted',
    data: {
      generationId: id,
      accountId: 'a',
      keyId: null,
      endpointId: 'm/x@p',
      providerSlug: 'p',
      providerName: 'P',
      model: 'm/x',
      usage: { prompt: 1, completion, reasoning: 0, cached: 0, cacheWrite: 0 },
      usageSource: 'provider',
      cost: 0,
      streamed: true,
      latencyMs,
      generationTimeMs,
      at,
      upstreamId: null,
      finishReason: 'stop',
      nativeFinishReason: 'stop',
    },
  });
  const failed = (id: string, at: string): GenerationEvent => ({
    type: 'AttemptFailed',
    data: { generationId: id, attempt: 1, endpointId: 'm/x@p', providerSlug: 'p', model: 'm/x', errorCode: 'server_error', status: 500, retryable: true, countsAgainstUptime: true, afterFirstToken: false, latencyMs: 5, message: 'x', at },
  });

  it('keeps uptime per window and latency / throughput percentiles', () => {
    const t0 = Date.parse('2026-01-01T12:00:00.000Z');
    const iso = (ms: number) => new Date(t0 + ms).toISOString();
    let doc: ProviderStatsDoc | null = null;
    const events = [
      completed('g1', iso(0), 100, 1100, 101), // 100 tokens in 1 s after the first
      completed('g2', iso(1_000), 300, 800, 51), // 50 tokens in 0.5 s
      failed('g3', iso(2_000)),
      failed('g4', iso(-2 * 3600_000)), // two hours ago: only in the 1-day window
    ];
    events.forEach((e, i) => (doc = providerStatsProjection.evolve(doc, ev(e, i + 1)) as ProviderStatsDoc));
    const summary = summarizeStats(doc, t0 + 3_000);
    expect(summary.uptime5m).toBeCloseTo(66.67, 2);
    expect(summary.uptime1d).toBe(50);
    expect(summary.errorRate30m).toBeCloseTo(0.3333, 4);
    expect(summary.latency30m).toEqual({ p50: 100, p75: 300, p90: 300, p99: 300 });
    expect(summary.throughput30m!.p50).toBe(100);
    expect(summarizeStats(doc, t0 + 3 * 3600_000).latency30m).toBeNull();
    // The 5-minute percentiles (routing's performance thresholds) hold only the last 5 minutes' samples.
    expect(summary.latency5m).toEqual(summary.latency30m);
    const later = summarizeStats(doc, t0 + 5 * 60_000 + 500);
    expect(later.latency30m).toEqual({ p50: 100, p75: 300, p90: 300, p99: 300 });
    expect(later.latency5m).toEqual({ p50: 300, p75: 300, p90: 300, p99: 300 });
    expect(later.throughput5m!.p50).toBe(100);
    expect(summarizeStats(doc, t0 + 6 * 60_000).latency5m).toBeNull();
  });

  it('ignores attempts that failed because of the request, not the endpoint', () => {
    const requestError: GenerationEvent = { ...failed('g5', at), data: { ...(failed('g5', at).data as object), countsAgainstUptime: false } } as GenerationEvent;
    expect(providerStatsProjection.documentId(ev(requestError, 1))).toBeNull();
  });

  it('counts an answer its provider ended with an error by its failed attempt alone, not as a success too', () => {
    const at0 = '2026-01-01T12:00:00.000Z';
    const broken = completed('g6', at0, 100, 1100, 101);
    const withError = { ...broken, data: { ...broken.data, finishReason: 'error', error: { errorType: 'provider_unavailable', status: 502, message: 'x' } } } as GenerationEvent;
    expect(providerStatsProjection.documentId(ev(withError, 2))).toBeNull();
    expect(providerStatsProjection.evolve(null, ev(withError, 2))).toBeNull();
    const doc = providerStatsProjection.evolve(null, ev(failed('g6', at0), 1)) as ProviderStatsDoc;
    expect(summarizeStats(doc, Date.parse(at0) + 1_000)).toMatchObject({ uptime5m: 0, errorRate30m: 1, requests30m: 1 });
  });
});

/**
 * Model namespaces (issue 10, item 4, closing name squatting): who may create which model, and the proposal that
 * carries a model outside the caller's namespace until an admin approves it. Given events, when a command, then
 * events (or an error).
 */
import { describe, expect, it } from 'vitest';
import { endpointProposalsProjection, type EndpointProposalDoc } from '../../projections/catalog.js';
import { ForbiddenError, ValidationError } from '../../src/errors.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { mayCreateModel, modelDecider, type PublishingProvider } from '../../src/modules/catalog/model.decider.js';
import type { ModelSpec } from '../../src/modules/catalog/model.events.js';
import { providerDecider } from '../../src/modules/catalog/provider.decider.js';
import type { EndpointProposed, EndpointSpec, ProviderRegistered } from '../../src/modules/catalog/provider.events.js';
import { prices } from '../support/catalogFixture.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const at = '2026-01-01T00:00:00.000Z';
const acmeOwner = { accountId: 'acc_acme', admin: false };
const bob = { accountId: 'acc_bob', admin: false };
/** An admin that is not the root account: what it creates is still the root account's. */
const ops = { accountId: 'acc_ops', admin: true };
const acme: PublishingProvider = { slug: 'acme', ownerAccountId: 'acc_acme' };

const modelSpec = (modelId: string): ModelSpec => ({ modelId, name: modelId, description: '', contextLength: 8000, inputModalities: ['text'], outputModalities: ['text'], tokenizer: 'Other' });
const publishModel = (modelId: string, actor: typeof bob, provider: PublishingProvider | null) => ({ type: 'PublishModel' as const, data: { ...modelSpec(modelId), at, actor, provider } });

describe('model decider: a provider creates models only in its own namespace', () => {
  const given = deciderSpec(modelDecider);

  it('creates acme/foo for the owner of provider acme, owned by it', () => {
    given([]).when(publishModel('acme/foo', acmeOwner, acme)).then([{ type: 'ModelPublished', data: { ...modelSpec('acme/foo'), at, ownerAccountId: 'acc_acme', decidedBy: acmeOwner } }]);
  });

  it('refuses a well-known name outside the namespace, saying which namespace is allowed and how to get it listed', () => {
    for (const id of ['openai/gpt-9', 'anthropic/claude-next', 'acme-labs/foo', 'acm/foo']) {
      given([]).when(publishModel(id, acmeOwner, acme)).thenThrows(ForbiddenError, /only in its own namespace \(acme\/…\).*ask an admin to publish the model and open it/);
    }
  });

  it('refuses a maker’s reserved namespace even on a provider of that slug the caller owns (registered before it was reserved): a proposal instead', () => {
    const squatted: PublishingProvider = { slug: 'mistralai', ownerAccountId: 'acc_acme' };
    expect(mayCreateModel('mistralai/mistral-large', acmeOwner, squatted)).toBe(false);
    given([]).when(publishModel('mistralai/mistral-large', acmeOwner, squatted)).thenThrows(ForbiddenError, /mistralai\/…, a model maker's reserved namespace/);
    expect(mayCreateModel('mistralai/mistral-large', ops, squatted)).toBe(true);
  });

  it("refuses acme/foo through a provider acme the caller does not own, or through no provider", () => {
    given([]).when(publishModel('acme/foo', bob, acme)).thenThrows(ForbiddenError);
    given([]).when(publishModel('acme/foo', acmeOwner, null)).thenThrows(ForbiddenError);
  });

  it('lets an admin create any model, owned by the root account, recording which admin decided', () => {
    given([]).when(publishModel('openai/gpt-9', ops, null)).then([{ type: 'ModelPublished', data: { ...modelSpec('openai/gpt-9'), at, ownerAccountId: 'acc_root', decidedBy: ops } }]);
    expect(foldEvents(modelDecider, [{ type: 'ModelPublished', data: { ...modelSpec('openai/gpt-9'), at, ownerAccountId: 'acc_root', decidedBy: ops } }])).toMatchObject({ ownerAccountId: 'acc_root', openToProviders: false });
  });
});

describe('provider decider: a new model outside the namespace is a proposal carrying it', () => {
  const given = deciderSpec(providerDecider);
  const registered: ProviderRegistered = {
    type: 'ProviderRegistered',
    data: { slug: 'acme', name: 'Acme', protocol: 'openai', baseUrl: 'https://api.acme.test/v1', credential: null, headers: {}, ownerAccountId: 'acc_acme', at },
  };
  const spec: EndpointSpec = { model: 'openai/gpt-9', upstreamModel: 'x', prices: prices(), contextLength: 8000, maxOutput: 1000, quantization: null, supportedParameters: [], variants: [] };
  const publish = (newModel: ModelSpec, actor = acmeOwner) => ({ type: 'PublishEndpoint' as const, data: { providerSlug: 'acme', actor, spec, model: null, newModel, at } });
  const proposed: EndpointProposed = {
    type: 'EndpointProposed',
    data: { ...spec, providerSlug: 'acme', modelOwnerAccountId: 'acc_root', newModel: modelSpec('openai/gpt-9'), proposedBy: acmeOwner, baseUrl: 'https://api.acme.test/v1', cancellable: true, version: 1, at },
  };

  it('files a proposal naming the root account as the future owner and carrying the model', () => {
    given([registered]).when(publish(modelSpec('openai/gpt-9'))).then([proposed]);
  });

  it('ignores the same proposal twice, and files it again when the model described changes', () => {
    given([registered, proposed]).when(publish(modelSpec('openai/gpt-9'))).then([]);
    const renamed = { ...modelSpec('openai/gpt-9'), name: 'GPT-9' };
    given([registered, proposed]).when(publish(renamed)).then([{ type: 'EndpointProposed', data: { ...proposed.data, newModel: renamed, version: 2 } }]);
  });

  it('refuses a carried model that is not the endpoint’s', () => {
    given([registered]).when(publish(modelSpec('acme/other'))).thenThrows(ValidationError, /newModel describes acme\/other/);
  });

  it('keeps the carried model in the proposal until an admin decides, and publishes on approval', () => {
    const state = foldEvents(providerDecider, [registered, proposed]);
    expect(state.status === 'registered' && state.endpoints.get('openai/gpt-9')).toMatchObject({ status: 'proposed', spec, newModel: modelSpec('openai/gpt-9'), filing: { version: 1 } });
    given([registered, proposed]).when({ type: 'ApproveEndpoint', data: { providerSlug: 'acme', actor: ops, model: 'openai/gpt-9', at } }).then([
      { type: 'EndpointApproved', data: { providerSlug: 'acme', model: 'openai/gpt-9', at, decidedBy: ops } },
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'acme', at, status: 'active', decidedBy: ops } },
    ]);
  });

  it('shows the carried model in the proposal read model', () => {
    const recorded = { ...proposed, id: 'e2', stream: 'provider-acme', revision: 1, position: 2, metadata: {}, recordedAt: at } as unknown as RecordedEvent;
    const doc = endpointProposalsProjection.evolve(null, recorded) as EndpointProposalDoc;
    expect(doc).toMatchObject({ _id: 'openai/gpt-9@acme', status: 'pending', modelOwnerAccountId: 'acc_root', newModel: modelSpec('openai/gpt-9') });
  });
});

describe("provider decider: a provider's slug is its namespace", () => {
  const given = deciderSpec(providerDecider);
  const data = (ownerAccountId: string, trusted: boolean, slug = 'acmecloud', name = 'Acme Cloud'): ProviderRegistered['data'] => ({
    slug, name, protocol: 'openai', baseUrl: 'https://g.test/v1', credential: null, headers: {}, ownerAccountId, trusted, at,
  });
  const register = (ownerAccountId: string, trusted: boolean, modelNamespaceOwners?: readonly string[]) => ({
    type: 'RegisterProvider' as const,
    data: { ...data(ownerAccountId, trusted), ...(modelNamespaceOwners && { modelNamespaceOwners }) },
  });
  const registered = (ownerAccountId: string, trusted: boolean): ProviderRegistered => ({ type: 'ProviderRegistered', data: data(ownerAccountId, trusted) });

  it("refuses a non-admin a slug whose namespace holds another account's models", () => {
    given([]).when(register('acc_bob', false, ['acc_root'])).thenThrows(ForbiddenError, /Slug acmecloud is the namespace of models in the catalog \(acmecloud\/…\) that belong to another account/);
  });

  it('lets a non-admin take a free namespace or one holding only its own models, and an admin any', () => {
    given([]).when(register('acc_bob', false)).then([registered('acc_bob', false)]);
    given([]).when(register('acc_bob', false, ['acc_bob'])).then([registered('acc_bob', false)]);
    given([]).when(register('acc_ops', true, ['acc_root'])).then([registered('acc_ops', true)]);
  });

  it('refuses a non-admin a model maker’s reserved namespace even while no model of it is listed, by slug or by name; an admin takes it', () => {
    const registerAs = (ownerAccountId: string, trusted: boolean, slug: string, name: string) => ({ type: 'RegisterProvider' as const, data: data(ownerAccountId, trusted, slug, name) });
    given([]).when(registerAs('acc_bob', false, 'google', 'Bob cloud')).thenThrows(ForbiddenError, /^Slug google is reserved for google, a model maker's namespace \(google\/…\)/);
    given([]).when(registerAs('acc_bob', false, 'mistral-ai', 'Bob cloud')).thenThrows(ForbiddenError, /^Slug mistral-ai is reserved for mistralai/);
    given([]).when(registerAs('acc_bob', false, 'bob-cloud', 'Google')).thenThrows(ForbiddenError, /^Name Google is reserved for google/);
    given([]).when(registerAs('acc_ops', true, 'google', 'Google')).then([{ type: 'ProviderRegistered', data: data('acc_ops', true, 'google', 'Google') }]);
  });
});

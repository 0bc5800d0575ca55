/**
 * Models have owners (issue 10, item 4): who may publish an endpoint for which model, proposals and their approval,
 * and who may lift a disabling. Decider tests: given events, when a command, then events (or an error).
 */
import { describe, expect, it } from 'vitest';
import { endpointProposalsProjection, modelsProjection, type EndpointProposalDoc, type ModelDoc } from '../../projections/catalog.js';
import type { Projection } from '../../projections/projection.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../src/errors.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { foldEvents } from '../../src/eventStore/handleCommand.js';
import { modelDecider } from '../../src/modules/catalog/model.decider.js';
import type { ModelPublished } from '../../src/modules/catalog/model.events.js';
import { providerDecider, WITHDRAWN, type ModelAccess } from '../../src/modules/catalog/provider.decider.js';
import type { EndpointSpec, ProviderEvent, ProviderRegistered } from '../../src/modules/catalog/provider.events.js';
import type { Doc } from '../../src/readStore/readStore.js';
import { prices } from '../support/catalogFixture.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const at = '2026-01-01T00:00:00.000Z';
const alice = { accountId: 'acc_alice', admin: false };
const bob = { accountId: 'acc_bob', admin: false };
const admin = { accountId: 'acc_root', admin: true };

const recorded = (event: ProviderEvent | ModelPublished, position: number): RecordedEvent =>
  ({ ...event, id: `e${position}`, stream: 'x', revision: 0, position, metadata: {}, recordedAt: at }) as unknown as RecordedEvent;
/** The document `id` of a read model after these events. */
const fold = <D>(projection: Projection, events: (ProviderEvent | ModelPublished)[], id: string): D | null =>
  events.map(recorded).reduce<Doc | null>((doc, event) => (projection.documentId(event) === id ? projection.evolve(doc, event) : doc), null) as D | null;

describe('model decider: owners and openness', () => {
  const given = deciderSpec(modelDecider);
  const spec = { modelId: 'alice/one', name: 'One', description: '', contextLength: 8000, inputModalities: ['text' as const], outputModalities: ['text' as const], tokenizer: 'Other' };
  const created: ModelPublished = { type: 'ModelPublished', data: { ...spec, at, ownerAccountId: 'acc_alice', decidedBy: alice } };
  const onAlice = { slug: 'alice', ownerAccountId: 'acc_alice' };

  it('makes the first publisher the owner', () => {
    given([]).when({ type: 'PublishModel', data: { ...spec, at, actor: alice, provider: onAlice } }).then([created]);
  });

  it("changes nothing when another account publishes an existing model, and keeps the owner on the owner's update", () => {
    given([created]).when({ type: 'PublishModel', data: { ...spec, name: 'Mine now', at, actor: bob, provider: null } }).then([]);
    given([created]).when({ type: 'PublishModel', data: { ...spec, name: 'Renamed', at, actor: admin, provider: null } }).then([
      { type: 'ModelPublished', data: { ...spec, name: 'Renamed', at, ownerAccountId: 'acc_alice', decidedBy: admin } },
    ]);
    const state = foldEvents(modelDecider, [created, { type: 'ModelPublished', data: { ...spec, at, ownerAccountId: 'acc_bob' } }]);
    expect(state).toMatchObject({ status: 'published', ownerAccountId: 'acc_alice' });
  });

  it('loads a model published before owners were recorded as the root admin’s, closed', () => {
    const legacy = { type: 'ModelPublished' as const, data: { ...spec, at } };
    expect(foldEvents(modelDecider, [legacy])).toMatchObject({ ownerAccountId: 'acc_root', openToProviders: false });
    given([legacy]).when({ type: 'SetModelOpenToProviders', data: { modelId: 'alice/one', open: true, actor: alice, at } }).thenThrows(ForbiddenError);
  });

  it('lets its owner or an admin open and close it, recording who decided', () => {
    given([created]).when({ type: 'SetModelOpenToProviders', data: { modelId: 'alice/one', open: true, actor: alice, at } }).then([
      { type: 'ModelOpenToProvidersSet', data: { modelId: 'alice/one', open: true, at, decidedBy: alice } },
    ]);
    given([created]).when({ type: 'SetModelOpenToProviders', data: { modelId: 'alice/one', open: true, actor: admin, at } }).then([
      { type: 'ModelOpenToProvidersSet', data: { modelId: 'alice/one', open: true, at, decidedBy: admin } },
    ]);
    given([created]).when({ type: 'SetModelOpenToProviders', data: { modelId: 'alice/one', open: false, actor: alice, at } }).then([]);
    given([created]).when({ type: 'SetModelOpenToProviders', data: { modelId: 'alice/one', open: true, actor: bob, at } }).thenThrows(ForbiddenError, /owner or an admin/);
    given([]).when({ type: 'SetModelOpenToProviders', data: { modelId: 'alice/one', open: true, actor: alice, at } }).thenThrows(NotFoundError);
  });
});

/** Bob's provider, and the endpoint it publishes on the root account's closed model (the decider tests below but the last two). */
const registered: ProviderRegistered = {
  type: 'ProviderRegistered',
  data: { slug: 'bob-ai', name: 'Bob', protocol: 'openai', baseUrl: 'https://api.bob.test/v1', credential: null, headers: {}, ownerAccountId: 'acc_bob', at },
};
const spec: EndpointSpec = { model: 'switchyard/demo-paid', upstreamModel: 'x', prices: prices(), contextLength: 8000, maxOutput: 1000, quantization: null, supportedParameters: [], variants: [] };

describe('provider decider: publishing on models of others', () => {
  const given = deciderSpec(providerDecider);
  const seeded: ModelAccess = { ownerAccountId: 'acc_root', openToProviders: false };
  const opened: ModelAccess = { ownerAccountId: 'acc_root', openToProviders: true };
  const publish = (actor: typeof bob, model: ModelAccess | null, s: EndpointSpec = spec) => ({ type: 'PublishEndpoint' as const, data: { providerSlug: 'bob-ai', actor, spec: s, model, at } });
  const filed = { baseUrl: 'https://api.bob.test/v1', cancellable: true };
  const proposed: ProviderEvent = { type: 'EndpointProposed', data: { ...spec, providerSlug: 'bob-ai', modelOwnerAccountId: 'acc_root', proposedBy: bob, ...filed, version: 1, at } };
  const published = (by: typeof bob, status: 'active' | 'disabled' = 'active'): ProviderEvent => ({ type: 'EndpointPublished', data: { ...spec, providerSlug: 'bob-ai', at, status, decidedBy: by } });
  const command = <T extends 'EnableEndpoint' | 'ApproveEndpoint'>(type: T, actor: typeof bob) => ({ type, data: { providerSlug: 'bob-ai', actor, model: spec.model, at } });

  it("files a proposal, and publishes nothing, for another account's closed model", () => {
    given([registered]).when(publish(bob, seeded)).then([proposed]);
  });

  it('files a proposal when the model is not known, unless an admin publishes', () => {
    given([registered]).when(publish(bob, null)).then([{ type: 'EndpointProposed', data: { ...spec, providerSlug: 'bob-ai', modelOwnerAccountId: 'acc_root', proposedBy: bob, ...filed, version: 1, at } }]);
    given([registered]).when(publish(admin, null)).then([published(admin)]);
  });

  it('publishes directly on a model the provider owns, on an opened model, and for an admin', () => {
    given([registered]).when(publish(bob, { ownerAccountId: 'acc_bob', openToProviders: false })).then([published(bob)]);
    given([registered]).when(publish(bob, opened)).then([published(bob)]);
    given([registered]).when(publish(admin, seeded)).then([published(admin)]);
  });

  it('ignores the same proposal twice, and files a changed one again', () => {
    given([registered, proposed]).when(publish(bob, seeded)).then([]);
    const cheaper = { ...spec, prices: prices({ prompt: 1 }) };
    given([registered, proposed]).when(publish(bob, seeded, cheaper)).then([{ type: 'EndpointProposed', data: { ...cheaper, providerSlug: 'bob-ai', modelOwnerAccountId: 'acc_root', proposedBy: bob, ...filed, version: 2, at } }]);
  });

  it('publishes a proposal when an admin approves it, and only then', () => {
    given([registered, proposed]).when(command('ApproveEndpoint', admin)).then([
      { type: 'EndpointApproved', data: { providerSlug: 'bob-ai', model: spec.model, at, decidedBy: admin } },
      published(admin),
    ]);
    given([registered, proposed]).when(command('ApproveEndpoint', bob)).thenThrows(ForbiddenError, /admin/);
    given([registered]).when(command('ApproveEndpoint', admin)).thenThrows(NotFoundError);
    given([registered, proposed, published(admin)]).when(command('ApproveEndpoint', admin)).thenThrows(NotFoundError);
  });

  it('records a rejection with its reason; the provider may propose again', () => {
    const reject = (actor: typeof bob, reason: string) => ({ type: 'RejectEndpoint' as const, data: { providerSlug: 'bob-ai', actor, model: spec.model, reason, at } });
    const rejected: ProviderEvent = { type: 'EndpointRejected', data: { providerSlug: 'bob-ai', model: spec.model, reason: 'not yours', at, decidedBy: admin } };
    given([registered, proposed]).when(reject(admin, 'not yours')).then([rejected]);
    given([registered, proposed]).when(reject(bob, 'not yours')).thenThrows(ForbiddenError);
    given([registered, proposed]).when(reject(admin, ' ')).thenThrows(ValidationError, /reason/);
    given([registered, proposed, rejected]).when(command('ApproveEndpoint', admin)).thenThrows(ConflictError, /rejected/);
    // Filed again after its rejection: a new version, never one an admin may have reviewed before.
    given([registered, proposed, rejected]).when(publish(bob, seeded)).then([{ ...proposed, data: { ...proposed.data, version: 2 } }] as ProviderEvent[]);
  });

  it('does not let a proposal be repriced, disabled or enabled', () => {
    given([registered, proposed]).when({ type: 'ChangeEndpointPrice', data: { providerSlug: 'bob-ai', access: seeded, actor: bob, model: spec.model, prices: prices({ prompt: 1 }), at } }).thenThrows(NotFoundError);
    given([registered, proposed]).when({ type: 'DisableEndpoint', data: { providerSlug: 'bob-ai', actor: bob, model: spec.model, reason: 'r', at } }).thenThrows(NotFoundError);
    given([registered, proposed]).when(command('EnableEndpoint', bob)).thenThrows(NotFoundError);
  });

});

describe('provider decider: a change to an endpoint an admin admitted is reviewed too', () => {
  const given = deciderSpec(providerDecider);
  const seeded: ModelAccess = { ownerAccountId: 'acc_root', openToProviders: false };
  const opened: ModelAccess = { ownerAccountId: 'acc_root', openToProviders: true };
  const settings = { baseUrl: 'https://api.bob.test/v1', cancellable: true };
  const filing = (version: number, changed: Partial<EndpointSpec> = {}, amends = false): ProviderEvent => ({
    type: 'EndpointProposed',
    data: { ...spec, ...changed, providerSlug: 'bob-ai', modelOwnerAccountId: 'acc_root', ...(amends && { amends: true as const }), proposedBy: bob, ...settings, version, at },
  });
  const publishedAs = (s: EndpointSpec, by: typeof bob, status: 'active' | 'disabled' = 'active'): ProviderEvent => ({ type: 'EndpointPublished', data: { ...s, providerSlug: 'bob-ai', at, status, decidedBy: by } });
  const approved = (s: EndpointSpec = spec, status: 'active' | 'disabled' = 'active'): ProviderEvent[] => [
    { type: 'EndpointApproved', data: { providerSlug: 'bob-ai', model: spec.model, at, decidedBy: admin } },
    publishedAs(s, admin, status),
  ];
  const admitted = [registered, filing(1), ...approved()];
  const publish = (actor: typeof bob, model: ModelAccess | null, s: EndpointSpec) => ({ type: 'PublishEndpoint' as const, data: { providerSlug: 'bob-ai', actor, spec: s, model, at } });
  const approve = (expectedVersion?: number) => ({ type: 'ApproveEndpoint' as const, data: { providerSlug: 'bob-ai', actor: admin, model: spec.model, ...(expectedVersion !== undefined && { expectedVersion }), at } });
  const elsewhere = { ...spec, upstreamModel: 'cheaper-model' };

  it("files a republish with any change as an amendment, versioned on from the proposal's, and leaves the endpoint as approved", () => {
    given(admitted).when(publish(bob, seeded, spec)).then([]);
    given(admitted).when(publish(bob, seeded, elsewhere)).then([filing(2, { upstreamModel: 'cheaper-model' }, true)]);
    // Published again as approved, the endpoint withdraws the change filed (recorded as the provider's rejection).
    const withdrawn: ProviderEvent = { type: 'EndpointRejected', data: { providerSlug: 'bob-ai', model: spec.model, reason: WITHDRAWN, at, decidedBy: bob } };
    given([...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true)]).when(publish(bob, seeded, spec)).then([withdrawn]);
    given([...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true), withdrawn]).when(approve()).thenThrows(ConflictError, /rejected/);
    given([...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true), withdrawn]).when(publish(bob, seeded, spec)).then([]);
    given([...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true)]).when(publish(bob, seeded, elsewhere)).then([]);
    const state = foldEvents(providerDecider, [...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true)]);
    expect(state.status === 'registered' && state.endpoints.get(spec.model)).toMatchObject({ status: 'active', spec: { upstreamModel: 'x' }, amendment: { status: 'proposed', filing: { version: 2 } } });
    // An endpoint admitted when its model was open, closed since: the same.
    given([registered, publishedAs(spec, bob)]).when(publish(bob, seeded, elsewhere)).then([filing(1, { upstreamModel: 'cheaper-model' }, true)]);
  });

  it('publishes an amendment when an admin approves that version, keeping the endpoint’s status; an older version is refused', () => {
    const amended = [...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true)];
    given(amended).when(approve(2)).then(approved(elsewhere));
    given(amended).when(approve(1)).thenThrows(ConflictError, /has no version 1: it is at version 2/);
    given(amended).when({ ...approve(2), data: { ...approve(2).data, actor: bob } }).thenThrows(ForbiddenError);
    const disabled: ProviderEvent = { type: 'EndpointDisabled', data: { providerSlug: 'bob-ai', model: spec.model, reason: 'paused', at, decidedBy: bob } };
    given([...admitted, disabled, filing(2, { upstreamModel: 'cheaper-model' }, true)]).when(approve(2)).then(approved(elsewhere, 'disabled'));
    // Settled by its approval: the next change is version 3.
    given([...amended, ...approved(elsewhere)]).when(approve()).thenThrows(NotFoundError);
    given([...amended, ...approved(elsewhere)]).when(publish(bob, seeded, spec)).then([filing(3, {}, true)]);
  });

  it('keeps the endpoint as approved when an amendment is rejected; publishing again files the next version', () => {
    const rejected: ProviderEvent = { type: 'EndpointRejected', data: { providerSlug: 'bob-ai', model: spec.model, reason: 'not that model', at, decidedBy: admin } };
    const after = [...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true), rejected];
    given([...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true)]).when({ type: 'RejectEndpoint', data: { providerSlug: 'bob-ai', actor: admin, model: spec.model, reason: 'not that model', at } }).then([rejected]);
    expect(foldEvents(providerDecider, after)).toMatchObject({ endpoints: new Map([[spec.model, expect.objectContaining({ status: 'active', spec: expect.objectContaining({ upstreamModel: 'x' }) })]]) });
    given(after).when(approve()).thenThrows(ConflictError, /rejected/);
    given(after).when(publish(bob, seeded, elsewhere)).then([filing(3, { upstreamModel: 'cheaper-model' }, true)]);
  });

  it('publishes a change directly once the provider may (the model opened, or an admin), settling a pending amendment', () => {
    const amended = [...admitted, filing(2, { upstreamModel: 'cheaper-model' }, true)];
    given(amended).when(publish(bob, opened, elsewhere)).then([publishedAs(elsewhere, bob)]);
    given(amended).when(publish(admin, seeded, elsewhere)).then([publishedAs(elsewhere, admin)]);
    given([...amended, publishedAs(elsewhere, bob)]).when(approve()).thenThrows(NotFoundError);
  });

  it("takes a price cut at once and refuses a raise (every component) unless the provider may publish on the model", () => {
    const reprice = (actor: typeof bob, access: ModelAccess | null, p: EndpointSpec['prices']) => ({
      type: 'ChangeEndpointPrice' as const,
      data: { providerSlug: 'bob-ai', actor, model: spec.model, prices: p, access, at },
    });
    const changed = (by: typeof bob, p: EndpointSpec['prices']): ProviderEvent => ({ type: 'EndpointPriceChanged', data: { providerSlug: 'bob-ai', model: spec.model, prices: p, at, decidedBy: by } });
    const cut = { ...spec.prices, prompt: spec.prices.prompt - 1 };
    const raised = { ...cut, request: spec.prices.request + 1 };
    given(admitted).when(reprice(bob, seeded, cut)).then([changed(bob, cut)]);
    given(admitted).when(reprice(bob, seeded, raised)).thenThrows(ForbiddenError, /a raise \(request\) is reviewed too.*Publish the endpoint again/);
    given(admitted).when(reprice(bob, null, raised)).thenThrows(ForbiddenError);
    given(admitted).when(reprice(bob, opened, raised)).then([changed(bob, raised)]);
    given(admitted).when(reprice(admin, seeded, raised)).then([changed(admin, raised)]);
    // A price an event written before it existed did not record counts as 0: setting it is a raise.
    const legacy: ProviderEvent = { type: 'EndpointPublished', data: { ...spec, prices: { prompt: 1, completion: 1 } as EndpointSpec['prices'], providerSlug: 'bob-ai', at } };
    given([registered, legacy]).when(reprice(bob, seeded, { prompt: 1, completion: 1, request: 1, reasoning: 0, cacheRead: 0, cacheWrite: 0 })).thenThrows(ForbiddenError, /a raise \(request\)/);
    // After a cut, going back up is a raise.
    given([...admitted, changed(bob, cut)]).when(reprice(bob, seeded, spec.prices)).thenThrows(ForbiddenError, /a raise \(prompt/);
  });

  it("refuses the provider's owner a move of its base URL, or billing aborted calls, while it serves a closed model of another account", () => {
    const move = (actor: typeof bob, freeModels: readonly string[]) => ({ type: 'ChangeBaseUrl' as const, data: { providerSlug: 'bob-ai', actor, baseUrl: 'https://elsewhere.test/v1', freeModels, at } });
    const movedBy = (by: typeof bob): ProviderEvent => ({ type: 'ProviderBaseUrlChanged', data: { providerSlug: 'bob-ai', baseUrl: 'https://elsewhere.test/v1', at, decidedBy: by } });
    given(admitted).when(move(bob, [])).thenThrows(ForbiddenError, /closed to providers \(switchyard\/demo-paid\).*only an admin moves its base URL/);
    given(admitted).when(move(bob, ['other/model'])).thenThrows(ForbiddenError);
    given(admitted).when(move(bob, [spec.model])).then([movedBy(bob)]);
    given(admitted).when(move(admin, [])).then([movedBy(admin)]);
    // Disabled by its provider, it could be enabled again at the new address: it holds the move too.
    const disabled: ProviderEvent = { type: 'EndpointDisabled', data: { providerSlug: 'bob-ai', model: spec.model, reason: 'paused', at, decidedBy: bob } };
    given([...admitted, disabled]).when(move(bob, [])).thenThrows(ForbiddenError);
    const cancellation = (cancellable: boolean) => ({ type: 'SetCancellation' as const, data: { providerSlug: 'bob-ai', actor: bob, cancellable, freeModels: [], at } });
    given(admitted).when(cancellation(false)).thenThrows(ForbiddenError, /cancellable false/);
    const notCancellable: ProviderEvent = { type: 'ProviderCancellationSet', data: { providerSlug: 'bob-ai', cancellable: false, at, decidedBy: admin } };
    given([...admitted, notCancellable]).when(cancellation(true)).then([{ type: 'ProviderCancellationSet', data: { providerSlug: 'bob-ai', cancellable: true, at, decidedBy: bob } }]);
  });
});

describe('provider decider: an approval is of the version reviewed', () => {
  const given = deciderSpec(providerDecider);
  const filing = (version: number, changed: Partial<EndpointSpec> = {}, settings = { baseUrl: 'https://api.bob.test/v1', cancellable: true }): ProviderEvent => ({
    type: 'EndpointProposed',
    data: { ...spec, ...changed, providerSlug: 'bob-ai', modelOwnerAccountId: 'acc_root', proposedBy: bob, ...settings, version, at },
  });
  const approve = (expectedVersion?: number) => ({
    type: 'ApproveEndpoint' as const,
    data: { providerSlug: 'bob-ai', actor: admin, model: spec.model, ...(expectedVersion !== undefined && { expectedVersion }), at },
  });
  const approved = (s: EndpointSpec = spec): ProviderEvent[] => [
    { type: 'EndpointApproved', data: { providerSlug: 'bob-ai', model: spec.model, at, decidedBy: admin } },
    { type: 'EndpointPublished', data: { ...s, providerSlug: 'bob-ai', at, status: 'active', decidedBy: admin } },
  ];

  it('approves the current version, and without one the proposal as it is', () => {
    given([registered, filing(1)]).when(approve(1)).then(approved());
    given([registered, filing(1), filing(2, { upstreamModel: 'y' })]).when(approve()).then(approved({ ...spec, upstreamModel: 'y' }));
  });

  it('refuses an earlier version, naming what changed since, and a version it never had', () => {
    given([registered, filing(1), filing(2, { upstreamModel: 'y', maxOutput: 2000 })]).when(approve(1)).thenThrows(ConflictError, /changed since version 1 was reviewed \(upstreamModel is now "y" \(was "x"\), maxOutput is now 2000 \(was 1000\)\): it is at version 2/);
    given([registered, filing(1)]).when(approve(3)).thenThrows(ConflictError, /has no version 3: it is at version 1/);
    given([registered, filing(1), filing(2, { upstreamModel: 'y' }), filing(3)]).when(approve(1)).thenThrows(ConflictError, /changed and changed back\): it is at version 3/);
  });

  it("files pending proposals again when their provider moves its base URL or cancellation, with a new version", () => {
    const moved = 'https://elsewhere.test/v1';
    given([registered, filing(1)])
      .when({ type: 'ChangeBaseUrl', data: { providerSlug: 'bob-ai', freeModels: [], actor: bob, baseUrl: moved, at } })
      .then([{ type: 'ProviderBaseUrlChanged', data: { providerSlug: 'bob-ai', baseUrl: moved, at, decidedBy: bob } }, filing(2, {}, { baseUrl: moved, cancellable: true })]);
    given([registered, filing(1)])
      .when({ type: 'SetCancellation', data: { providerSlug: 'bob-ai', freeModels: [], actor: bob, cancellable: false, at } })
      .then([{ type: 'ProviderCancellationSet', data: { providerSlug: 'bob-ai', cancellable: false, at, decidedBy: bob } }, filing(2, {}, { baseUrl: 'https://api.bob.test/v1', cancellable: false })]);
    const movedUrl: ProviderEvent = { type: 'ProviderBaseUrlChanged', data: { providerSlug: 'bob-ai', baseUrl: moved, at, decidedBy: bob } };
    given([registered, filing(1), movedUrl, filing(2, {}, { baseUrl: moved, cancellable: true })]).when(approve(1)).thenThrows(ConflictError, /baseUrl is now "https:\/\/elsewhere.test\/v1"/);
    // Nothing pending, nothing filed: an approved endpoint is not a proposal (and its model, opened since, is the provider's to move).
    given([registered, filing(1), ...approved()]).when({ type: 'ChangeBaseUrl', data: { providerSlug: 'bob-ai', freeModels: [spec.model], actor: bob, baseUrl: moved, at } }).then([movedUrl]);
  });

  it('counts the filings of events written before versions, under the provider settings of their time, as the read model does', () => {
    const legacy = (upstreamModel: string): ProviderEvent => ({ type: 'EndpointProposed', data: { ...spec, upstreamModel, providerSlug: 'bob-ai', modelOwnerAccountId: 'acc_root', proposedBy: bob, at } });
    const events = [registered, legacy('x'), legacy('y')];
    const state = foldEvents(providerDecider, events);
    expect(state.status === 'registered' && state.endpoints.get(spec.model)).toMatchObject({ filing: { version: 2, content: { baseUrl: 'https://api.bob.test/v1', cancellable: true } } });
    expect(fold<EndpointProposalDoc>(endpointProposalsProjection, events, `${spec.model}@bob-ai`)).toMatchObject({ version: 2, baseUrl: null, cancellable: null });
    given(events).when(approve(1)).thenThrows(ConflictError, /upstreamModel is now "y"/);
    expect(fold<EndpointProposalDoc>(endpointProposalsProjection, [registered, filing(1), filing(4, { upstreamModel: 'y' })], `${spec.model}@bob-ai`)).toMatchObject({ version: 4, baseUrl: 'https://api.bob.test/v1', cancellable: true, upstreamModel: 'y' });
  });
});

describe('provider decider: who lifts a disabling', () => {
  const given = deciderSpec(providerDecider);
  const registered: ProviderRegistered = {
    type: 'ProviderRegistered',
    data: { slug: 'bob-ai', name: 'Bob', protocol: 'openai', baseUrl: 'https://api.bob.test/v1', credential: null, headers: {}, ownerAccountId: 'acc_bob', at },
  };
  const spec: EndpointSpec = { model: 'bob/one', upstreamModel: 'x', prices: prices(), contextLength: 8000, maxOutput: 1000, quantization: null, supportedParameters: [], variants: [] };
  const own: ModelAccess = { ownerAccountId: 'acc_bob', openToProviders: false };
  const published: ProviderEvent = { type: 'EndpointPublished', data: { ...spec, providerSlug: 'bob-ai', at, status: 'active', decidedBy: bob } };
  const disabledBy = (by: typeof bob): ProviderEvent => ({ type: 'EndpointDisabled', data: { providerSlug: 'bob-ai', model: 'bob/one', reason: 'r', at, decidedBy: by } });
  const enable = (actor: typeof bob) => ({ type: 'EnableEndpoint' as const, data: { providerSlug: 'bob-ai', actor, model: 'bob/one', at } });
  const enabled = (by: typeof bob): ProviderEvent => ({ type: 'EndpointEnabled', data: { providerSlug: 'bob-ai', model: 'bob/one', at, decidedBy: by } });
  const adminDisabled = [registered, published, disabledBy(admin)];

  it("keeps an admin's disabling through the provider's republish and price change", () => {
    given(adminDisabled).when({ type: 'PublishEndpoint', data: { providerSlug: 'bob-ai', actor: bob, spec, model: own, at } }).then([
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'bob-ai', at, status: 'disabled', decidedBy: bob } },
    ]);
    const republished: ProviderEvent = { type: 'EndpointPublished', data: { ...spec, providerSlug: 'bob-ai', at, status: 'disabled', decidedBy: bob } };
    const repriced: ProviderEvent = { type: 'EndpointPriceChanged', data: { providerSlug: 'bob-ai', model: 'bob/one', prices: prices({ prompt: 1 }), at, decidedBy: bob } };
    given([...adminDisabled, republished, repriced]).when(enable(bob)).thenThrows(ForbiddenError, /only an admin/);
    given([...adminDisabled, republished, repriced]).when(enable(admin)).then([enabled(admin)]);
  });

  it('lets the provider enable what it disabled itself, unless an admin disabled it since', () => {
    given([registered, published, disabledBy(bob)]).when(enable(bob)).then([enabled(bob)]);
    const takeover = { type: 'DisableEndpoint' as const, data: { providerSlug: 'bob-ai', actor: admin, model: 'bob/one', reason: 'abuse', at } };
    given([registered, published, disabledBy(bob)]).when(takeover).then([{ type: 'EndpointDisabled', data: { providerSlug: 'bob-ai', model: 'bob/one', reason: 'abuse', at, decidedBy: admin } }]);
    given([registered, published, disabledBy(bob), disabledBy(admin)]).when(enable(bob)).thenThrows(ForbiddenError);
    given(adminDisabled).when({ type: 'DisableEndpoint', data: { providerSlug: 'bob-ai', actor: bob, model: 'bob/one', reason: 'mine', at } }).then([]);
    given([registered, published]).when(enable(bob)).then([]);
  });

  it('loads events written before issue 10: a disabling names nobody (only an admin lifts it), a republish activated', () => {
    const legacyPublished: ProviderEvent = { type: 'EndpointPublished', data: { ...spec, providerSlug: 'bob-ai', at } };
    const legacyDisabled: ProviderEvent = { type: 'EndpointDisabled', data: { providerSlug: 'bob-ai', model: 'bob/one', reason: 'r', at } };
    given([registered, legacyPublished, legacyDisabled]).when(enable(bob)).thenThrows(ForbiddenError);
    given([registered, legacyPublished, legacyDisabled]).when(enable(admin)).then([enabled(admin)]);
    given([registered, legacyPublished, legacyDisabled, legacyPublished]).when(enable(bob)).then([]);
  });
});

describe('catalog read models: owners, proposals, who disabled', () => {
  const spec: EndpointSpec = { model: 'acme/one', upstreamModel: 'x', prices: prices(), contextLength: 8000, maxOutput: 1000, quantization: null, supportedParameters: [], variants: [] };
  const model: ModelPublished = { type: 'ModelPublished', data: { modelId: 'acme/one', name: 'One', description: '', contextLength: 8000, inputModalities: ['text'], outputModalities: ['text'], tokenizer: 'Other', at } };

  it('reads events from before issue 10: the root admin owns the model, a disabling counts as an admin’s', () => {
    const doc = fold<ModelDoc>(modelsProjection, [model, { type: 'EndpointPublished', data: { ...spec, providerSlug: 'p', at } }, { type: 'EndpointDisabled', data: { providerSlug: 'p', model: 'acme/one', reason: 'r', at } }], 'acme/one');
    expect(doc).toMatchObject({ ownerAccountId: 'acc_root', openToProviders: false, endpoints: [{ id: 'acme/one@p', status: 'disabled', disabledByAdmin: true }] });
  });

  it("keeps an admin's disabling through a republish, and clears it on enable", () => {
    const events: ProviderEvent[] = [
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'p', at, status: 'active', decidedBy: bob } },
      { type: 'EndpointDisabled', data: { providerSlug: 'p', model: 'acme/one', reason: 'r', at, decidedBy: admin } },
      { type: 'EndpointPublished', data: { ...spec, providerSlug: 'p', at, status: 'disabled', decidedBy: bob } },
    ];
    expect(fold<ModelDoc>(modelsProjection, [model, ...events], 'acme/one')!.endpoints[0]).toMatchObject({ status: 'disabled', disabledByAdmin: true });
    const enabled: ProviderEvent = { type: 'EndpointEnabled', data: { providerSlug: 'p', model: 'acme/one', at, decidedBy: admin } };
    expect(fold<ModelDoc>(modelsProjection, [model, ...events, enabled], 'acme/one')!.endpoints[0]).toMatchObject({ status: 'active', disabledByAdmin: false });
  });

  it('keeps a proposal pending until it is approved, rejected or published directly', () => {
    const proposed: ProviderEvent = { type: 'EndpointProposed', data: { ...spec, providerSlug: 'p', modelOwnerAccountId: 'acc_root', proposedBy: bob, at } };
    expect(fold<EndpointProposalDoc>(endpointProposalsProjection, [proposed], 'acme/one@p')).toMatchObject({ status: 'pending', proposedBy: 'acc_bob', decidedBy: null });
    const rejected: ProviderEvent = { type: 'EndpointRejected', data: { providerSlug: 'p', model: 'acme/one', reason: 'no', at, decidedBy: admin } };
    expect(fold<EndpointProposalDoc>(endpointProposalsProjection, [proposed, rejected], 'acme/one@p')).toMatchObject({ status: 'rejected', reason: 'no', decidedBy: 'acc_root' });
    const direct: ProviderEvent = { type: 'EndpointPublished', data: { ...spec, providerSlug: 'p', at, status: 'active', decidedBy: bob } };
    expect(fold<EndpointProposalDoc>(endpointProposalsProjection, [proposed, direct], 'acme/one@p')).toMatchObject({ status: 'approved', decidedBy: 'acc_bob' });
    expect(fold<EndpointProposalDoc>(endpointProposalsProjection, [direct], 'acme/one@p')).toBeNull();
  });
});

import { z } from 'zod';
import type { ApiKeyDoc } from '../../../projections/apiKeys.js';
import type { UsageOverReportDoc } from '../../../projections/usageOverReports.js';
import { calendarDayArg } from '../../calendarDay.js';
import type { RecordedEvent } from '../../eventStore/eventStore.js';
import { builder } from '../../graphql/builder.js';
import { idConnection, idPage, revisionConnection } from '../../graphql/connections.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { ownsAccountArg, targetAccount, userOwnsAccountArg } from '../../graphql/scopes.js';
import { idempotencyKeyArg } from '../../idempotencyKey.js';
import { ApiKeyRef } from '../apiKeys/apiKey.graphql.js';
import type { TokenUsage } from '../generations/generation.events.js';
import type { AuditReport, UnrecordedCharge } from './audit.js';
import { limitRemaining, type Actor, type Purchase, type UsageRow } from './ledger.api.js';
import type { Balance, KeyWindowUsage } from './ledger.js';
import type { LedgerEvent } from './ledger.events.js';
import { usdDecimal } from './money.js';

/** Who runs a ledger command: the caller, with the request id to correlate its events. */
const by = (ctx: GraphQLContext): Actor => ({ actor: ctx.principal?.accountId ?? 'anonymous', correlationId: ctx.requestId });

export const BalanceRef = builder.objectRef<Balance>('Balance').implement({
  description: 'Credits of an account in integer nano-dollars (1 USD = 1,000,000,000).',
  fields: (t) => ({
    accountId: t.exposeID('accountId'),
    purchased: t.field({ type: 'Money', resolve: (b) => b.purchased }),
    granted: t.field({ type: 'Money', resolve: (b) => b.granted }),
    refunded: t.field({ type: 'Money', resolve: (b) => b.refunded }),
    settled: t.field({ type: 'Money', description: 'Charged for generations.', resolve: (b) => b.settled }),
    reserved: t.field({ type: 'Money', description: 'Held for generations in flight.', resolve: (b) => b.reserved }),
    available: t.field({ type: 'Money', description: 'purchased + granted − refunded − settled − reserved.', resolve: (b) => b.available }),
    availableUsd: t.string({ description: 'The available balance as an exact decimal string of dollars.', resolve: (b) => usdDecimal(b.available, 2) }),
    lifetimePurchased: t.field({ type: 'Money', resolve: (b) => b.lifetimePurchased }),
    fees: t.field({ type: 'Money', description: 'Purchase fees paid on top of purchases.', resolve: (b) => b.fees }),
    uncollected: t.field({ type: 'Money', description: 'Cost above what the account could pay, absorbed by the platform.', resolve: (b) => b.uncollected }),
    openReservations: t.exposeInt('openReservations'),
  }),
});

const LedgerEntryType = builder.enumType('LedgerEntryType', {
  values: ['PurchaseStarted', 'PurchaseFailed', 'CreditsPurchased', 'CreditsGranted', 'CreditsRefunded', 'CreditsReserved', 'ReservationSettled', 'ReservationReleased', 'ReservationExpired'] as const,
});

/** The change an entry made to the available balance. */
const effect = (event: LedgerEvent): number => {
  switch (event.type) {
    case 'CreditsPurchased':
    case 'CreditsGranted':
      return event.data.amount;
    case 'CreditsRefunded':
      return -event.data.amount;
    case 'CreditsReserved':
      return -event.data.amount;
    case 'ReservationSettled':
      return event.data.reserved - event.data.charged;
    case 'ReservationReleased':
    case 'ReservationExpired':
      return event.data.reserved;
    // Room held under the credits cap while a payment is made, and given back: no credits move.
    case 'PurchaseStarted':
    case 'PurchaseFailed':
      return 0;
  }
};

const LedgerEntryRef = builder.objectRef<RecordedEvent<LedgerEvent>>('LedgerEntry').implement({
  description: "One ledger event: the account's ledger stream itself is the list.",
  fields: (t) => ({
    id: t.exposeID('id'),
    revision: t.exposeInt('revision'),
    type: t.field({ type: LedgerEntryType, resolve: (e) => e.type }),
    effect: t.field({ type: 'Money', description: 'Change to the available balance.', resolve: (e) => effect(e) }),
    amount: t.field({
      type: 'Money',
      description: 'The amount the entry is about: bought, granted, refunded, reserved, charged or released.',
      resolve: (e) => ('amount' in e.data ? e.data.amount : e.type === 'ReservationSettled' ? e.data.charged : e.data.reserved),
    }),
    generationId: t.string({ nullable: true, resolve: (e) => ('generationId' in e.data ? e.data.generationId : null) }),
    keyId: t.string({ nullable: true, resolve: (e) => ('keyId' in e.data ? e.data.keyId : null) }),
    details: t.field({ type: 'JSON', resolve: (e) => e.data }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.data.at }),
  }),
});

const UsageGroupBy = builder.enumType('UsageGroupBy', {
  values: { DAY: { value: 'day' }, MODEL: { value: 'model' }, KEY: { value: 'keyId' }, PROVIDER: { value: 'provider' }, WORKFLOW: { value: 'workflowId' }, APP: { value: 'app' } } as const,
});

export const UsageRowRef = builder.objectRef<UsageRow>('UsageRow').implement({
  fields: (t) => ({
    group: t.exposeString('group', {
      description: 'The day (YYYY-MM-DD), model, key id, provider, workflow id (`-`: calls made outside workflows) or app (its X-OpenRouter-Title, else its HTTP-Referer; `-`: calls of no named app).',
    }),
    day: t.exposeString('day', { nullable: true, description: 'The day (YYYY-MM-DD) of this row when the query asked perDay, else null.' }),
    requests: t.exposeInt('requests'),
    promptTokens: t.exposeInt('promptTokens'),
    completionTokens: t.exposeInt('completionTokens'),
    reasoningTokens: t.exposeInt('reasoningTokens'),
    cachedTokens: t.exposeInt('cachedTokens'),
    cost: t.field({ type: 'Money', resolve: (r) => r.cost }),
  }),
});

/** A key's usage is loaded once per request for all keys asked (usage and limitRemaining share it). */
const keyUsageId = (key: ApiKeyDoc) => JSON.stringify([key.accountId, key._id]);

const KeyUsageRef = builder.loadableObject('KeyUsage', {
  description: 'Spending of a key (charged plus held for generations in flight) per window, UTC; weeks start on Monday.',
  load: (ids: string[], ctx: GraphQLContext): Promise<KeyWindowUsage[]> =>
    ctx.ledger.keyUsages(
      ids.map((id) => {
        const [accountId, keyId] = JSON.parse(id) as [string, string];
        return { accountId, keyId };
      }),
    ),
  fields: (t) => ({
    daily: t.field({ type: 'Money', resolve: (u) => u.daily }),
    weekly: t.field({ type: 'Money', resolve: (u) => u.weekly }),
    monthly: t.field({ type: 'Money', resolve: (u) => u.monthly }),
    lifetime: t.field({ type: 'Money', resolve: (u) => u.lifetime }),
  }),
});

builder.objectFields(ApiKeyRef, (t) => ({
  usage: t.field({ type: KeyUsageRef, resolve: (key) => keyUsageId(key) }),
  limitRemaining: t.field({
    type: 'Money',
    nullable: true,
    description: 'What the key may still spend in its current window; null without a limit.',
    resolve: async (key, _args, ctx) => (key.limit === null ? null : limitRemaining(key, await KeyUsageRef.getDataloader(ctx).load(keyUsageId(key)))),
  }),
}));

const AuditDifferenceRef = builder.objectRef<{ accountId: string; model: string; documentId: string; field: string; expected: unknown; actual: unknown }>('AuditDifference').implement({
  fields: (t) => ({
    accountId: t.exposeString('accountId'),
    model: t.exposeString('model'),
    documentId: t.exposeString('documentId'),
    field: t.exposeString('field'),
    expected: t.field({ type: 'JSON', nullable: true, description: 'What replaying the events gives.', resolve: (d) => d.expected }),
    actual: t.field({ type: 'JSON', nullable: true, description: 'What the read model (or generation record) holds.', resolve: (d) => d.actual }),
  }),
});
const UnrecordedChargeRef = builder.objectRef<UnrecordedCharge>('UnrecordedCharge').implement({
  description:
    "A call the ledger charged whose generation has no record (written after the charge): the server stopped between the two, or the record's write failed. A write that failed for a reason that passes (a full disk, a store unavailable or busy) is tried again until it is written, so such a call is listed until then, and for good when the server stops first (or past 10,000 writes waiting); one that failed otherwise is lost at once. The money is right; the generation shows with the status UNRECORDED.",
  fields: (t) => ({
    accountId: t.exposeString('accountId'),
    generationId: t.exposeString('generationId'),
    charged: t.field({ type: 'Money', description: 'What the account paid for it (nano-dollars).', resolve: (c) => c.charged }),
  }),
});
const AuditReportRef = builder.objectRef<AuditReport>('AuditReport').implement({
  fields: (t) => ({
    ok: t.exposeBoolean('ok', { description: 'No differences: the read models and the generation records reproduce the ledger (unrecordedCharges are listed apart).' }),
    accountsChecked: t.exposeInt('accountsChecked'),
    eventsReplayed: t.exposeInt('eventsReplayed'),
    durationMs: t.exposeInt('durationMs'),
    differences: t.field({ type: [AuditDifferenceRef], resolve: (r) => [...r.differences] }),
    unrecordedCharges: t.field({
      type: [UnrecordedChargeRef],
      description: "Charges whose generation has no record (a stop between a call's charge and its record, or a record not written: see UnrecordedCharge), in the ledger's order.",
      resolve: (r) => [...r.unrecordedCharges],
    }),
  }),
});

const ReportedUsageRef = builder.objectRef<TokenUsage>('ReportedUsage').implement({
  description: 'Token counts of an over-report. Floats: a provider may report counts beyond 32 bits (exact up to 2^53).',
  fields: (t) => ({
    promptTokens: t.float({ resolve: (u) => u.prompt }),
    completionTokens: t.float({ resolve: (u) => u.completion }),
    reasoningTokens: t.float({ resolve: (u) => u.reasoning }),
    cachedTokens: t.float({ resolve: (u) => u.cached }),
    cacheWriteTokens: t.float({ resolve: (u) => u.cacheWrite }),
  }),
});

const UsageOverReportRef = builder.objectRef<UsageOverReportDoc>('UsageOverReport').implement({
  description: 'A generation whose provider reported more usage than the user was billed for; the excess was not charged.',
  fields: (t) => ({
    generationId: t.exposeID('_id'),
    accountId: t.exposeID('accountId'),
    keyId: t.exposeID('keyId', { nullable: true }),
    provider: t.exposeString('providerSlug'),
    providerName: t.exposeString('providerName'),
    endpointId: t.exposeString('endpointId'),
    model: t.exposeString('model'),
    usageSource: t.exposeString('usageSource', { description: 'provider (reported upstream) or estimated (counted after a cut stream).' }),
    reported: t.field({ type: ReportedUsageRef, resolve: (r) => r.reported }),
    billed: t.field({ type: ReportedUsageRef, resolve: (r) => r.billed }),
    maxPromptTokens: t.int({ description: "The cap on prompt tokens: the endpoint's context length.", resolve: (r) => r.caps.promptTokens }),
    maxCompletionTokens: t.int({ description: "The cap on completion tokens: max_tokens as sent upstream, else the endpoint's max output.", resolve: (r) => r.caps.completionTokens }),
    reportedCost: t.field({ type: 'Money', description: 'What the reported usage would have cost (at most 2^53 − 1).', resolve: (r) => r.reportedCost }),
    billedCost: t.field({ type: 'Money', description: 'What the user was charged.', resolve: (r) => r.billedCost }),
    reserved: t.field({ type: 'Money', description: 'The reservation the request was admitted on: the most it could be charged.', resolve: (r) => r.caps.cost }),
    at: t.field({ type: 'DateTime', resolve: (r) => r.at }),
  }),
});

const PurchaseRef = builder.objectRef<Purchase>('Purchase').implement({
  fields: (t) => ({
    paymentRef: t.exposeString('paymentRef'),
    amount: t.field({ type: 'Money', description: 'Credits bought.', resolve: (p) => p.amount }),
    fee: t.field({ type: 'Money', description: 'Charged on top of the amount.', resolve: (p) => p.fee }),
    total: t.field({ type: 'Money', description: 'amount + fee: what the payment method was charged.', resolve: (p) => p.amount + p.fee }),
    balance: t.field({ type: BalanceRef, resolve: (p) => p.balance }),
  }),
});

const positiveMoney = z.number().int().positive('must be a positive amount of nano-dollars');
const reason = z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters');

builder.queryFields((t) => ({
  purchaseFee: t.withAuth({ authenticated: true }).field({
    type: 'Money',
    description:
      'The fee purchaseCredits would charge on top of `amount` (nano-dollars), to show before buying. An amount a purchase refuses (not whole cents, above $1,000,000) is the same VALIDATION.',
    args: { amount: t.arg({ type: 'Money', required: true, validate: positiveMoney }) },
    resolve: (_root, args, ctx) => ctx.ledger.purchaseFee(args.amount),
  }),
  balance: t.field({
    type: BalanceRef,
    description: "The caller's balance (an admin may name any account), as the ledger holds it now.",
    args: { accountId: t.arg.id() },
    authScopes: ownsAccountArg,
    resolve: (_root, args, ctx) => ctx.ledger.balance(targetAccount(args.accountId, ctx)),
  }),
  ledgerEntries: t.connection({
    type: LedgerEntryRef,
    description:
      "Ledger entries, newest first. A restricted key (a spending limit, or issued to an app) lists the account's credits (purchases, grants, refunds) and its own calls' entries, not another key's.",
    args: { accountId: t.arg.id() },
    authScopes: ownsAccountArg,
    resolve: (_root, args, ctx) => revisionConnection(args, (page) => ctx.ledger.entries(targetAccount(args.accountId, ctx), page, ctx.principal)),
  }),
  usage: t.field({
    type: [UsageRowRef],
    description:
      "Usage summed per day, model, key, provider or workflow (its runs' model calls), between two days (inclusive, UTC). With perDay, each group is split per day (rows in day order): the series of a chart.",
    args: {
      groupBy: t.arg({ type: UsageGroupBy, required: true }),
      perDay: t.arg.boolean({ defaultValue: false, description: 'A row per day and group (day is set) instead of one per group.' }),
      from: t.arg.string({ validate: calendarDayArg }),
      to: t.arg.string({ validate: calendarDayArg }),
      accountId: t.arg.id(),
    },
    authScopes: ownsAccountArg,
    resolve: (_root, args, ctx) => ctx.ledger.usage(targetAccount(args.accountId, ctx), { groupBy: args.groupBy, from: args.from, to: args.to, perDay: args.perDay }),
  }),
  platformUsage: t.field({
    type: [UsageRowRef],
    description: "Every account's usage summed per day, model, key, provider or workflow, between two days (inclusive, UTC), as usage does for one account (admin).",
    args: {
      groupBy: t.arg({ type: UsageGroupBy, required: true }),
      perDay: t.arg.boolean({ defaultValue: false, description: 'A row per day and group (day is set) instead of one per group.' }),
      from: t.arg.string({ validate: calendarDayArg }),
      to: t.arg.string({ validate: calendarDayArg }),
    },
    authScopes: { admin: true },
    resolve: (_root, args, ctx) => ctx.ledger.usage(null, { groupBy: args.groupBy, from: args.from, to: args.to, perDay: args.perDay }),
  }),
  usageOverReports: t.connection({
    type: UsageOverReportRef,
    description: 'Generations whose provider reported more usage than was billed, oldest first (admin).',
    args: { provider: t.arg.string({ description: 'Only this provider (slug).' }) },
    authScopes: { admin: true },
    resolve: (_root, args, ctx) => idConnection(args, (page) => ctx.ledger.usageOverReports(idPage(page), args.provider)),
  }),
  billingAudit: t.field({
    type: AuditReportRef,
    description: 'Replay the ledger from the first event and compare with the read models (admin).',
    args: { accountId: t.arg.id() },
    authScopes: { admin: true },
    resolve: (_root, args, ctx) => ctx.ledger.billingAudit(args.accountId ? String(args.accountId) : null),
  }),
}));

builder.mutationFields((t) => {
  /** An admin's grant or refund: the same arguments, the same answer (the balance). */
  const adminCredits = (move: 'grantCredits' | 'refundCredits', description: string, names: string, moves: string) =>
    t.field({
      type: BalanceRef,
      description,
      errors: { directResult: true },
      authScopes: { admin: true },
      args: {
        accountId: t.arg.id({ required: true }),
        amount: t.arg({ type: 'Money', required: true, validate: positiveMoney }),
        reason: t.arg.string({ required: true, validate: reason }),
        idempotencyKey: t.arg.string({
          description: `1 to 255 visible ASCII characters (! to ~, no spaces). Names ${names} the account: the same request again (after an UNAVAILABLE, say) answers the account's balance and ${moves} nothing more; another amount under it is a CONFLICT.`,
        }),
      },
      resolve: (_root, args, ctx) => ctx.ledger[move](by(ctx), { accountId: String(args.accountId), amount: args.amount, reason: args.reason, idempotencyKey: idempotencyKeyArg(args.idempotencyKey) }),
    });
  return {
  purchaseCredits: t.field({
    type: PurchaseRef,
    description: 'Buy credits through the payment processor; the fee is charged on top. Amounts are whole cents.',
    errors: { directResult: true },
    args: {
      amount: t.arg({ type: 'Money', required: true, validate: positiveMoney }),
      paymentMethod: t.arg.string({ required: true, description: 'A payment method token, e.g. pm_card_visa.' }),
      idempotencyKey: t.arg.string({
        description: '1 to 255 visible ASCII characters (! to ~, no spaces). Names one purchase: the same request again answers the recorded purchase and never charges twice; another amount or payment method under it is a CONFLICT.',
      }),
      accountId: t.arg.id(),
    },
    authScopes: userOwnsAccountArg,
    resolve: (_root, args, ctx) =>
      ctx.ledger.purchaseCredits(by(ctx), { accountId: targetAccount(args.accountId, ctx), amount: args.amount, paymentMethod: args.paymentMethod, idempotencyKey: idempotencyKeyArg(args.idempotencyKey) }),
  }),
  grantCredits: adminCredits('grantCredits', 'Give credits to an account (admin).', 'one grant to', 'grants'),
  refundCredits: adminCredits('refundCredits', 'Refund purchased credits (admin); never more than was purchased, nor more than is available.', 'one refund of', 'refunds'),
  };
});

builder.subscriptionFields((t) => ({
  balanceChanged: t.withAuth({ authenticated: true }).field({
    type: BalanceRef,
    description: "The caller's balance, each time it changes (after the read model stored it).",
    subscribe: (_root, _args, ctx) => ctx.ledger.balanceChanges(ctx.principal.accountId),
    resolve: (balance) => balance,
  }),
}));

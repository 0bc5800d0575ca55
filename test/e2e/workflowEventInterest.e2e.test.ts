/**
 * The event-trigger follower reads only the events some enabled `event` workflow can fire from: a chat completion
 * wakes it for nothing while no workflow listens to generation events, and the moment one does (created, enabled),
 * the next completion starts its run; disabled again, completions are not read any more. Interest is computed from
 * the read model, so after a restart a workflow created before it still fires.
 *
 * What the follower reads is seen through the app's own event store, wrapped (test/support/countingEventStore.ts)
 * to record what the request thread's subscriptions deliver; the trigger follower is the only one there that reads
 * generation events or names ledger event types.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { deliveries } from '../support/countingEventStore.js';
import { startHarness, type Harness } from '../support/appHarness.js';

const WRAPPER = new URL('../support/countingEventStore.ts', import.meta.url).href;
const ERROR = '... on DomainError { code message }';

let h: Harness | null = null;
const dirs: string[] = [];
afterEach(async () => {
  await h?.stop({ keepData: true });
  h = null;
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-interest-'));
  dirs.push(dir);
  return dir;
};
const app = (): Harness => h!;

const open = async (name: string, credits = 0) => {
  const { body } = await app().gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await app().gql('mutation($id: ID!) { grantRole(accountId: $id, role: DESIGNER) { __typename } }', { id: account.id });
  if (credits > 0) await app().gql('mutation($id: ID!, $amount: Money!) { grantCredits(accountId: $id, amount: $amount, reason: "test") { __typename } }', { id: account.id, amount: credits });
  return account;
};

/** A workflow that answers with its trigger. */
const create = async (name: string, trigger: unknown, key: string): Promise<string> => {
  const { body } = await app().gql(
    `mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`,
    { d: { name, trigger, steps: [{ key: 'reply', type: 'action.respond', input: { got: '=trigger' } }] } },
    key,
  );
  expect(body.data.createWorkflow.__typename).toBe('Workflow');
  return body.data.createWorkflow.id as string;
};

const toggle = async (workflowId: string, to: 'enableWorkflow' | 'disableWorkflow', key: string) => {
  const { body } = await app().gql(`mutation($id: ID!) { ${to}(id: $id) { __typename ${ERROR} } }`, { id: workflowId }, key);
  expect(body.data[to].__typename).toBe('Workflow');
};

/** A chat completion over OpenRouter's REST API; answers its generation id. */
const complete = async (key: string): Promise<string> => {
  const res = await fetch(`${app().url}/api/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'switchyard/demo', messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: string }).id;
};

const runsOf = async (workflowId: string, key: string) => {
  const { body } = await app().gql(`query($id: ID!) { workflowRuns(workflowId: $id, first: 50) { edges { node { id status output } } } }`, { id: workflowId }, key);
  expect(body.errors).toBeUndefined();
  return (body.data.workflowRuns.edges as { node: { id: string; status: string; output: any } }[]).map((edge) => edge.node);
};

const endedRuns = async (workflowId: string, key: string, count: number) => {
  const until = Date.now() + 15_000;
  for (;;) {
    const runs = (await runsOf(workflowId, key)).filter((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED');
    if (runs.length >= count) return runs;
    if (Date.now() > until) throw new Error(`workflow ${workflowId} has ${runs.length} ended runs, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/** The events of this generation that the request thread's subscriptions were delivered. */
const readsOfGeneration = (generationId: string) => deliveries(app().dataDir).filter((delivery) => delivery.stream === `generation-${generationId}`);
/** Ledger events of this account delivered to a subscription that asked for them by type (the ledger's own follower reads its category). */
const typedLedgerReads = (accountId: string) => deliveries(app().dataDir).filter((delivery) => delivery.stream === `ledger-${accountId}` && delivery.byType);

/**
 * A completion before any workflow listens, one after a generation.completed workflow is created, one after it is
 * disabled; then a balance.below workflow (of another account) created, disabled, enabled and crossed. Ends once that
 * last one fired: the follower is then past every completion before it.
 */
const scenario = async () => {
  h = await startHarness({}, freshDir(), { eventStoreWrapper: WRAPPER });
  const ana = await open('Ana', 10_000_000_000);
  const before = await complete(ana.key);
  // Its record is appended once its settlement is (after the answer, the settlement held up to SOON_HOLD_MS): on record
  // before the workflow exists, as "before" means in the log's order, which is the order event triggers go by.
  await app().running.core.gateway.idle();
  const workflow = await create('On answers', { type: 'event', event: 'generation.completed' }, ana.key);
  const after = await complete(ana.key);
  await endedRuns(workflow, ana.key, 1);
  await toggle(workflow, 'disableWorkflow', ana.key);
  const whileDisabled = await complete(ana.key);
  // Its settlement is appended after the answer, held up to the ledger's SOON_HOLD_MS for Ana's next reservation: on
  // record before Bea's workflow exists, so that Ana's ledger events all come before any balance.below interest.
  await app().running.core.gateway.idle();

  const bea = await open('Bea');
  const low = await create('Low balance', { type: 'event', event: 'balance.below', threshold: 5_000_000_000 }, bea.key);
  await toggle(low, 'disableWorkflow', bea.key);
  await toggle(low, 'enableWorkflow', bea.key);
  const bought = await app().gql('mutation($id: ID!) { purchaseCredits(accountId: $id, amount: 10000000000, paymentMethod: "pm_card_visa") { __typename } }', { id: bea.id });
  expect(bought.body.errors).toBeUndefined();
  await app().gql('mutation($id: ID!, $amount: Money!) { refundCredits(accountId: $id, amount: $amount, reason: "test") { __typename } }', { id: bea.id, amount: 6_000_000_000 });
  const [fired] = await endedRuns(low, bea.key, 1);
  return { ana, bea, workflow, low, fired: fired!, completions: { before, after, whileDisabled } };
};

describe('event triggers start runs for the workflows enabled at the event', () => {
  it('a completion before a generation.completed workflow exists starts none, the next one exactly one, none once disabled; an enabled balance.below one fires', async () => {
    const { ana, workflow, fired, completions } = await scenario();
    expect((await runsOf(workflow, ana.key)).map((run) => run.output.got)).toMatchObject([{ event: 'generation.completed', id: completions.after }]);
    expect(fired.output.got).toMatchObject({ event: 'balance.below', balance: 4_000_000_000, previousBalance: 10_000_000_000 });
  });

  it('after a restart, a workflow created before it fires on the first completion (interest recomputed from the read model)', async () => {
    const dir = freshDir();
    h = await startHarness({}, dir, { eventStoreWrapper: WRAPPER });
    const ana = await open('Ana', 10_000_000_000);
    const workflow = await create('On answers', { type: 'event', event: 'generation.completed' }, ana.key);
    await h.stop({ keepData: true });
    h = null;

    h = await startHarness({}, dir, { eventStoreWrapper: WRAPPER });
    const generationId = await complete(ana.key);
    const runs = await endedRuns(workflow, ana.key, 1);
    expect(runs).toMatchObject([{ status: 'SUCCEEDED', output: { got: { event: 'generation.completed', id: generationId } } }]);
  });
});

describe('event triggers read only what enabled workflows listen to', () => {
  it('no event of a completion is read while no enabled workflow listens to generation events, nor ledger events by type while none listens to balance.below', async () => {
    const { ana, bea, completions } = await scenario();
    // The follower is past these completions (it handled a later event): it never read them.
    expect(readsOfGeneration(completions.before)).toEqual([]);
    expect(readsOfGeneration(completions.whileDisabled)).toEqual([]);
    // While a workflow listened, it did (what the wrapper sees is what the follower reads).
    expect(readsOfGeneration(completions.after).map((delivery) => delivery.type)).toContain('GenerationCompleted');
    // Ana's grant came before any balance.below workflow; Bea's purchase and refund after hers was enabled.
    expect(typedLedgerReads(ana.id)).toEqual([]);
    expect(typedLedgerReads(bea.id).map((delivery) => delivery.type)).toEqual(expect.arrayContaining(['CreditsPurchased', 'CreditsRefunded']));
  });
});

/**
 * A call charged without its generation record: the state a process killed between a call's settlement and its record
 * leaves (the record is appended after the settlement, so the log never holds a record of a charge it lacks). Here
 * the record's append fails, over real HTTP with the official `openai` SDK and a fake upstream. The charge is still a
 * generation, from the ledger's own facts: `GET /api/v1/generation` and GraphQL's `generation` find it with the status
 * `unrecorded`, its cost, tokens, model and creation time (null where only the record knew); the generations list
 * holds it, so its costs add up to what the balance settled; the billing audit (GraphQL and the CLI) names it as a
 * charge without a record, apart from money differences. An ordinary call's record is exactly what it was.
 */
import { rmSync, writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, generationsProjection, type GenerationDoc } from '../../projections/generations.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { ledgerStream, type ReservationSettled } from '../../src/modules/ledger/ledger.events.js';
import { ADMIN_KEY } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';
import { failNextGenerationRecordFlag } from '../support/failGenerationRecords.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';
import { runToExit } from '../support/spawnedServer.js';

const MODEL = 'test/uc-paid';
const PRICES = { prompt: 1_000, completion: 3_000 };
const USAGE = { promptTokens: 11, completionTokens: 5 };
const COST = USAGE.promptTokens * PRICES.prompt + USAGE.completionTokens * PRICES.completion;

let h: GatewayHarness;
let user: Account;
let client: OpenAI;
/** The ordinary call's id, and the id of the call whose record was lost. */
let ordinary = '';
let lost = '';
let stopped = false;

const settlementOf = async (accountId: string, generationId: string): Promise<ReservationSettled['data']> => {
  const events = (await h.running.core.eventStore.readStream(ledgerStream(accountId))) as unknown as RecordedEvent<ReservationSettled>[];
  return events.find((e) => e.type === 'ReservationSettled' && e.data.generationId === generationId)!.data;
};

const restRecord = async (id: string) => {
  const res = await fetch(`${h.url}/api/v1/generation?id=${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${user.key}` } });
  return { status: res.status, body: (await res.json()) as { data?: Record<string, any> } };
};

beforeAll(async () => {
  h = await startGatewayHarness({}, { eventStoreWrapper: new URL('../support/failGenerationRecords.ts', import.meta.url).href });
  user = await h.openAccount({ credits: 1_000_000_000 });
  client = new OpenAI({ baseURL: `${h.url}/api/v1`, apiKey: user.key, maxRetries: 0, timeout: 10_000 });
  const fake = await h.fakeEndpoint({ protocol: 'openai', slug: 'uc-fake', model: MODEL, prices: PRICES });
  fake.setDefault({ text: 'fine', usage: USAGE });

  ordinary = (await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 })).id;
  await h.running.core.gateway.idle();
  writeFileSync(failNextGenerationRecordFlag(h.dataDir), '');
  const answered = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello again' }], max_tokens: 20 });
  // The client had its whole answer: what it paid for.
  expect(answered.choices[0]?.message.content).toBe('fine');
  lost = answered.id;
  await h.running.core.gateway.idle();
});
afterAll(async () => {
  if (!stopped) await h?.stop();
});

describe('a call charged without its generation record', () => {
  it('is charged, and its generation stream holds nothing', async () => {
    expect((await settlementOf(user.accountId, lost)).actual).toBe(COST);
    expect(await h.running.core.eventStore.readStream(`generation-${lost}`)).toEqual([]);
    expect((await h.settledBalance(user.accountId)).settled).toBe(2 * COST);
  });

  it('is found on REST with the status unrecorded, its cost, tokens, model and creation time, and null for what only the record knew', async () => {
    const settled = await settlementOf(user.accountId, lost);
    const { status, body } = await eventually('the unrecorded charge on REST', async () => {
      const found = await restRecord(lost);
      return found.status === 200 && found;
    });
    expect(status).toBe(200);
    expect(body.data).toEqual({
      id: lost,
      upstream_id: null,
      total_cost: COST / 1e9,
      cache_discount: null,
      upstream_inference_cost: null,
      created_at: settled.reservedAt,
      model: MODEL,
      app_id: null,
      streamed: null,
      cancelled: null,
      provider_name: null,
      latency: null,
      moderation_latency: null,
      generation_time: null,
      finish_reason: null,
      native_finish_reason: null,
      tokens_prompt: USAGE.promptTokens,
      tokens_completion: USAGE.completionTokens,
      native_tokens_prompt: USAGE.promptTokens,
      native_tokens_completion: USAGE.completionTokens,
      native_tokens_completion_images: null,
      native_tokens_reasoning: 0,
      native_tokens_cached: 0,
      num_media_prompt: null,
      num_input_audio_prompt: null,
      num_media_completion: 0,
      num_search_results: null,
      origin: null,
      usage: COST / 1e9,
      is_byok: false,
      external_user: null,
      api_type: null,
      router: null,
      session_id: null,
      switchyard: {
        status: 'unrecorded',
        cost_nanodollars: COST,
        cache_discount_nanodollars: null,
        upstream_inference_cost_nanodollars: null,
        reserved_nanodollars: settled.reserved,
        usage_source: null,
        provider_slug: 'uc-fake',
        requested_models: [],
        app: null,
        error: null,
        attempts: [],
      },
    });
  });

  it('is found on GraphQL with the status UNRECORDED, and listed: the costs of the generations add up to what the balance settled', async () => {
    const one = await h.gql(
      'query ($id: ID!) { generation(id: $id) { id status cost model providerSlug provider apiType streamed finishedAt usage { promptTokens completionTokens } attempts } }',
      { id: lost },
      user.key,
    );
    expect(one.body).toEqual({
      data: {
        generation: {
          id: lost,
          status: 'UNRECORDED',
          cost: COST,
          model: MODEL,
          providerSlug: 'uc-fake',
          provider: null,
          apiType: null,
          streamed: null,
          finishedAt: null,
          usage: { promptTokens: USAGE.promptTokens, completionTokens: USAGE.completionTokens },
          attempts: [],
        },
      },
    });
    const list = await h.gqlOk('{ generations(first: 50) { edges { node { id status cost } } } }', {}, user.key);
    const nodes = list.generations.edges.map((e: { node: unknown }) => e.node);
    expect(nodes).toEqual(
      [
        { id: ordinary, status: 'COMPLETED', cost: COST },
        { id: lost, status: 'UNRECORDED', cost: COST },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    const only = await h.gqlOk('{ generations(first: 50, filter: { status: UNRECORDED }) { edges { node { id } } } }', {}, user.key);
    expect(only.generations.edges).toEqual([{ node: { id: lost } }]);
    const settled = (await h.settledBalance(user.accountId)).settled;
    expect(nodes.reduce((sum: number, n: { cost: number }) => sum + n.cost, 0)).toBe(settled);
  });

  it('is named by the billing audit as a charge without a record, apart from money differences (none)', async () => {
    const AUDIT = 'query ($id: ID) { billingAudit(accountId: $id) { ok differences { model field } unrecordedCharges { accountId generationId charged } } }';
    for (const id of [user.accountId, null]) {
      const audit = (await h.gqlOk(AUDIT, { id }, ADMIN_KEY)).billingAudit;
      expect(audit).toEqual({ ok: true, differences: [], unrecordedCharges: [{ accountId: user.accountId, generationId: lost, charged: COST }] });
    }
  });

  it("counts in its provider's earnings on its endpoint (derived from its model and provider): they are what the ledger charged", async () => {
    const rows = (await h.gqlOk('{ providerTraffic(provider: "uc-fake") { endpointId provider model requests served earnings } }', {}, ADMIN_KEY)).providerTraffic;
    // Both calls were on the same day (a test run across midnight UTC would split them into two rows).
    expect(rows).toEqual([{ endpointId: `${MODEL}@uc-fake`, provider: 'uc-fake', model: MODEL, requests: 1, served: 1, earnings: 2 * COST }]);
    expect(rows[0].earnings).toBe((await h.settledBalance(user.accountId)).settled);
  });

  it("leaves an ordinary call's record exactly as its own events give it (the settlement before them changes nothing)", async () => {
    const stored = await h.running.core.readStore.collection<GenerationDoc>(GENERATIONS).findOne({ _id: ordinary });
    const events = await h.running.core.eventStore.readStream(`generation-${ordinary}`);
    const fromRecord = events.reduce<GenerationDoc | null>((doc, event) => generationsProjection.evolve(doc, event) as GenerationDoc | null, null);
    const { _pos, ...doc } = stored as GenerationDoc & { _pos: number };
    expect(doc).toEqual(fromRecord);
    expect(doc.status).toBe('completed');

    const settled = await settlementOf(user.accountId, ordinary);
    const record = await h.generation(user.key, ordinary);
    expect(record).toEqual({
      id: ordinary,
      upstream_id: expect.any(String),
      total_cost: COST / 1e9,
      cache_discount: 0,
      upstream_inference_cost: null,
      created_at: expect.any(String),
      model: MODEL,
      app_id: null,
      streamed: false,
      cancelled: false,
      provider_name: 'uc-fake',
      latency: expect.any(Number),
      moderation_latency: null,
      generation_time: expect.any(Number),
      finish_reason: 'stop',
      native_finish_reason: 'stop',
      tokens_prompt: USAGE.promptTokens,
      tokens_completion: USAGE.completionTokens,
      native_tokens_prompt: USAGE.promptTokens,
      native_tokens_completion: USAGE.completionTokens,
      native_tokens_completion_images: null,
      native_tokens_reasoning: 0,
      native_tokens_cached: 0,
      num_media_prompt: 0,
      num_input_audio_prompt: 0,
      num_media_completion: 0,
      num_search_results: null,
      origin: '',
      usage: COST / 1e9,
      is_byok: false,
      external_user: null,
      api_type: 'chat',
      router: null,
      session_id: null,
      switchyard: {
        status: 'completed',
        cost_nanodollars: COST,
        cache_discount_nanodollars: 0,
        upstream_inference_cost_nanodollars: null,
        reserved_nanodollars: settled.reserved,
        usage_source: 'provider',
        provider_slug: 'uc-fake',
        requested_models: [MODEL],
        app: null,
        error: null,
        attempts: [
          {
            attempt: 1,
            endpointId: `${MODEL}@uc-fake`,
            providerSlug: 'uc-fake',
            model: MODEL,
            ok: true,
            errorCode: null,
            status: null,
            latencyMs: expect.any(Number),
            startedAt: expect.any(String),
          },
        ],
      },
    });
  });

  it('is listed by the audit CLI with its id, the server stopped (exit 0: the money matches)', async () => {
    const dir = h.dataDir;
    await h.stop({ keepData: true });
    stopped = true;
    try {
      const run = await runToExit(['src/cli/audit.ts'], { DATA_DIR: dir, LOG_LEVEL: 'silent' });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('OK: read models match the ledger');
      expect(run.stdout).toContain('1 charge(s) without a generation record (the process stopped before writing it: between the settlement and the record, or while a failed write of it, e.g. on a full disk, was retried):');
      expect(run.stdout).toContain(`UNRECORDED ${lost} account ${user.accountId} charged ${COST}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

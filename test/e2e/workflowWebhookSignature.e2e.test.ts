import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/modules/workflows/webhookSignature.js';
import { workflowStream } from '../../src/modules/workflows/workflow.events.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

/** Signed webhook calls (HMAC-SHA256 over timestamp + body) and the 24 h Idempotency-Key window, on the started app. */
let h: Harness;
let designer: { id: string; key: string };
/** The app's clock, moved by the window test. */
let offsetMs = 0;

const ERROR = '... on DomainError { code message }';

const open = async (name: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await h.gql('mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename } }', { id: account.id, role: 'DESIGNER' });
  return account;
};

const hook = {
  name: 'Signed hook',
  trigger: { type: 'webhook', respond: 'sync' },
  steps: [{ key: 'reply', type: 'action.respond', input: { status: 200, body: { hello: '=trigger.body.name' } } }],
};

const createWorkflow = async (): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: hook }, designer.key);
  expect(body.data.createWorkflow.__typename).toBe('Workflow');
  return body.data.createWorkflow.id;
};

const rotate = async (id: string): Promise<string> => {
  const { body } = await h.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ... on WebhookSecret { secret workflow { webhookSignatures } } ${ERROR} } }`, { id }, designer.key);
  expect(body.data.rotateWebhookSecret).toMatchObject({ __typename: 'WebhookSecret', workflow: { webhookSignatures: true } });
  return body.data.rotateWebhookSecret.secret;
};

const runCount = async (id: string): Promise<number> => {
  const { body } = await h.gql(`query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id } } } }`, { id }, designer.key);
  expect(body.errors).toBeUndefined();
  return body.data.workflowRuns.edges.length;
};

const nowSeconds = () => Math.floor((Date.now() + offsetMs) / 1_000);

/** POST raw bytes with headers. */
const call = (id: string, raw: string, headers: Record<string, string>) =>
  fetch(`${h.url}/api/v1/workflows/${id}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });

const signed = (secret: string, raw: string, timestamp = nowSeconds()) => ({ 'x-switchyard-timestamp': String(timestamp), 'x-switchyard-signature': signWebhook(secret, timestamp, raw) });

const expect401 = async (res: Response, reason: string) => {
  expect(res.status).toBe(401);
  const { error } = await res.json();
  expect(error).toMatchObject({ code: 401, metadata: { error_type: 'authentication', reason } });
  return error.message as string;
};

beforeAll(async () => {
  h = await startHarness({}, undefined, { now: () => new Date(Date.now() + offsetMs) });
  designer = await open('Sigrid Signer');
});
afterAll(async () => {
  await h.stop();
});

describe('signed webhook calls', () => {
  it('a call signed with the secret starts the run and answers it', async () => {
    const id = await createWorkflow();
    const secret = await rotate(id);
    const raw = JSON.stringify({ name: 'Ada' });
    const res = await call(id, raw, signed(secret, raw));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: 'Ada' });
    expect(await runCount(id)).toBe(1);
  });

  it('a tampered body, a wrong signature, a stale or future timestamp, or a missing timestamp is 401 and starts no run', async () => {
    const id = await createWorkflow();
    const secret = await rotate(id);
    const raw = JSON.stringify({ name: 'Ada' });
    const good = signed(secret, raw);
    // The same signature over another body (one byte changed).
    await expect401(await call(id, JSON.stringify({ name: 'Adb' }), good), 'wrong_signature');
    // Signed with another secret.
    await expect401(await call(id, raw, signed(`${secret}x`, raw)), 'wrong_signature');
    // A captured call replayed six minutes later: its signature is right, its timestamp is too old.
    expect(await expect401(await call(id, raw, signed(secret, raw, nowSeconds() - 360)), 'stale_timestamp')).toMatch(/300 s/);
    await expect401(await call(id, raw, signed(secret, raw, nowSeconds() + 360)), 'stale_timestamp');
    // The timestamp is signed: a fresh timestamp on an old signature does not pass.
    const old = signed(secret, raw, nowSeconds() - 360);
    await expect401(await call(id, raw, { ...old, 'x-switchyard-timestamp': String(nowSeconds()) }), 'wrong_signature');
    await expect401(await call(id, raw, { 'x-switchyard-signature': good['x-switchyard-signature'] }), 'missing_timestamp');
    await expect401(await call(id, raw, { ...good, 'x-switchyard-signature': 'sha1=abc' }), 'malformed_signature');
    // One proof per call: a right secret header does not rescue a wrong signature, nor a wrong one ride a right one.
    for (const [signature, header] of [[`${secret}x`, secret], [secret, `${secret}x`]]) {
      const both = await call(id, raw, { ...signed(signature!, raw), 'x-switchyard-webhook-secret': header! });
      expect(both.status).toBe(400);
      expect((await both.json()).error.message).toContain('not both');
    }
    expect(await runCount(id)).toBe(0);
  });

  it('the same signed call sent again within its 5 minutes answers the run the first one started, whatever Idempotency-Key it carries', async () => {
    const id = await createWorkflow();
    const secret = await rotate(id);
    const raw = JSON.stringify({ name: 'Ada' });
    const captured = signed(secret, raw);
    const first = await call(id, raw, captured);
    expect(first.status).toBe(200);
    const runId = first.headers.get('x-switchyard-run-id');
    // The Idempotency-Key is not signed: a replay adding or changing one is still the same call.
    for (const extra of [{}, { 'idempotency-key': 'replay-1' }, { 'idempotency-key': 'replay-2' }] as Record<string, string>[]) {
      const replay = await call(id, raw, { ...captured, ...extra });
      expect(replay.status).toBe(200);
      expect(replay.headers.get('x-switchyard-run-id')).toBe(runId);
    }
    // Signed anew (another timestamp), the same body is another call.
    const fresh = await call(id, raw, signed(secret, raw, Number(captured['x-switchyard-timestamp']) - 10));
    expect(fresh.headers.get('x-switchyard-run-id')).not.toBe(runId);
    expect(await runCount(id)).toBe(2);
  });

  it('after a rotation the old secret fails, as header and as signature key', async () => {
    const id = await createWorkflow();
    const first = await rotate(id);
    const second = await rotate(id);
    const raw = JSON.stringify({ name: 'Bo' });
    await expect401(await call(id, raw, signed(first, raw)), 'wrong_signature');
    await expect401(await call(id, raw, { 'x-switchyard-webhook-secret': first }), 'wrong_secret');
    expect(await runCount(id)).toBe(0);
    expect((await call(id, raw, signed(second, raw))).status).toBe(200);
    expect((await call(id, raw, { 'x-switchyard-webhook-secret': second })).status).toBe(200);
  });

  it('a workflow whose secret was stored only as a hash (before signatures) still works with the header; signed calls are told to rotate', async () => {
    const id = await createWorkflow();
    // What the webhook route's earlier versions recorded: the secret's SHA-256, nothing to compute an HMAC with.
    const secret = 'whsec_from_before_signatures';
    const secretHash = createHash('sha256').update(secret).digest('hex');
    const { position } = await h.running.core.eventStore.append(workflowStream(id), [
      { type: 'WebhookSecretRotated', data: { workflowId: id, secretHash, at: new Date().toISOString() }, metadata: { actor: designer.id, correlationId: 'test' } },
    ]);
    await h.running.core.runner.waitFor(position);
    const { body } = await h.gql(`query($id: ID!) { workflow(id: $id) { hasWebhookSecret webhookSignatures } }`, { id }, designer.key);
    expect(body.data.workflow).toEqual({ hasWebhookSecret: true, webhookSignatures: false });
    const raw = JSON.stringify({ name: 'Cy' });
    expect(await expect401(await call(id, raw, signed(secret, raw)), 'secret_not_signable')).toMatch(/rotate the secret/);
    expect(await runCount(id)).toBe(0);
    const res = await call(id, raw, { 'x-switchyard-webhook-secret': secret });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: 'Cy' });
  });
});

describe('Idempotency-Key window', () => {
  it('the same key answers the same run within 24 h, and starts a new run after', async () => {
    const id = await createWorkflow();
    const secret = await rotate(id);
    const raw = JSON.stringify({ name: 'Di' });
    const send = () => call(id, raw, { ...signed(secret, raw), 'idempotency-key': 'delivery-1' });
    const first = await send();
    expect(first.status).toBe(200);
    const runId = first.headers.get('x-switchyard-run-id');
    offsetMs += 23 * 3_600_000;
    expect((await send()).headers.get('x-switchyard-run-id')).toBe(runId);
    expect(await runCount(id)).toBe(1);
    offsetMs += 2 * 3_600_000;
    const later = await send();
    expect(later.status).toBe(200);
    const laterId = later.headers.get('x-switchyard-run-id');
    expect(laterId).toMatch(/^run_/);
    expect(laterId).not.toBe(runId);
    expect(await runCount(id)).toBe(2);
    // The new run holds the key for its own 24 h.
    offsetMs += 3_600_000;
    expect((await send()).headers.get('x-switchyard-run-id')).toBe(laterId);
    expect(await runCount(id)).toBe(2);
  });
});

describe('a signed delivery refused, then sent again', () => {
  it("is accepted once the refusal's cause is gone (the account's runs at their maximum: 429); a replay of it then answers its run; one sent 8 times at once starts one run; a refused body claims nothing", { timeout: 60_000 }, async () => {
    const limited = await startHarness({ WORKFLOW_MAX_RUNS_PER_ACCOUNT: '1' });
    try {
      const { body: opened } = await limited.gql(`mutation { openAccount(name: "Rita Retry", roles: [USER, DESIGNER]) { ... on OpenAccountPayload { initialKey { secret } } } }`);
      const key = opened.data.openAccount.initialKey.secret as string;
      const create = async (definition: unknown) => (await limited.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { ... on Workflow { id } ${ERROR} } }`, { d: definition }, key)).body.data.createWorkflow.id as string;
      const slow = await create({ name: 'slow', trigger: { type: 'manual' }, settings: { timeoutSeconds: 7200 }, steps: [{ key: 'wait', type: 'control.delay', input: { for: 'PT1H' } }] });
      const hookId = await create({ name: 'hook', trigger: { type: 'webhook', respond: 'async' }, steps: [{ key: 't', type: 'action.transform', input: { expression: '=trigger.body.n' } }] });
      const secret = (await limited.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on WebhookSecret { secret } } }`, { id: hookId }, key)).body.data.rotateWebhookSecret.secret as string;
      const deliver = (raw: string, headers: Record<string, string>) =>
        fetch(`${limited.url}/api/v1/workflows/${hookId}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
      // This app's clock is the real one (the window test above moved the other's).
      const signedNow = (body: string, timestamp = Math.floor(Date.now() / 1_000)) => signed(secret, body, timestamp);
      const hookRuns = async () => (await limited.gql(`query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id } } } }`, { id: hookId }, key)).body.data.workflowRuns.edges.length as number;

      // The account's one place is taken: the delivery is refused for a reason that is not the sender's.
      const holding = (await limited.gql(`mutation($id: ID!) { runWorkflow(id: $id) { ... on WorkflowRun { id status } } }`, { id: slow }, key)).body.data.runWorkflow;
      expect(holding.status).toBe('RUNNING');
      const raw = JSON.stringify({ n: 1 });
      const delivery = { ...signedNow(raw), 'idempotency-key': 'delivery-7' };
      const refused = await deliver(raw, delivery);
      expect(refused.status).toBe(429);
      expect(await hookRuns()).toBe(0);

      // Once a place is free, the same signed delivery (its retry) starts the run; a replay answers that run.
      await limited.gql('mutation($id: ID!) { cancelWorkflowRun(id: $id) { __typename } }', { id: holding.id }, key);
      const accepted = await eventually('the retried delivery accepted', async () => ((res) => (res.status === 202 ? res : null))(await deliver(raw, delivery)));
      const runId = accepted.headers.get('x-switchyard-run-id');
      expect(runId).toMatch(/^run_/);
      for (const extra of [{}, { 'idempotency-key': 'another' }] as Record<string, string>[]) {
        const replay = await deliver(raw, { ...signedNow(raw, Number(delivery['x-switchyard-timestamp'])), ...extra });
        expect(replay.status).toBe(202);
        expect(replay.headers.get('x-switchyard-run-id')).toBe(runId);
      }
      expect(await hookRuns()).toBe(1);
      await eventually('the first run ended', async () => ((await limited.gql(`query($id: ID!) { workflowRun(id: $id) { status } }`, { id: runId }, key)).body.data.workflowRun.status === 'SUCCEEDED'));

      // One signed request sent 8 times at once: one run, every answer naming it.
      const other = JSON.stringify({ n: 2 });
      const once = signedNow(other);
      // The first run's place is given back a moment after its end is visible: a send that finds it still taken is
      // a 429 and starts nothing (the same delivery sent again then starts the run or answers it), so sent again
      // until all 8 are accepted; still one run.
      const answers = await eventually('8 at once, all accepted', async () => {
        const sent = await Promise.all(Array.from({ length: 8 }, () => deliver(other, once)));
        expect(sent.filter((res) => res.status !== 202 && res.status !== 429)).toEqual([]);
        return sent.every((res) => res.status === 202) ? sent : null;
      });
      expect(new Set(answers.map((res) => res.headers.get('x-switchyard-run-id'))).size).toBe(1);
      expect(await hookRuns()).toBe(2);

      // A body refused (not JSON) records nothing of its signature.
      const claims = async () => (await limited.running.core.eventStore.readAll({ filter: { categories: ['webhookSignature'] } })).length;
      const before = await claims();
      const broken = '{"n": 3';
      const bad = await deliver(broken, signedNow(broken));
      expect(bad.status).toBe(400);
      expect(await claims()).toBe(before);
      expect(await hookRuns()).toBe(2);
    } finally {
      await limited.stop();
    }
  });
});

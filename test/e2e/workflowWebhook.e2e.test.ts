import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startHarness, type Harness } from '../support/appHarness.js';

/** The webhook trigger and REST manual runs on the started app, over real HTTP. */
let h: Harness;
let designer: { id: string; key: string };
let stranger: { id: string; key: string };

const ERROR = '... on DomainError { code message }';
type Gql = Harness['gql'];

const open = async (gql: Gql, name: string) => {
  const { body } = await gql(`mutation($name: String!) { openAccount(name: $name) { ... on OpenAccountPayload { account { id } initialKey { secret } } } }`, { name });
  const account = { id: body.data.openAccount.account.id as string, key: body.data.openAccount.initialKey.secret as string };
  await gql('mutation($id: ID!, $role: Role!) { grantRole(accountId: $id, role: $role) { __typename } }', { id: account.id, role: 'DESIGNER' });
  return account;
};

const createWorkflow = async (definition: unknown, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id webhookUrl } ${ERROR} } }`, { d: definition }, key);
  expect(body.data.createWorkflow, JSON.stringify(body.data.createWorkflow)).toMatchObject({ __typename: 'Workflow' });
  return body.data.createWorkflow.id;
};

const rotate = async (id: string, key: string): Promise<string> => {
  const { body } = await h.gql(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ... on WebhookSecret { secret } ${ERROR} } }`, { id }, key);
  expect(body.data.rotateWebhookSecret.__typename).toBe('WebhookSecret');
  return body.data.rotateWebhookSecret.secret;
};

const runsOf = async (id: string, key: string): Promise<{ id: string; status: string }[]> => {
  const { body } = await h.gql(`query($id: ID!) { workflowRuns(workflowId: $id) { edges { node { id status } } } }`, { id }, key);
  expect(body.errors).toBeUndefined();
  return body.data.workflowRuns.edges.map((edge: { node: { id: string; status: string } }) => edge.node);
};

const finished = async (runId: string, key: string) => {
  const until = Date.now() + 20_000;
  for (;;) {
    const { body } = await h.gql(`query($id: ID!) { workflowRun(id: $id) { id status output } }`, { id: runId }, key);
    const run = body.data?.workflowRun;
    if (run && run.status !== 'RUNNING' && run.status !== 'QUEUED') return run;
    if (Date.now() > until) throw new Error(`run ${runId} did not end: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

const webhook = (respond: 'sync' | 'async') => ({
  name: `Hook ${respond}`,
  trigger: { type: 'webhook', respond },
  steps: [
    { key: 'shout', type: 'action.transform', input: { expression: '=$uppercase(trigger.body.name)' } },
    { key: 'reply', type: 'action.respond', input: { status: 201, body: { greeting: '="Hello, " & steps.shout', via: '=trigger.type' } } },
  ],
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

beforeAll(async () => {
  h = await startHarness();
  designer = await open(h.gql, 'Wendy Webhook');
  stranger = await open(h.gql, 'Oscar Other');
});
afterAll(async () => {
  await h.stop();
});

describe('webhook trigger', () => {
  it('a sync webhook answers with the respond step’s status and body', async () => {
    const id = await createWorkflow(webhook('sync'), designer.key);
    const secret = await rotate(id, designer.key);
    const res = await post(`/api/v1/workflows/${id}/webhook`, { name: 'Ada' }, { 'x-switchyard-webhook-secret': secret });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ greeting: 'Hello, ADA', via: 'webhook' });
    expect(res.headers.get('x-switchyard-run-id')).toMatch(/^run_/);
    // A page of another origin may read the run id: every header of Switchyard's own on the answer is exposed.
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(',').map((name) => name.trim());
    const own = [...res.headers.keys()].filter((name) => name.startsWith('x-'));
    expect(own).toContain('x-switchyard-run-id');
    expect(exposed).toEqual(expect.arrayContaining(own));
  });

  it('an async webhook answers 202 with the run at once, and the run finishes', async () => {
    const id = await createWorkflow(webhook('async'), designer.key);
    const secret = await rotate(id, designer.key);
    const res = await post(`/api/v1/workflows/${id}/webhook`, { name: 'Bo' }, { 'x-switchyard-webhook-secret': secret });
    expect(res.status).toBe(202);
    const started = await res.json();
    expect(started).toMatchObject({ id: expect.stringMatching(/^run_/), status: 'running' });
    const run = await finished(started.id, designer.key);
    expect(run).toMatchObject({ status: 'SUCCEEDED', output: { status: 201, body: { greeting: 'Hello, BO', via: 'webhook' } } });
  });

  it('refuses a wrong, a missing, or a not yet rotated secret with 401, and starts no run', async () => {
    const id = await createWorkflow(webhook('async'), designer.key);
    const unrotated = await post(`/api/v1/workflows/${id}/webhook`, { name: 'x' }, { 'x-switchyard-webhook-secret': 'whsec_guess' });
    expect(unrotated.status).toBe(401);
    const secret = await rotate(id, designer.key);
    const wrong = await post(`/api/v1/workflows/${id}/webhook`, { name: 'x' }, { 'x-switchyard-webhook-secret': `${secret}x` });
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).error).toMatchObject({ code: 401, metadata: { error_type: expect.any(String) } });
    const missing = await post(`/api/v1/workflows/${id}/webhook`, { name: 'x' });
    expect(missing.status).toBe(401);
    // An API key of the owner is not the webhook's secret.
    const apiKey = await post(`/api/v1/workflows/${id}/webhook`, { name: 'x' }, { authorization: `Bearer ${designer.key}` });
    expect(apiKey.status).toBe(401);
    expect(await runsOf(id, designer.key)).toEqual([]);
  });

  it('a manual workflow has no webhook (404), and a disabled one answers 409', async () => {
    const manual = await createWorkflow({ ...webhook('sync'), trigger: { type: 'manual' } }, designer.key);
    expect((await post(`/api/v1/workflows/${manual}/webhook`, {}, { 'x-switchyard-webhook-secret': 'whsec_x' })).status).toBe(404);
    const id = await createWorkflow(webhook('sync'), designer.key);
    const secret = await rotate(id, designer.key);
    await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', { id }, designer.key);
    expect((await post(`/api/v1/workflows/${id}/webhook`, { name: 'x' }, { 'x-switchyard-webhook-secret': secret })).status).toBe(409);
  });

  it('a sync webhook answers a failed run 502 with the run’s error, and a filtered one 204', async () => {
    const failing = await createWorkflow(
      { ...webhook('sync'), steps: [{ key: 'boom', type: 'action.transform', input: { expression: '=$error("no such customer")' } }, { key: 'reply', type: 'action.respond', input: { value: '=steps.boom' } }] },
      designer.key,
    );
    const failingSecret = await rotate(failing, designer.key);
    const failed = await post(`/api/v1/workflows/${failing}/webhook`, { name: 'x' }, { 'x-switchyard-webhook-secret': failingSecret });
    expect(failed.status).toBe(502);
    const { error } = await failed.json();
    expect(error).toMatchObject({ code: 502, metadata: { run_status: 'failed', run_id: failed.headers.get('x-switchyard-run-id') } });
    expect(error.message).toContain('no such customer');

    const filtering = await createWorkflow(
      { ...webhook('sync'), steps: [{ key: 'only_vip', type: 'control.filter', input: { condition: '=trigger.body.vip = true' } }, { key: 'reply', type: 'action.respond', input: { ok: true } }] },
      designer.key,
    );
    const filteringSecret = await rotate(filtering, designer.key);
    const filtered = await post(`/api/v1/workflows/${filtering}/webhook`, { name: 'x', vip: false }, { 'x-switchyard-webhook-secret': filteringSecret });
    expect(filtered.status).toBe(204);
    expect(await filtered.text()).toBe('');
  });

  it('refuses malformed JSON (400), a body over MAX_BODY_BYTES (413) and a bad Idempotency-Key (400), starting no run', async () => {
    const id = await createWorkflow(webhook('async'), designer.key);
    const secret = await rotate(id, designer.key);
    const url = `${h.url}/api/v1/workflows/${id}/webhook`;
    const headers = { 'content-type': 'application/json', 'x-switchyard-webhook-secret': secret };
    expect((await fetch(url, { method: 'POST', headers, body: '{"name":' })).status).toBe(400);
    expect((await fetch(url, { method: 'POST', headers, body: JSON.stringify({ pad: 'x'.repeat(2_000_000) }) })).status).toBe(413);
    expect((await fetch(url, { method: 'POST', headers: { ...headers, 'idempotency-key': 'x'.repeat(300) }, body: '{}' })).status).toBe(400);
    expect(await runsOf(id, designer.key)).toEqual([]);
  });

  it('refuses a body that is not valid UTF-8 (400, not altered into U+FFFD) and a charset other than UTF-8 (415), starting no run; a leading byte-order mark is read past', async () => {
    const id = await createWorkflow(webhook('sync'), designer.key);
    const secret = await rotate(id, designer.key);
    const url = `${h.url}/api/v1/workflows/${id}/webhook`;
    const headers = { 'content-type': 'application/json', 'x-switchyard-webhook-secret': secret };
    const send = async (body: Buffer, extra: Record<string, string> = {}) => {
      const res = await fetch(url, { method: 'POST', headers: { ...headers, ...extra }, body: new Uint8Array(body) });
      return { status: res.status, body: (await res.json()) as { error?: { message: string; metadata: Record<string, unknown> } } & Record<string, unknown> };
    };
    // Bytes that are no UTF-8 (FF FE), an overlong "/" (C0 AF) and a lone surrogate (ED A0 80), inside {"name":"…"}.
    for (const [bad, offset] of [[Buffer.from([0xff, 0xfe]), 9], [Buffer.from([0x41, 0xc0, 0xaf]), 10], [Buffer.from([0xed, 0xa0, 0x80]), 9]] as const) {
      const answer = await send(Buffer.concat([Buffer.from('{"name":"'), bad, Buffer.from('"}')]));
      expect(answer, bad.toString('hex')).toMatchObject({ status: 400, body: { error: { metadata: { error_type: 'invalid_request', offset } } } });
      expect(answer.body.error!.message).toMatch(new RegExp(`^The request body is not valid UTF-8 \\(a byte sequence at offset ${offset}\\)`));
    }
    for (const charset of ['utf-16', 'ISO-8859-1', '"utf-16le"']) {
      const answer = await send(Buffer.from('{"name":"Ada"}'), { 'content-type': `application/json; charset=${charset}` });
      expect(answer, charset).toMatchObject({ status: 415, body: { error: { metadata: { error_type: 'invalid_request', charset: charset.replaceAll('"', '').toLowerCase() } } } });
      expect(answer.body.error!.message).toMatch(/charset .* is not supported: send the body in UTF-8/);
    }
    expect(await runsOf(id, designer.key)).toEqual([]);
    // UTF-8 under any spelling of its name, and a byte-order mark before the JSON, are read as sent.
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    for (const [body, extra] of [
      [Buffer.concat([bom, Buffer.from('{"name":"Zoë"}')]), {}],
      [Buffer.from('{"name":"Zoë"}'), { 'content-type': 'application/json; charset=UTF-8' }],
      [Buffer.from('{"name":"Zoë"}'), { 'content-type': 'application/json;charset="utf8"' }],
    ] as const) {
      expect(await send(body, extra)).toEqual({ status: 201, body: { greeting: 'Hello, ZOË', via: 'webhook' } });
    }
  });

  it('a deleted workflow’s webhook is 404, and the same Idempotency-Key on two workflows starts two runs', async () => {
    const first = await createWorkflow(webhook('async'), designer.key);
    const second = await createWorkflow(webhook('async'), designer.key);
    const [a, b] = [await rotate(first, designer.key), await rotate(second, designer.key)];
    const runA = await (await post(`/api/v1/workflows/${first}/webhook`, {}, { 'x-switchyard-webhook-secret': a, 'idempotency-key': 'same' })).json();
    const runB = await (await post(`/api/v1/workflows/${second}/webhook`, {}, { 'x-switchyard-webhook-secret': b, 'idempotency-key': 'same' })).json();
    expect(runA.id).not.toBe(runB.id);
    await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id: first }, designer.key);
    expect((await post(`/api/v1/workflows/${first}/webhook`, {}, { 'x-switchyard-webhook-secret': a })).status).toBe(404);
  });

  it('a replayed Idempotency-Key answers the same run, and only one run exists', async () => {
    const id = await createWorkflow(webhook('async'), designer.key);
    const secret = await rotate(id, designer.key);
    const headers = { 'x-switchyard-webhook-secret': secret, 'idempotency-key': 'delivery-42' };
    const answers = await Promise.all([1, 2, 3].map(() => post(`/api/v1/workflows/${id}/webhook`, { name: 'Cy' }, headers)));
    const ids = await Promise.all(answers.map(async (res) => (expect(res.status).toBe(202), (await res.json()).id as string)));
    expect(new Set(ids).size).toBe(1);
    await finished(ids[0]!, designer.key);
    const again = await post(`/api/v1/workflows/${id}/webhook`, { name: 'Cy' }, headers);
    expect(await again.json()).toEqual({ id: ids[0], status: 'succeeded' });
    const other = await post(`/api/v1/workflows/${id}/webhook`, { name: 'Cy' }, { ...headers, 'idempotency-key': 'delivery-43' });
    expect((await other.json()).id).not.toBe(ids[0]);
    expect((await runsOf(id, designer.key)).length).toBe(2);

    // The key with another body is a mistake, answered as one (not with the first call's run).
    const reused = await post(`/api/v1/workflows/${id}/webhook`, { name: 'Someone else' }, headers);
    expect(reused.status).toBe(409);
    expect(await reused.json()).toMatchObject({ error: { message: expect.stringMatching(/was started by an earlier call with this key and another trigger/) } });
    // A retry of the first call still gets its run after the workflow is disabled (its answer, not "disabled").
    const disabled = await h.gql(`mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }`, { id }, designer.key);
    expect(disabled.body.data.disableWorkflow.__typename).toBe('Workflow');
    const retried = await post(`/api/v1/workflows/${id}/webhook`, { name: 'Cy' }, headers);
    expect(retried.status).toBe(202);
    expect(await retried.json()).toEqual({ id: ids[0], status: 'succeeded' });
    expect((await post(`/api/v1/workflows/${id}/webhook`, { name: 'Cy' }, { ...headers, 'idempotency-key': 'delivery-44' })).status).toBe(409);
    expect((await runsOf(id, designer.key)).length).toBe(2);
  });
});

describe('numbers JSON cannot hold', () => {
  const refusal = (path: string) => `Invalid run input at ${path}: not a finite number (JSON cannot hold it)`;
  const rawGql = async (body: string) =>
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
    (await (await fetch(`${h.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${designer.key}` }, body })).json()) as any;

  it('a webhook body or a manual run input with 1e999 (JSON.parse: Infinity, an expression saw null) is a 400 / VALIDATION naming the place, and starts no run', async () => {
    const hook = await createWorkflow(webhook('sync'), designer.key);
    const secret = await rotate(hook, designer.key);
    const manual = await createWorkflow({ ...webhook('sync'), trigger: { type: 'manual' } }, designer.key);
    const send = (url: string, body: string, headers: Record<string, string>) => fetch(`${h.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    for (const [body, path] of [
      ['{"name":"Ada","a":{"b":1e999}}', 'body.a.b'],
      ['{"name":"Ada","list":[1,-1e999]}', 'body.list[1]'],
      ['1e400', 'body'],
    ] as const) {
      for (const headers of [{ 'x-switchyard-webhook-secret': secret }, { 'x-switchyard-webhook-secret': secret, 'idempotency-key': `hook-${path}` }] as Record<string, string>[]) {
        const res = await send(`/api/v1/workflows/${hook}/webhook`, body, headers);
        expect(res.status, body).toBe(400);
        expect(await res.json(), body).toMatchObject({ error: { code: 400, message: refusal(path), metadata: { reason: 'not_finite', path } } });
      }
      for (const headers of [{ authorization: `Bearer ${designer.key}` }, { authorization: `Bearer ${designer.key}`, 'idempotency-key': `manual-${path}` }] as Record<string, string>[]) {
        const res = await send(`/api/v1/workflows/${manual}/runs`, body, headers);
        expect(res.status, body).toBe(400);
        expect(await res.json(), body).toMatchObject({ error: { code: 400, message: refusal(path), metadata: { reason: 'not_finite', path } } });
      }
      for (const key of ['null', `"gql-${path}"`]) {
        const answer = await rawGql(`{"query":"mutation($id: ID!, $input: JSON, $k: String) { runWorkflow(id: $id, input: $input, idempotencyKey: $k) { __typename ... on DomainError { code message details } } }","variables":{"id":"${manual}","input":${body},"k":${key}}}`);
        expect(answer.data.runWorkflow, body).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: refusal(path), details: { reason: 'not_finite', path } });
      }
    }
    const literal = await rawGql(JSON.stringify({ query: `mutation { runWorkflow(id: "${manual}", input: { name: "Ada", a: { b: 1e999 } }) { __typename ... on DomainError { code details } } }` }));
    expect(literal.data.runWorkflow).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { reason: 'not_finite', path: 'body.a.b' } });
    expect(await runsOf(hook, designer.key)).toEqual([]);
    expect(await runsOf(manual, designer.key)).toEqual([]);
    // The largest finite double still starts its run.
    const kept = await send(`/api/v1/workflows/${hook}/webhook`, '{"name":"Ada","n":1.5e308}', { 'x-switchyard-webhook-secret': secret });
    expect(kept.status).toBe(201);
  });
});

describe('REST manual runs', () => {
  it('starts a run with an API key of the owning account (202), the body as its input', async () => {
    const id = await createWorkflow({ ...webhook('sync'), trigger: { type: 'manual' } }, designer.key);
    const res = await post(`/api/v1/workflows/${id}/runs`, { name: 'Di' }, { authorization: `Bearer ${designer.key}` });
    expect(res.status).toBe(202);
    const started = await res.json();
    expect(started).toMatchObject({ id: expect.stringMatching(/^run_/), workflow_id: id, status: 'running' });
    const run = await finished(started.id, designer.key);
    expect(run.output).toEqual({ status: 201, body: { greeting: 'Hello, DI', via: 'manual' } });
  });

  it('answers another account 404 like a missing workflow, and no key 401', async () => {
    const id = await createWorkflow({ ...webhook('sync'), trigger: { type: 'manual' } }, designer.key);
    const other = await post(`/api/v1/workflows/${id}/runs`, { name: 'x' }, { authorization: `Bearer ${stranger.key}` });
    expect(other.status).toBe(404);
    const missing = await post(`/api/v1/workflows/wf_doesnotexist/runs`, { name: 'x' }, { authorization: `Bearer ${stranger.key}` });
    expect(missing.status).toBe(404);
    expect((await other.json()).error.message.replace(id, 'ID')).toBe((await missing.json()).error.message.replace('wf_doesnotexist', 'ID'));
    expect((await post(`/api/v1/workflows/${id}/runs`, {})).status).toBe(401);
    expect(await runsOf(id, designer.key)).toEqual([]);
  });
});

describe('Idempotency-Key on manual runs (REST header, GraphQL idempotencyKey)', () => {
  const manual = () => ({ ...webhook('sync'), name: 'Manual once', trigger: { type: 'manual' } });
  const RUN = `__typename ... on WorkflowRun { id status } ${ERROR}`;
  const runOverGraphql = async (id: string, input: unknown, idempotencyKey: string | null, key: string) =>
    (await h.gql(`mutation($id: ID!, $input: JSON, $k: String) { runWorkflow(id: $id, input: $input, idempotencyKey: $k) { ${RUN} } }`, { id, input, k: idempotencyKey }, key)).body.data.runWorkflow;
  const runOverRest = (id: string, input: unknown, idempotencyKey: string, key: string) =>
    post(`/api/v1/workflows/${id}/runs`, input, { authorization: `Bearer ${key}`, 'idempotency-key': idempotencyKey });

  it('concurrent duplicates over REST and GraphQL start one run, and all answer it', async () => {
    const id = await createWorkflow(manual(), designer.key);
    const calls = await Promise.all([
      ...[1, 2, 3, 4].map(async () => {
        const res = await runOverRest(id, { name: 'Eve' }, 'order-7', designer.key);
        expect(res.status).toBe(202);
        return (await res.json()).id as string;
      }),
      ...[1, 2, 3, 4].map(async () => {
        const run = await runOverGraphql(id, { name: 'Eve' }, 'order-7', designer.key);
        expect(run.__typename).toBe('WorkflowRun');
        return run.id as string;
      }),
    ]);
    expect(new Set(calls).size).toBe(1);
    expect((await finished(calls[0]!, designer.key)).output).toEqual({ status: 201, body: { greeting: 'Hello, EVE', via: 'manual' } });
    expect(await runsOf(id, designer.key)).toEqual([{ id: calls[0], status: 'SUCCEEDED' }]);
    // Later, the same call answers the same run as it is now.
    const again = await runOverRest(id, { name: 'Eve' }, 'order-7', designer.key);
    expect(await again.json()).toMatchObject({ id: calls[0], status: 'succeeded' });
    expect(await runOverGraphql(id, { name: 'Eve' }, 'order-7', designer.key)).toEqual({ __typename: 'WorkflowRun', id: calls[0], status: 'SUCCEEDED' });
    expect((await runsOf(id, designer.key)).length).toBe(1);
  });

  it('the key with another body is a 409 (CONFLICT), a retry gets its run once the workflow is disabled, and a deleted one is 404', async () => {
    const id = await createWorkflow(manual(), designer.key);
    const first = await (await runOverRest(id, { name: 'Flo' }, 'k-1', designer.key)).json();
    const reused = await runOverRest(id, { name: 'Someone else' }, 'k-1', designer.key);
    expect(reused.status).toBe(409);
    expect((await reused.json()).error.message).toMatch(/was started by an earlier call with this key and another trigger/);
    expect(await runOverGraphql(id, { name: 'Someone else' }, 'k-1', designer.key)).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
    // No input is another body too.
    expect(await runOverGraphql(id, null, 'k-1', designer.key)).toMatchObject({ code: 'CONFLICT' });
    expect((await runsOf(id, designer.key)).map((run) => run.id)).toEqual([first.id]);

    await finished(first.id, designer.key);
    await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', { id }, designer.key);
    const retried = await runOverRest(id, { name: 'Flo' }, 'k-1', designer.key);
    expect(retried.status).toBe(202);
    expect(await retried.json()).toMatchObject({ id: first.id, status: 'succeeded' });
    expect(await runOverGraphql(id, { name: 'Flo' }, 'k-1', designer.key)).toMatchObject({ id: first.id });
    // A new key is a new run, which a disabled workflow does not start.
    expect((await runOverRest(id, { name: 'Flo' }, 'k-2', designer.key)).status).toBe(409);
    expect(await runOverGraphql(id, { name: 'Flo' }, 'k-2', designer.key)).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('disabled') });

    await h.gql('mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }', { id }, designer.key);
    expect((await runOverRest(id, { name: 'Flo' }, 'k-1', designer.key)).status).toBe(404);
  });

  it('keys are per workflow and per calling account: the same key elsewhere starts its own run, and a stranger still gets 404', async () => {
    const id = await createWorkflow(manual(), designer.key);
    const other = await createWorkflow(manual(), designer.key);
    const mine = await (await runOverRest(id, { name: 'Gus' }, 'shared', designer.key)).json();
    const elsewhere = await (await runOverRest(other, { name: 'Gus' }, 'shared', designer.key)).json();
    // An admin may run the account's workflow: its key is its own, not the owner's.
    const admin = await runOverGraphql(id, { name: 'Gus' }, 'shared', ADMIN_KEY);
    expect(new Set([mine.id, elsewhere.id, admin.id]).size).toBe(3);
    expect((await runOverRest(id, { name: 'Gus' }, 'shared', stranger.key)).status).toBe(404);
    const strangers = await h.gql(`mutation($id: ID!) { runWorkflow(id: $id, input: {name: "Gus"}, idempotencyKey: "shared") { ${RUN} } }`, { id }, stranger.key);
    expect(strangers.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // The webhook's keys are the webhook's: a manual run's key does not answer a webhook call, nor the reverse.
    const hook = await createWorkflow(webhook('async'), designer.key);
    const secret = await rotate(hook, designer.key);
    const manualRun = await (await runOverRest(hook, { name: 'Gus' }, 'shared', designer.key)).json();
    const hookRun = await (await post(`/api/v1/workflows/${hook}/webhook`, { name: 'Gus' }, { 'x-switchyard-webhook-secret': secret, 'idempotency-key': 'shared' })).json();
    expect(hookRun.id).not.toBe(manualRun.id);
    expect((await runsOf(id, designer.key)).length).toBe(2);
  });

  it("keys are per API key: another key of the account sending the same key is never answered this key's run, nor told it was used, nor holds it up", async () => {
    const key = async (limited: boolean) =>
      (await h.gql(`mutation { createApiKey(name: "second"${limited ? ', limit: 100000000, limitReset: NEVER' : ''}) { ... on CreatedApiKey { secret } } }`, {}, designer.key)).body.data.createApiKey.secret as string;
    const app = await key(true);
    const other = await key(false);
    const id = await createWorkflow(manual(), designer.key);
    const started = async (input: unknown, idempotencyKey: string, caller: string) => {
      const res = await runOverRest(id, input, idempotencyKey, caller);
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(202);
      return body.id as string;
    };

    // The same key and body: the app's key starts its own run (over REST and GraphQL alike), and so does another full key.
    const owners = await started({ name: 'Ida' }, 'order-9', designer.key);
    const apps = await started({ name: 'Ida' }, 'order-9', app);
    expect(apps).not.toBe(owners);
    expect(await runOverGraphql(id, { name: 'Ida' }, 'order-9', app)).toMatchObject({ __typename: 'WorkflowRun', id: apps });
    const others = await started({ name: 'Ida' }, 'order-9', other);
    expect(new Set([owners, apps, others]).size).toBe(3);
    // Each key's retry still answers its own run.
    expect(await started({ name: 'Ida' }, 'order-9', designer.key)).toBe(owners);
    expect(await started({ name: 'Ida' }, 'order-9', app)).toBe(apps);

    // Another body under the owner's key is no CONFLICT for the app's key: it tells nothing of the owner's call.
    const ownersTen = await started({ name: 'Ida' }, 'order-10', designer.key);
    const appsTen = await started({ name: 'Someone else' }, 'order-10', app);
    expect(appsTen).not.toBe(ownersTen);
    expect(await runOverGraphql(id, { name: 'Yet another' }, 'order-10', other)).toMatchObject({ __typename: 'WorkflowRun' });

    // A key the app claims first does not hold up the owner's call with it.
    await started({ name: 'Jo' }, 'order-11', app);
    const ownersEleven = await started({ name: 'Kim' }, 'order-11', designer.key);
    expect((await finished(ownersEleven, designer.key)).output).toEqual({ status: 201, body: { greeting: 'Hello, KIM', via: 'manual' } });
    // Within its own key a key is as before: another body is a CONFLICT.
    expect((await runOverRest(id, { name: 'Other' }, 'order-11', app)).status).toBe(409);
  });

  it('refuses a key that is not 1 to 255 visible ASCII characters (400, VALIDATION), saying what is allowed, starting no run', async () => {
    const id = await createWorkflow(manual(), designer.key);
    const long = await runOverRest(id, { name: 'x' }, 'x'.repeat(256), designer.key);
    expect(long.status).toBe(400);
    expect((await long.json()).error).toMatchObject({ code: 400, metadata: { error_type: 'invalid_request', header: 'idempotency-key' } });
    expect((await runOverRest(id, { name: 'x' }, 'x'.repeat(255), designer.key)).status).toBe(202);
    for (const bad of ['', 'x'.repeat(256), 'with space', 'é']) {
      expect(await runOverGraphql(id, { name: 'x' }, bad, designer.key), JSON.stringify(bad)).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringContaining('1 to 255 visible ASCII characters: letters, digits and punctuation (! to ~), no spaces') });
    }
    expect((await runsOf(id, designer.key)).length).toBe(1);
  });
});

/**
 * The key a triggered run spends under, on the started app over GraphQL and REST: a run started because of a key's
 * table write (an `entry` trigger), of its model call (an `event` trigger), or of another run (an emitted event) is
 * that key's run, as a run the key starts directly is: its model calls count against the key's limit and usage, and
 * are refused once the limit is spent or the key revoked. A schedule has no key: the account pays, as before. The key
 * is read from the events, so a run fired after a restart is the same key's.
 */
import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/eventStore/sqliteEventStore.js';
import { tableStream } from '../../src/modules/tables/table.events.js';
import { startHarness, type Harness } from '../support/appHarness.js';
import { eventually } from '../support/eventually.js';

const ERROR = '... on DomainError { code message }';
const RUN = 'id status cost error { code message } steps { key status output error { code message } }';
type Run = { id: string; status: string; cost: number; error: { code: string; message: string } | null; steps: { key: string; status: string; output: any; error: { code: string; message: string } | null }[] };

let h: Harness;
/** The first harness's data directory, which the restart reuses (removed at the end). */
let dataDir: string;
let owner: { id: string; key: string; keyId: string };
/** An HTTP target whose answers wait until the test lets them go (a run held at a known step). */
let target: { server: Server; url: string; waiting: ServerResponse[]; release: () => void };

const open = async (name: string) => {
  const { body } = await h.gql(`mutation($name: String!) { openAccount(name: $name, roles: [USER, DESIGNER]) { ... on OpenAccountPayload { account { id } initialKey { secret key { id } } } } }`, { name });
  const payload = body.data.openAccount;
  await h.gql('mutation($id: ID!) { grantCredits(accountId: $id, amount: 1000000000, reason: "test") { __typename } }', { id: payload.account.id });
  return { id: payload.account.id as string, key: payload.initialKey.secret as string, keyId: payload.initialKey.key.id as string };
};

const createKey = async (name: string, limit: number | null) => {
  const { body } = await h.gql(
    `mutation($n: String!, $l: Money) { createApiKey(name: $n, limit: $l, limitReset: NEVER) { ... on CreatedApiKey { secret key { id } } ${ERROR} } }`,
    { n: name, l: limit },
    owner.key,
  );
  expect(body.data.createApiKey.secret, JSON.stringify(body)).toBeTruthy();
  return { secret: body.data.createApiKey.secret as string, id: body.data.createApiKey.key.id as string };
};

const createWorkflow = async (definition: unknown): Promise<string> => {
  const { body } = await h.gql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition }, owner.key);
  expect(body.data.createWorkflow, JSON.stringify(body.data.createWorkflow)).toMatchObject({ __typename: 'Workflow' });
  return body.data.createWorkflow.id;
};

const runs = async (workflowId: string): Promise<Run[]> => {
  const { body } = await h.gql(`query($id: ID!) { workflowRuns(workflowId: $id, first: 20) { edges { node { ${RUN} } } } }`, { id: workflowId }, owner.key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.workflowRuns.edges.map((edge: { node: Run }) => edge.node);
};
/** The workflow's `count` runs, once they have all ended, in the order they began. */
const ended = (workflowId: string, count: number) =>
  eventually(`${count} ended runs of ${workflowId}`, async () => {
    const found = await runs(workflowId);
    return found.length === count && found.every((run) => run.status !== 'RUNNING' && run.status !== 'QUEUED') && found;
  });

const keyUsage = async (keyId: string): Promise<number> => {
  const { body } = await h.gql('query($id: ID!) { apiKey(id: $id) { usage { lifetime } } }', { id: keyId }, owner.key);
  return Number(body.data.apiKey.usage.lifetime);
};
/** The key a generation was made (and charged) under. */
const generationKey = async (generationId: string): Promise<string | null> => {
  const { body } = await h.gql('query($id: ID!) { generation(id: $id) { keyId } }', { id: generationId }, owner.key);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data.generation.keyId;
};

const insertGraphql = async (table: string, entry: unknown, key: string) => {
  const { body } = await h.gql(`mutation($t: String!, $e: JSON!) { insertEntry(table: $t, entry: $e) { __typename ${ERROR} } }`, { t: table, e: entry }, key);
  expect(body.data.insertEntry.__typename, JSON.stringify(body)).toBe('Entry');
};
const insertRest = async (table: string, entry: unknown, key: string) => {
  const res = await fetch(`${h.url}/api/v1/tables/${table}/entries`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(entry) });
  expect(res.status, await res.clone().text()).toBe(201);
};

/** One paid model call of at most 50 tokens: its reservation (~31,000 n$) fits a 40,000 n$ limit once. */
const paidCall = (key = 'answer', prompt = '=trigger.entry.q') => ({ key, type: 'action.model', input: { model: 'switchyard/demo-paid', prompt, maxTokens: 50 } });
const LIMIT = 40_000;

beforeAll(async () => {
  h = await startHarness({ WORKFLOW_MIN_SCHEDULE_SECONDS: '1' });
  dataDir = h.dataDir;
  owner = await open('Lena Limits');
  const waiting: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    waiting.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target = {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    waiting,
    release: () => {
      for (const res of waiting.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    },
  };
});
afterAll(async () => {
  target?.release();
  await new Promise((resolve) => target?.server.close(resolve));
  await h?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the key a triggered run spends under', () => {
  it("a limited key's table inserts (GraphQL and REST) fire runs charged to the key while within its limit, refused with KEY_LIMIT_REACHED once it is spent", { timeout: 60_000 }, async () => {
    await h.gql('mutation { createTable(name: "spend") { __typename } }', {}, owner.key);
    const workflowId = await createWorkflow({ name: 'On spend', trigger: { type: 'entry', table: 'spend', on: 'insert' }, steps: [paidCall()] });
    const limited = await createKey('tiny', LIMIT);

    // One insert at a time, each run ended before the next, until a run is refused (a few at most: each call costs).
    let all: Run[] = [];
    for (let i = 0; i < 6 && !all.some((run) => run.status === 'FAILED'); i++) {
      await (i % 2 === 0 ? insertGraphql : insertRest)('spend', { q: `question ${i}` }, limited.secret);
      all = await ended(workflowId, i + 1);
    }
    const succeeded = all.filter((run) => run.status === 'SUCCEEDED');
    const failed = all.filter((run) => run.status === 'FAILED');
    expect(succeeded.length).toBeGreaterThan(0);
    expect(failed).toHaveLength(1);
    expect(all.at(-1)!.status).toBe('FAILED');
    expect(failed[0]!.error?.code).toBe('KEY_LIMIT_REACHED');
    expect(failed[0]!.steps[0]!.error?.code).toBe('KEY_LIMIT_REACHED');
    expect(failed[0]!.cost).toBe(0);

    // Each answered call was made under the key, and what they cost is the key's usage, within its limit.
    for (const run of succeeded) expect(await generationKey(run.steps[0]!.output.generationId)).toBe(limited.id);
    const spent = succeeded.reduce((sum, run) => sum + run.cost, 0);
    expect(spent).toBeGreaterThan(0);
    await eventually('the key usage', async () => (await keyUsage(limited.id)) === spent);
    expect(spent).toBeLessThanOrEqual(LIMIT);

    // The account's unlimited key inserting into the same table: its run is its own, and not limited.
    await insertGraphql('spend', { q: 'from the full key' }, owner.key);
    const afterFull = await ended(workflowId, all.length + 1);
    const full = afterFull.at(-1)!;
    expect(full.status).toBe('SUCCEEDED');
    expect(await generationKey(full.steps[0]!.output.generationId)).toBe(owner.keyId);
    expect(await keyUsage(limited.id)).toBe(spent);
  });

  it("a run started because of the key's model call (generation.completed), and a run started by that run (an emitted event), spend under the key", { timeout: 60_000 }, async () => {
    const key = await createKey('caller', 1_000_000);
    const onCall = await createWorkflow({
      name: 'On a demo answer',
      trigger: { type: 'event', event: 'generation.completed', filter: { model: 'switchyard/demo' } },
      steps: [paidCall('answer', '="about " & trigger.id'), { key: 'tell', type: 'action.emit', input: { event: 'custom.answered', data: { id: '=trigger.id' } } }],
    });
    const onEmit = await createWorkflow({ name: 'On answered', trigger: { type: 'event', event: 'custom.answered' }, steps: [paidCall('again', '="again " & trigger.data.id')] });

    const { body } = await h.gql('mutation { sendPrompt(input: { model: "switchyard/demo", prompt: "hello" }) { ... on SendPromptResult { generationId } } }', {}, key.secret);
    expect(body.data.sendPrompt.generationId).toBeTruthy();
    const [first] = await ended(onCall, 1);
    const [second] = await ended(onEmit, 1);
    expect(first!.status).toBe('SUCCEEDED');
    expect(second!.status).toBe('SUCCEEDED');
    expect(await generationKey(first!.steps[0]!.output.generationId)).toBe(key.id);
    expect(await generationKey(second!.steps[0]!.output.generationId)).toBe(key.id);
    await eventually('the key usage', async () => (await keyUsage(key.id)) === first!.cost + second!.cost);
  });

  it('a run whose key is revoked before its model step fails that step UNAUTHENTICATED, charged nothing: started by the key, or by its insert', { timeout: 60_000 }, async () => {
    await h.gql('mutation { createTable(name: "held") { __typename } }', {}, owner.key);
    const steps = [{ key: 'wait', type: 'action.http', input: { url: `${target.url}/hold`, body: { q: 'x' } } }, paidCall('answer', 'after the wait')];
    const onEntry = await createWorkflow({ name: 'Held on entry', trigger: { type: 'entry', table: 'held', on: 'insert' }, steps });
    const manual = await createWorkflow({ name: 'Held, manual', trigger: { type: 'manual' }, steps });

    for (const start of ['insert', 'runWorkflow'] as const) {
      const key = await createKey(`doomed-${start}`, 1_000_000);
      const workflowId = start === 'insert' ? onEntry : manual;
      if (start === 'insert') await insertGraphql('held', { q: 'x' }, key.secret);
      else expect((await h.gql(`mutation($id: ID!) { runWorkflow(id: $id) { __typename ${ERROR} } }`, { id: manual }, key.secret)).body.data.runWorkflow.__typename).toBe('WorkflowRun');
      // The run is at its HTTP step: revoke the key, then let the step answer.
      await eventually('the run waiting at its HTTP step', () => target.waiting.length === 1);
      const revoked = await h.gql('mutation($id: ID!) { revokeApiKey(id: $id) { __typename ... on ApiKey { status } } }', { id: key.id }, owner.key);
      expect(revoked.body.data.revokeApiKey).toEqual({ __typename: 'ApiKey', status: 'REVOKED' });
      target.release();

      const [run] = await ended(workflowId, 1);
      expect(run!.status, start).toBe('FAILED');
      expect(run!.steps.map((step) => [step.key, step.status])).toEqual([
        ['wait', 'SUCCEEDED'],
        ['answer', 'FAILED'],
      ]);
      expect(run!.steps[1]!.error).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/revoked/) });
      expect(run!.cost).toBe(0);
      expect(await keyUsage(key.id)).toBe(0);
    }
  });

  it('a schedule has no key: its runs are charged to the account alone, as before', { timeout: 60_000 }, async () => {
    const workflowId = await createWorkflow({ name: 'Tick', trigger: { type: 'schedule', cron: '* * * * * *', timezone: 'UTC', catchUp: 'none' }, steps: [paidCall('answer', 'tick')] });
    const run = await eventually('a scheduled run that ended', async () => (await runs(workflowId)).find((found) => found.status !== 'RUNNING' && found.status !== 'QUEUED'));
    await h.gql('mutation($id: ID!) { disableWorkflow(id: $id) { __typename } }', { id: workflowId }, owner.key);
    expect(run.status).toBe('SUCCEEDED');
    expect(await generationKey(run.steps[0]!.output.generationId)).toBeNull();
  });

  it('an entry written while the server was down fires, after the restart, a run under the key that wrote it (read from the event)', { timeout: 60_000 }, async () => {
    await h.gql('mutation { createTable(name: "later") { __typename } }', {}, owner.key);
    const tableId = (await h.gql('{ tables { id name } }', {}, owner.key)).body.data.tables.find((t: { name: string }) => t.name === 'later').id as string;
    const workflowId = await createWorkflow({ name: 'Later', trigger: { type: 'entry', table: 'later', on: 'insert' }, steps: [paidCall()] });
    const key = await createKey('writer', 1_000_000);
    await h.stop({ keepData: true });

    // As the tables API records a key's insert (another process's, say), straight into the log.
    const store = openSqliteEventStore({ dir: dataDir });
    const at = new Date().toISOString();
    await store.append(tableStream(owner.id, 'later'), [
      { type: 'EntryAdded', data: { tableId, accountId: owner.id, table: 'later', entryId: 'ent_0whiledown0000', entry: { q: 'while down' }, at }, metadata: { actor: owner.id, keyId: key.id, correlationId: 'req-down', at } },
    ]);
    await store.close();

    h = await startHarness({ WORKFLOW_MIN_SCHEDULE_SECONDS: '1' }, dataDir);
    const [run] = await ended(workflowId, 1);
    expect(run!.status).toBe('SUCCEEDED');
    expect(await generationKey(run!.steps[0]!.output.generationId)).toBe(key.id);
    await eventually('the key usage', async () => (await keyUsage(key.id)) === run!.cost);
  });
});

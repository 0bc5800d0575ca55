/**
 * Workflow times do not depend on the server's local time zone (TZ): Switchyard runs here as its own process under
 * TZ=America/New_York (five hours behind UTC in January), as a host set to that zone would run it.
 * - A `control.delay` `until` is an RFC 3339 date-time with a zone on a day of the calendar, as the GraphQL DateTime
 *   scalar and the REST `expires_at` take it: one without a zone, or on a day that does not exist, is refused when
 *   saved (VALIDATION naming the field) and, made by an expression, fails its step.
 * - JSONata's `$toMillis` reads a time without a zone as UTC (as jsonata's own picture parsing and `$fromMillis` do).
 */
import { describe, expect, it } from 'vitest';
import { spawnedSwitchyards, type SpawnedSwitchyard } from '../support/spawnedServer.js';
import { eventually } from '../support/eventually.js';

const switchyards = spawnedSwitchyards();
const ERROR = '... on DomainError { code message details }';
const RUN = 'status output error { code message } steps { key status error { code message } }';
const NEW_YEAR_2027 = Date.parse('2027-01-01T00:00:00Z');

const createWorkflow = async (server: SpawnedSwitchyard, definition: unknown) =>
  (await server.graphql(`mutation($d: JSON!) { createWorkflow(definition: $d) { __typename ... on Workflow { id } ${ERROR} } }`, { d: definition })).body.data.createWorkflow;

const runToEnd = async (server: SpawnedSwitchyard, id: string) => {
  const started = (await server.graphql(`mutation($id: ID!) { runWorkflow(id: $id) { __typename ... on WorkflowRun { id } ${ERROR} } }`, { id })).body.data.runWorkflow;
  expect(started.__typename, JSON.stringify(started)).toBe('WorkflowRun');
  return eventually(`run ${started.id} to end`, async () => {
    const run = (await server.graphql(`query($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, { id: started.id })).body.data.workflowRun;
    return run.status !== 'RUNNING' && run.status !== 'QUEUED' && run;
  });
};

describe('workflow times under TZ=America/New_York', () => {
  it('reads $toMillis of a time without a zone as UTC, and takes only an until with a zone on a real day', async () => {
    const server = await switchyards.start(switchyards.dataDir('switchyard-tz-'), { env: { TZ: 'America/New_York' } });

    const transform = await createWorkflow(server, {
      name: 'Zones',
      trigger: { type: 'manual' },
      steps: [{ key: 't', type: 'action.respond', input: { local: '=$toMillis("2027-01-01T00:00:00")', fraction: '=$toMillis("2027-01-01T00:00:00.250")', utc: '=$toMillis("2027-01-01T00:00:00Z")', offset: '=$toMillis("2026-12-31T19:00:00-05:00")', day: '=$toMillis("2027-01-01")', back: '=$fromMillis($toMillis("2027-01-01T00:00:00"))' } }],
    });
    expect(transform.__typename, JSON.stringify(transform)).toBe('Workflow');
    expect((await runToEnd(server, transform.id)).output).toEqual({ local: NEW_YEAR_2027, fraction: NEW_YEAR_2027 + 250, utc: NEW_YEAR_2027, offset: NEW_YEAR_2027, day: NEW_YEAR_2027, back: '2027-01-01T00:00:00.000Z' });

    const delay = (until: string) => ({ name: 'Wait', trigger: { type: 'manual' }, steps: [{ key: 'd', type: 'control.delay', input: { until } }] });
    for (const until of ['2027-01-01T00:00:00', '2031-02-30T00:00:00Z', '2031-02-29T00:00:00Z', '2031-04-31T00:00:00Z', '2027-01-01T24:00:00Z', '2027-01-01 00:00:00Z', '2027-01-01']) {
      const refused = await createWorkflow(server, delay(until));
      expect(refused, until).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', details: { path: 'steps[0].input.until' } });
      expect(refused.message, until).toMatch(/zone \(Z or ±hh:mm\) on a day of the calendar/);
    }
    // With a zone, it is the instant it names (past: no wait), whatever TZ says.
    for (const until of ['2020-01-01T00:00:00Z', '2019-12-31T19:00:00-05:00', '2020-02-29t00:00:00z']) {
      const saved = await createWorkflow(server, delay(until));
      expect(saved.__typename, `${until}: ${JSON.stringify(saved)}`).toBe('Workflow');
      expect((await runToEnd(server, saved.id)).status, until).toBe('SUCCEEDED');
    }
    // Made by an expression, the same rule holds when the step runs.
    const computed = await createWorkflow(server, delay('="2027-01-01T00:00:00"'));
    const failed = await runToEnd(server, computed.id);
    expect(failed.steps).toEqual([{ key: 'd', status: 'FAILED', error: { code: 'INVALID_INPUT', message: expect.stringMatching(/input\.until: .*zone \(Z or ±hh:mm\).*"2027-01-01T00:00:00"/) } }]);
    const future = await createWorkflow(server, { ...delay('="2999-01-01T00:00:00Z"'), settings: { timeoutSeconds: 60 } });
    expect((await runToEnd(server, future.id)).steps[0].error.message).toMatch(/would wake at 2999-01-01T00:00:00.000Z/);
  });
});

/**
 * A model id saved for later, through GraphQL on the started app: a preset's model, the account's default model and a
 * workflow's model step are checked by one rule set with one message set (the catalog's modelProblem), read as a chat
 * reads the id (variants, another spelling of a version, the routers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelDecider } from '../../src/modules/catalog/model.decider.js';
import { modelStream } from '../../src/modules/catalog/model.events.js';
import { startGatewayHarness, type Account, type GatewayHarness } from '../support/gatewayHarness.js';

let h: GatewayHarness;
let designer: Account;

const ERROR = '... on DomainError { code message details }';

/** The refusal of each way of saving the id, as [face, message or null when saved]. */
const savedAs = async (model: string): Promise<Record<'preset' | 'defaultModel' | 'workflowStep', string | null>> => {
  const preset = (await h.gql(`mutation ($config: JSON!) { createPreset(slug: "saved", name: "Saved", config: $config) { __typename ${ERROR} } }`, { config: { model } }, designer.key)).body.data.createPreset;
  if (preset.__typename === 'Preset') await h.gql('mutation { deletePreset(slug: "saved") { __typename } }', {}, designer.key);
  const account = (await h.gql(`mutation ($model: String) { setDefaultModel(model: $model) { __typename ${ERROR} } }`, { model }, designer.key)).body.data.setDefaultModel;
  await h.gql('mutation { setDefaultModel(model: null) { __typename } }', {}, designer.key);
  const definition = { name: 'Saved model', trigger: { type: 'manual' }, steps: [{ key: 'm', type: 'action.model', input: { model, prompt: 'hi' } }] };
  const workflow = (await h.gql(`mutation ($d: JSON!) { createWorkflow(definition: $d) { __typename ${ERROR} } }`, { d: definition }, designer.key)).body.data.createWorkflow;
  const refusal = (answer: { __typename: string; code?: string; message?: string }, saved: string) => {
    if (answer.__typename === saved) return null;
    expect(answer.code).toBe('VALIDATION');
    return answer.message!;
  };
  return {
    // A preset's refusal says which config it was.
    preset: refusal(preset, 'Preset')?.replace(/^Invalid preset config: /, '') ?? null,
    defaultModel: refusal(account, 'Account'),
    // A definition's refusal lists each issue at its path.
    workflowStep: workflow.__typename === 'Workflow' ? null : (expect(workflow.details.issues).toMatchObject([{ path: 'steps[0].input.model' }]), workflow.details.issues[0].message),
  };
};

beforeAll(async () => {
  h = await startGatewayHarness();
  designer = await h.openAccount({ roles: ['user', 'designer'], credits: 1_000_000_000 });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'saved-a', model: 'test/saved-2.1', prices: { prompt: 100, completion: 100 } });
  await h.fakeEndpoint({ protocol: 'openai', slug: 'saved-b', model: 'test/old-1.0', prices: { prompt: 100, completion: 100 } });
  const retired = await h.running.core.execute(modelStream('test/old-1.0'), modelDecider, { type: 'RetireModel', data: { modelId: 'test/old-1.0', at: new Date().toISOString() } }, {
    actor: 'test',
    correlationId: 'retire-test-old',
  });
  await h.running.core.gateway.catalog.waitFor(retired.position!);
});
afterAll(async () => {
  await h.stop();
});

describe('a model id saved for later', () => {
  it('is refused for the same reasons, in the same words, as a preset, a default model and a workflow step', async () => {
    const refused: [string, string][] = [
      ['nobody/such-model', 'nobody/such-model is not a valid model ID'],
      ['test/tri-9-9', 'test/tri-9-9 is not a valid model ID'],
      ['test/saved-2.1:online', expect.stringContaining('The :online variant of test/saved-2.1 is not supported') as unknown as string],
      ['test/saved-2.1:free:free', 'test/saved-2.1:free:free names more than one catalog variant (at most one: :free)'],
      ['test/old-1.0', 'test/old-1.0 is retired'],
      // Another spelling of a retired model's version is that model.
      ['test/old-1-0:nitro', 'test/old-1-0:nitro is retired'],
      ['switchyard/demo-embed', 'switchyard/demo-embed does not produce text (its output is embeddings)'],
      ['test/saved-2-1:free', 'test/saved-2.1 has no free endpoints'],
    ];
    for (const [model, message] of refused) expect(await savedAs(model), model).toEqual({ preset: message, defaultModel: message, workflowStep: message });
  });

  it('names a retired model, as a chat that names it is refused (400, in the same words), and as REST finds none', async () => {
    for (const model of ['test/old-1.0', 'test/old-1-0:nitro']) {
      const res = await h.chat(designer.key, { model, messages: [{ role: 'user', content: 'hi' }] });
      expect(res.status, model).toBe(400);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({ message: `${model} is retired`, metadata: { error_type: 'invalid_request', param: 'model', model } });
    }
    // A fallback list naming it is refused whole, as one naming an unknown model is.
    expect((await h.chat(designer.key, { models: ['test/saved-2.1', 'test/old-1.0'], messages: [{ role: 'user', content: 'hi' }] })).status).toBe(400);
    expect((await fetch(`${h.url}/api/v1/model/test/old-1.0`)).status).toBe(404);
  });

  it('is saved when a chat could be answered by it: variants, another spelling of a version, the routers', async () => {
    for (const model of ['test/saved-2.1', 'test/saved-2-1:nitro:exacto', 'switchyard/demo:thinking:extended', 'openrouter/auto', 'openrouter/free']) {
      expect(await savedAs(model), model).toEqual({ preset: null, defaultModel: null, workflowStep: null });
    }
  });
});

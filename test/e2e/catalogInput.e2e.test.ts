/**
 * The catalog's JSON inputs over GraphQL: auto-router rules and provider headers are parsed (zod) from what the
 * client sent, and every problem is a VALIDATION error that names its path — never an internal error, never stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

const SET_RULES = `mutation ($rules: JSON!) { setAutoRouterRules(rules: $rules) { ... on AutoRouterRules { rules } ... on DomainError { code message details } } }`;
const REGISTER = `mutation ($slug: String!, $headers: JSON) {
  registerProvider(slug: $slug, name: $slug, protocol: OPENAI, baseUrl: "http://127.0.0.1:9", headers: $headers) { ... on Provider { slug } ... on DomainError { code message details } } }`;

const setRules = async (rules: unknown) => (await h.gql(SET_RULES, { rules })).body.data.setAutoRouterRules;
const register = async (slug: string, headers: unknown) => (await h.gql(REGISTER, { slug, headers })).body.data.registerProvider;

describe('auto-router rules', () => {
  it('a rule that is not an object is a validation error at its index, not an internal error', async () => {
    expect(await setRules([null])).toMatchObject({ code: 'VALIDATION', message: 'rules[0] must be an object', details: { field: 'rules[0]' } });
    expect(await setRules({ name: 'x' })).toMatchObject({ code: 'VALIDATION', message: 'rules must be a list' });
  });

  it('a misspelt field is refused instead of silently matching every model', async () => {
    expect(await setRules([{ name: 'code', modles: ['openai/gpt-4o'] }])).toMatchObject({ code: 'VALIDATION', message: 'rules[0] has unknown fields modles' });
  });

  it('names every problem by its path', async () => {
    const refused = await setRules([{ name: 'ok' }, { name: ' ', taskTypes: 'code', capabilities: ['telepathy'], limit: -1 }]);
    expect(refused.code).toBe('VALIDATION');
    expect(refused.details).toEqual({ field: 'rules[1].name' });
    expect(refused.message.split('; ')).toEqual([
      'rules[1].name must not be empty',
      'rules[1].taskTypes must be a list of task types',
      'rules[1].capabilities[0] capability "telepathy" is unknown (one of tools, vision, json)',
      'rules[1].limit must be a non-negative integer',
    ]);
  });

  it('valid rules are set and answered as decided', async () => {
    const rules = [{ name: 'code', taskTypes: ['code'], models: ['switchyard/demo'], limit: 2 }, { name: 'default', sort: 'price' }];
    expect(await setRules(rules)).toEqual({ rules });
    expect((await h.gql('{ autoRouterRules }')).body.data.autoRouterRules).toEqual(rules);
  });
});

describe('provider headers', () => {
  it('a header value with a line break (header injection upstream) is refused, named by its path', async () => {
    expect(await register('crlf', { 'x-team': 'a\r\nx-injected: 1' })).toMatchObject({
      code: 'VALIDATION',
      message: 'headers.x-team must be printable text of at most 4096 characters (no line breaks)',
      details: { field: 'headers.x-team' },
    });
  });

  it('framing headers are Switchyard’s to set, and names must be HTTP tokens', async () => {
    expect(await register('framing', { 'Content-Length': '0' })).toMatchObject({ code: 'VALIDATION', message: 'headers.Content-Length is set by Switchyard, not by a provider' });
    expect(await register('badname', { 'bad name': 'x' })).toMatchObject({ code: 'VALIDATION', message: 'headers["bad name"] is not a valid header name' });
    expect(await register('notstring', { 'x-n': 5 })).toMatchObject({ code: 'VALIDATION', message: 'headers.x-n must be a string' });
    expect(await register('notobject', ['x'])).toMatchObject({ code: 'VALIDATION', message: 'headers must be an object of strings' });
  });

  it('a credential goes in apiKey (sealed at rest), never in a header that would replace it and be stored in the clear', async () => {
    for (const name of ['Authorization', 'x-api-key', 'X-Goog-Api-Key', 'Cookie', 'Proxy-Authorization']) {
      expect(await register(`cred-${name.toLowerCase()}`, { [name]: 'Bearer sk-real' }), name).toMatchObject({
        code: 'VALIDATION',
        message: `headers.${name} carries a credential: give the key as apiKey (sealed at rest), not as a header`,
      });
    }
  });

  it('a provider is refused a base URL with credentials in it, a key that is not one printable line, and a name with control characters', async () => {
    const registerWith = async (args: string) =>
      (await h.gql(`mutation { registerProvider(slug: "hostile", name: "Hostile", protocol: OPENAI, ${args}) { ... on Provider { slug } ... on DomainError { code message details } } }`)).body.data.registerProvider;
    expect(await registerWith('baseUrl: "http://user:pass@127.0.0.1:9/v1"')).toMatchObject({ code: 'VALIDATION', message: 'baseUrl must not carry a user name or password: give the key as apiKey' });
    expect(await registerWith(`baseUrl: "http://127.0.0.1:9/${'x'.repeat(2_100)}"`)).toMatchObject({ code: 'VALIDATION', message: 'baseUrl must be at most 2,048 characters' });
    expect(await registerWith('baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-a\\r\\nX-Evil: 1"')).toMatchObject({ code: 'VALIDATION', details: { field: 'apiKey' } });
    const named = (await h.gql('mutation($name: String!) { registerProvider(slug: "hostile", name: $name, protocol: OPENAI, baseUrl: "http://127.0.0.1:9/v1") { ... on DomainError { code message } } }', { name: 'Evil\u202egnp.exe\u0007' })).body.data.registerProvider;
    expect(named).toMatchObject({ code: 'VALIDATION', message: 'name must be 1 to 100 characters, without control characters' });
    expect((await h.gql('{ providers { slug } }')).body.data.providers.map((p: { slug: string }) => p.slug)).not.toContain('hostile');
  });

  it('an endpoint lists only parameter names requests can use: a typo would silently drop it from require_parameters routing', async () => {
    expect(await register('params', {})).toEqual({ slug: 'params' });
    const publish = async (supported: unknown) =>
      (
        await h.gql(
          `mutation ($s: [String!]) { publishEndpoint(provider: "params", model: "params/one", upstreamModel: "one", prices: { prompt: 100, completion: 100 }, contextLength: 8000, maxOutput: 1000, supportedParameters: $s) { ... on Endpoint { supportedParameters } ... on DomainError { code message details } } }`,
          { s: supported },
        )
      ).body.data.publishEndpoint;
    const typo = await publish(['tools', 'toolz']);
    expect(typo).toMatchObject({ code: 'VALIDATION', details: { field: 'supportedParameters' } });
    expect(typo.message).toMatch(/^unknown parameter "toolz" in supportedParameters \(known: .*tools/);
    expect(await publish(Array.from({ length: 500 }, () => 'tools'))).toMatchObject({ code: 'VALIDATION', details: { field: 'supportedParameters' } });
    expect(await publish(['tools', 'structured_outputs', 'max_tokens'])).toEqual({ supportedParameters: ['tools', 'structured_outputs', 'max_tokens'] });
  });

  it("an endpoint's and a new model's text holding half of a surrogate pair is a VALIDATION error naming the field, and nothing is published", async () => {
    expect(await register('lone', {})).toEqual({ slug: 'lone' });
    const publish = async (text: Record<string, string>) =>
      (
        await h.gql(
          `mutation ($u: String!, $q: String, $n: String, $d: String) { publishEndpoint(provider: "lone", model: "lone/one", upstreamModel: $u, prices: { prompt: 100, completion: 100 }, contextLength: 8000, maxOutput: 1000, quantization: $q, modelName: $n, modelDescription: $d) { ... on Endpoint { upstreamModel } ... on DomainError { code message details } } }`,
          { u: 'one', ...text },
        )
      ).body.data.publishEndpoint;
    for (const [field, text] of [['upstreamModel', { u: 'one\ud800' }], ['quantization', { q: '\udc00fp8' }], ['name', { n: 'One \ud83d' }], ['description', { d: 'A model.\n\udfff' }]] as const) {
      expect(await publish(text), field).toMatchObject({ code: 'VALIDATION', message: `${field} must be well-formed text (it holds half of a surrogate pair, such as a lone \\ud800)`, details: { field } });
    }
    expect((await h.gql('{ model(id: "lone/one") { id } }')).body.data.model).toBeNull();
    expect(await publish({ n: 'One \ud83d\ude80' })).toEqual({ upstreamModel: 'one' });
  });

  it('nothing refused was registered; good headers are', async () => {
    expect(await register('good', { 'anthropic-beta': 'tools-2024-04-04' })).toEqual({ slug: 'good' });
    const { body } = await h.gql('{ providers { slug } }');
    const slugs = body.data.providers.map((p: { slug: string }) => p.slug);
    expect(slugs).toContain('good');
    for (const slug of ['crlf', 'framing', 'badname', 'notstring', 'notobject']) expect(slugs).not.toContain(slug);
  });
});

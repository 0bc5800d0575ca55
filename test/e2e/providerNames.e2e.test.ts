/**
 * A provider is named by its slug or its display name, in any case, wherever a provider list names one
 * (`provider.only`, `ignore`, `order`, an account's provider preferences): so no provider may take a name or slug that
 * already names another, the seed's included, whoever registers it, and however many registrations race.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/appHarness.js';
import { providerHandle, providerHandleStream } from '../../src/modules/catalog/providerHandle.events.js';

let h: Harness;
let pam: string;
let pete: string;
let carol: string;

const OPEN = `mutation($n: String!, $r: [Role!]) { openAccount(name: $n, roles: $r) { ... on OpenAccountPayload { initialKey { secret } } } }`;
const open = async (name: string, roles: string[]) => (await h.gql(OPEN, { n: name, r: roles })).body.data.openAccount.initialKey.secret as string;
const REGISTER = `mutation($slug: String!, $name: String!) {
  registerProvider(slug: $slug, name: $name, protocol: OPENAI, baseUrl: "http://127.0.0.1:9/v1") { __typename ... on Provider { slug name } ... on DomainError { code message } } }`;
const register = async (key: string | undefined, slug: string, name: string) => (await h.gql(REGISTER, { slug, name }, key)).body.data.registerProvider;
const providers = async () => ((await h.gql('{ providers { slug name } }')).body.data.providers as { slug: string; name: string }[]);

beforeAll(async () => {
  h = await startHarness();
  [pam, pete, carol] = await Promise.all([open('Pam', ['USER', 'PROVIDER']), open('Pete', ['USER', 'PROVIDER']), open('Carol', ['USER'])]);
});
afterAll(async () => {
  await h.stop();
});

/** What a registration that claimed a name and then died (kill -9 between the claim and the registration) leaves. */
const claimLeftBy = async (slug: string, name: string, agoMs: number) => {
  const handle = providerHandle(name);
  await h.running.core.eventStore.append(providerHandleStream(handle), [{ type: 'ProviderHandleClaimed', data: { handle, slug, at: new Date(Date.now() - agoMs).toISOString() } }]);
};

describe('a name claimed by a registration that never happened', () => {
  it('is free again once the claim is a minute old and its provider was never registered; a fresh claim still holds it', async () => {
    await claimLeftBy('ghost', 'Ghost Co', 2 * 60_000);
    expect(await register(pete, 'ghost-two', 'Ghost Co')).toEqual({ __typename: 'Provider', slug: 'ghost-two', name: 'Ghost Co' });
    // Taken over for good: the dead registration's slug cannot come back under that name.
    expect(await register(pam, 'ghost', 'Ghost Co')).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/already names provider ghost-two/) });
    // A registration between its claim and its provider (milliseconds, unless its process died): not taken over.
    await claimLeftBy('phantom', 'Phantom Co', 1_000);
    expect(await register(pete, 'phantom-two', 'Phantom Co')).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/already names provider phantom/) });
  });
});

describe('provider names', () => {
  it("a provider cannot take a seeded provider's name or slug, in any case, nor can an admin", async () => {
    for (const [slug, name] of [['aaaa', 'OpenAI'], ['zzzz', 'openai'], ['grok', 'GROQ'], ['togeth', ' Together ']] as const) {
      expect(await register(pete, slug, name), name).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
    }
    expect(await register(undefined, 'my-openai', 'OpenAI')).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/already names provider openai/) });
    const slugs = (await providers()).map((p) => p.slug);
    for (const slug of ['aaaa', 'zzzz', 'grok', 'togeth', 'my-openai']) expect(slugs).not.toContain(slug);
  });

  it("a second provider named like another, or with a slug that is another's name, is a CONFLICT; its own slug as name is fine", async () => {
    expect(await register(pam, 'pam', 'Pam Co')).toEqual({ __typename: 'Provider', slug: 'pam', name: 'Pam Co' });
    expect(await register(pete, 'pete', 'pam co')).toMatchObject({ code: 'CONFLICT' });
    expect(await register(pete, 'pete', 'PAM')).toMatchObject({ code: 'CONFLICT' });
    expect(await register(pam, 'pam-two', 'Pam Two')).toMatchObject({ __typename: 'Provider' });
    expect(await register(pete, 'pam-two-x', 'pam-two')).toMatchObject({ code: 'CONFLICT' });
    expect(await register(pete, 'widgets', 'Widgets Inc')).toMatchObject({ __typename: 'Provider' });
    // Refused attempts claimed nothing: the slug they asked for registers under a name of its own.
    expect(await register(pete, 'pete', 'Pete')).toEqual({ __typename: 'Provider', slug: 'pete', name: 'Pete' });
    expect((await providers()).filter((p) => p.name.toLowerCase() === 'pam co')).toEqual([{ slug: 'pam', name: 'Pam Co' }]);
  });

  it('a provider list names exactly one provider by its name: ignoring "Pam Co" ignores pam', async () => {
    const set = await h.gql(`mutation { setProviderPreferences(ignore: ["Pam Co"]) { ... on Account { providerPreferences { ignore } } ... on DomainError { code message } } }`, {}, carol);
    expect(set.body.data.setProviderPreferences).toEqual({ providerPreferences: { ignore: ['pam'] } });
  });

  it('names are compared as they look: NFKC and case folded, so fullwidth or differently cased forms of a name are a CONFLICT', async () => {
    // Fullwidth "ＯｐｅｎＡＩ" is "OpenAI" under NFKC; an ideographic space is a space; "ß" folds to "ss".
    for (const [slug, name] of [['fw-openai', 'ＯｐｅｎＡＩ'], ['fw-pam', 'ｐａｍ\u3000ｃｏ'], ['fw-pam2', '\u3000Pam Co']] as const) {
      expect(await register(pete, slug, name), name).toMatchObject({ __typename: 'DomainError', code: 'CONFLICT' });
    }
    expect(await register(pam, 'strasse', 'Straße Labs')).toMatchObject({ __typename: 'Provider', name: 'Straße Labs' });
    expect(await register(pete, 'strasse-2', 'STRASSE LABS')).toMatchObject({ code: 'CONFLICT' });
  });

  it('refuses invisible characters (format characters such as a zero-width space) and words that mix scripts (a Cyrillic А in OpenAI)', async () => {
    for (const [slug, name] of [
      ['zw-openai', 'Open\u200bAI'],
      ['zw-pam', 'Pam\u2060 Co'],
      ['bom-pam', 'Pam\ufeffCo'],
      ['shy-pam', 'Pam Co\u00ad'],
      ['filler', 'Open\u3164AI'],
      ['cyr-openai', 'Open\u0410I'],
      ['cyr-groq', 'Gr\u043eq'],
      ['greek-pam', '\u03a1am Co'],
      ['digit-mix', 'GPT4\u043e Cloud'],
    ] as const) {
      expect(await register(pete, slug, name), JSON.stringify(name)).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringMatching(/name/) });
    }
    const slugs = (await providers()).map((p) => p.slug);
    expect(slugs).not.toContain('zw-openai');
    expect(slugs).not.toContain('cyr-openai');
    // One script a word, whichever: Cyrillic, Greek, CJK with Latin (as UTS #39 allows) are names.
    for (const [slug, name] of [['yandex', 'Яндекс Cloud'], ['omega', 'Ωμέγα Labs'], ['zhipu', 'Zhipu 智谱AI'], ['kana', 'サクラAI']] as const) {
      expect(await register(pam, slug, name), name).toEqual({ __typename: 'Provider', slug, name });
    }
  });

  it('refuses a name that is not well-formed text (half of a surrogate pair) with VALIDATION naming the field, and claims nothing', async () => {
    // Was an INTERNAL "Unexpected error": the handle's stream name percent-encodes the name, and encodeURIComponent throws on a lone surrogate.
    for (const [slug, name] of [['lone-high', '\ud800x'], ['lone-low', 'Pam \udc00Co'], ['cut-emoji', 'Rocket \ud83d']] as const) {
      expect(await register(pete, slug, name), JSON.stringify(name)).toMatchObject({ __typename: 'DomainError', code: 'VALIDATION', message: expect.stringMatching(/^name .*half of a surrogate pair/) });
    }
    const slugs = (await providers()).map((p) => p.slug);
    for (const slug of ['lone-high', 'lone-low', 'cut-emoji']) expect(slugs).not.toContain(slug);
    // A whole pair is a character like any other, and the slug refused above is free.
    expect(await register(pete, 'cut-emoji', 'Rocket \ud83d\ude80')).toEqual({ __typename: 'Provider', slug: 'cut-emoji', name: 'Rocket \u{1f680}' });
  });

  it('of registrations racing for one name, exactly one succeeds', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => register(i % 2 === 0 ? pam : pete, `racer-${i}`, i % 2 === 0 ? 'Racer' : 'RACER')));
    expect(results.filter((r) => r.__typename === 'Provider')).toHaveLength(1);
    expect(results.filter((r) => r.code === 'CONFLICT')).toHaveLength(5);
    expect((await providers()).filter((p) => p.name.toLowerCase() === 'racer')).toHaveLength(1);
  });
});

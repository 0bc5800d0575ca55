import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.js';
import { providerHandleDecider } from '../../src/modules/catalog/providerHandle.decider.js';
import { hasInvisibleCharacters, mixesScripts } from '../../src/modules/catalog/catalogText.js';
import { providerHandle, type ProviderHandleEvent } from '../../src/modules/catalog/providerHandle.events.js';
import { deciderSpec } from '../support/givenWhenThen.js';

const given = deciderSpec(providerHandleDecider);
const at = '2026-01-01T00:00:00.000Z';
const claimed = (slug: string): ProviderHandleEvent => ({ type: 'ProviderHandleClaimed', data: { handle: 'pam co', slug, at } });
const claim = (slug: string, replacing: string | null = null) => ({ type: 'ClaimProviderHandle' as const, data: { handle: 'pam co', slug, replacing, at } });

describe('provider handle decider', () => {
  it('a free handle is claimed', () => given([]).when(claim('pam')).then([claimed('pam')]));
  it('a handle claimed by the same provider again changes nothing (a retried registration)', () => given([claimed('pam')]).when(claim('pam')).then([]));
  it("another provider's handle is a CONFLICT naming that provider", () => given([claimed('pam')]).when(claim('pete')).thenThrows(ConflictError, /already names provider pam/));
  it('a claim the caller found stale (its provider registered under other handles) is taken over', () =>
    given([claimed('pam')]).when(claim('pete', 'pam')).then([claimed('pete')]));
  it('a stale claim seen for one provider does not let a claim by another through', () =>
    given([claimed('pam'), claimed('paula')]).when(claim('pete', 'pam')).thenThrows(ConflictError));
});

describe('provider handles and the names they come from', () => {
  it('compare names as they look: NFKC, trimmed, case folded; ASCII names keep the handle they had', () => {
    expect(providerHandle(' Pam Co ')).toBe('pam co');
    expect(providerHandle('ＯｐｅｎＡＩ')).toBe('openai');
    expect(providerHandle('\u3000ｐａｍ\u3000ｃｏ')).toBe('pam co');
    expect(providerHandle('Straße')).toBe(providerHandle('STRASSE'));
    expect(providerHandle('ﬁreworks')).toBe('fireworks');
  });

  it('find invisible characters and words that mix scripts', () => {
    for (const name of ['Open\u200bAI', 'A\u200dB', 'Pam\u00adCo', 'x\ufe0f', 'Open\u3164AI']) expect(hasInvisibleCharacters(name), JSON.stringify(name)).toBe(true);
    expect(hasInvisibleCharacters('Open AI (Azure)')).toBe(false);
    for (const name of ['Open\u0410I', 'GPT4\u043e', 'Ωmega', 'Pam-Cо']) expect(mixesScripts(name), name).toBe(true);
    for (const name of ['OpenAI', 'Яндекс Cloud', 'Ωμέγα Labs', 'Zhipu 智谱AI', 'サクラAI', 'Naver 네이버', 'Café Noir', 'Z.AI']) expect(mixesScripts(name), name).toBe(false);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.js';

/**
 * README's Configuration says every variable is documented in `.env.example`: each one the configuration reads (and
 * each provider key the catalog seed names) has its line there, so a variable added to src/config.ts without one fails.
 */
const repo = join(import.meta.dirname, '../..');
const example = readFileSync(join(repo, '.env.example'), 'utf8');
/** `NAME=value` lines, set (`NAME=…`) or shown commented out (`# NAME=…`), in order. */
/** A provider's key the catalog seed names (OPENAI_API_KEY, …): read by the catalog, not by src/config.ts. */
const isProviderKey = (name: string) => /_API_KEY$/.test(name) && name !== 'ADMIN_API_KEY';
const assignments = [...example.matchAll(/^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => ({ commented: m[1] !== undefined, name: m[2]!, value: m[3]! }));

describe('.env.example', () => {
  it('has a line for every variable src/config.ts reads', () => {
    const documented = new Set(assignments.map((a) => a.name));
    expect(CONFIG_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
  });

  it("has a line for every provider key the catalog seed names (README's OPENAI_API_KEY, …)", () => {
    const seed = readFileSync(join(repo, 'src/modules/catalog/seed/catalog.seed.json'), 'utf8');
    const credentials = [...new Set([...seed.matchAll(/"credentialEnv":\s*"([A-Z0-9_]+)"/g)].map((m) => m[1]!))];
    expect(credentials.length).toBeGreaterThan(0);
    const documented = new Set(assignments.map((a) => a.name));
    expect(credentials.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('names each variable once, and nothing the configuration does not read but the seed keys', () => {
    const names = assignments.map((a) => a.name);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
    const known = new Set<string>(CONFIG_VARIABLES);
    expect(names.filter((name) => !known.has(name) && !isProviderKey(name))).toEqual([]);
  });

  it('sets only defaults (its header says "the values shown are the defaults"), and its examples are valid', () => {
    const set = Object.fromEntries(assignments.filter((a) => !a.commented).map((a) => [a.name, a.value]));
    expect(loadConfig(set)).toEqual(loadConfig({}));
    // Each commented-out example is a value the server accepts.
    for (const { name, value } of assignments.filter((a) => a.commented && !isProviderKey(a.name))) {
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).not.toThrow();
    }
  });
});

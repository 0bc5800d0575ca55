import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { linearRegex } from '../../src/linearRegex.js';

/*
 * The oracle: V8's own linear engine, asked through the `l` flag (--enable-experimental-regexp-engine, for this test
 * only; the server never compiles with it). Whatever linearRegex accepts must compile with `l`, or a backtracking
 * regexp would keep backtracking after the fallback.
 */
v8.setFlagsFromString('--enable-experimental-regexp-engine');
const linearEngineRuns = (source: string, flags: string): boolean => {
  try {
    new RegExp(source, `${flags}l`);
    return true;
  } catch {
    return false;
  }
};

const accepted = (source: string, flags = '', allowNestedQuantifiers = false) => {
  const result = linearRegex(source, flags, { allowNestedQuantifiers });
  if (!result.ok) throw new Error(`${source} /${flags}: refused (${result.problem})`);
  return result;
};
const problem = (source: string, flags = '', allowNestedQuantifiers = false) => {
  const result = linearRegex(source, flags, { allowNestedQuantifiers });
  return result.ok ? null : result.problem;
};

describe('linearRegex', () => {
  it('refuses what the linear engine cannot run, each with a reason', () => {
    const refused: [string, string, RegExp][] = [
      ['.*.*.*.*.*.*.*.*.*.*.*.*(?=x)', '', /lookahead and lookbehind/],
      ['a(?!b)', '', /lookahead and lookbehind/],
      ['(?<=a)b', '', /lookahead and lookbehind/],
      ['(?<!a)b', '', /lookahead and lookbehind/],
      ['(a)\\1', '', /back-references/],
      ['(?<x>a)\\k<x>', '', /back-references/],
      ['[\\1]', '', /octal/],
      ['\\01', '', /octal/],
      ['(?i:a)', '', /only \(…\), \(\?:…\) and \(\?<name>…\) groups/],
      ['a{11}', '', /counted repetition above \{10\}/],
      ['(?:a{4}){5}', '', /nested quantifiers/],
      ['a', 'u', /flags "u" are not allowed/],
      ['a', 'x', /flags "x" are not allowed/],
      ['(', '', /not a valid regular expression/],
      ['\\x4', '', /two hex digits/],
    ];
    for (const [source, flags, reason] of refused) expect(problem(source, flags), source).toMatch(reason);
    // Nested repetitions, when allowed, only as far as the engine copies them.
    expect(problem('((((a+)+)+)+)+', '', true)).toMatch(/nested this deep \(32 copies/);
    expect(problem('(?:a{4}){5}', '', true)).toMatch(/nested this deep \(20 copies/);
  });

  it('accepts only what the linear engine runs, case-insensitive ones written out', () => {
    const sources = [
      '^hel', 'a.c$', '[A-Z]{2,10}', '\\d+-\\w*\\s?', '(a|b)c', '(?<year>\\d{4})-(?:\\d{2})', 'a*?b+?c??', '\\bword\\B', '[^\\]a-]', '[-a]', '[a-]', '[\\w-z]',
      '\\x41\\u00e9\\cJ\\0\\t', '{', 'a{', '}', ']', '[]', '[^]', 'héllo wörld', 'Straße ΣΑΣ', '[à-ÿ]+', '[\\u0000-\\uffff]', 'x{0,10}', 'x{10,}', '😀+', '[😀]',
      '.*.*.*.*.*.*.*.*.*.*.*.*x', '(ab)+', '(?:a|b)', 'a|b|c', '\\.\\/\\-', '\\q\\p{L}', '(ab?)+',
    ];
    for (const source of sources) {
      for (const flags of ['', 'i', 'm', 's', 'im', 'g', 'ig']) {
        const result = accepted(source, flags);
        expect(result.flags, source).not.toContain('i');
        expect(linearEngineRuns(result.source, result.flags), `${source} /${flags} → ${result.source}`).toBe(true);
      }
    }
    for (const source of ['(a+)+x', '((ab)*c)+', '(a|aa)*b']) expect(linearEngineRuns(accepted(source, 'i', true).source, ''), source).toBe(true);
  });

  it('never accepts what the linear engine refuses, over random patterns', () => {
    const tokens = ['a', 'B', 'é', '.', '\\d', '\\w', '[a-c]', '[^x]', '(', ')', '(?:', '|', '*', '+', '?', '{2}', '{1,3}', '{0,}', '{9}', '{12}', '*?', '^', '$', '\\b', '(?=', '(?<!', '\\1', '-'];
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let checked = 0;
    for (let n = 0; n < 20_000; n++) {
      const source = Array.from({ length: 1 + random(10) }, () => tokens[random(tokens.length)]).join('');
      for (const flags of ['', 'i']) {
        for (const nested of [false, true]) {
          const result = linearRegex(source, flags, { allowNestedQuantifiers: nested });
          if (!result.ok) continue;
          checked++;
          expect(linearEngineRuns(result.source, result.flags), `${source} /${flags} → ${result.source}`).toBe(true);
        }
      }
    }
    expect(checked).toBeGreaterThan(1_000);
  });

  it('matches exactly what the case-insensitive regexp matches', () => {
    const units: number[] = [];
    const span = (from: number, to: number) => {
      for (let unit = from; unit <= to; unit++) units.push(unit);
    };
    span(0x20, 0x24f); // ASCII, Latin-1, Latin Extended-A and B (ſ, ǅ)
    span(0x370, 0x4ff); // Greek (Σσς, ΐ), Cyrillic
    span(0x10a0, 0x10ff); // Georgian
    span(0x13a0, 0x13f5); // Cherokee (its lowercase is elsewhere: AB70-ABBF)
    span(0xab70, 0xabbf);
    span(0x1e00, 0x1fff); // Latin Extended Additional (ẞ), Greek Extended (ᾳ ᾼ)
    span(0x2126, 0x212b); // Ω K Å
    span(0x2160, 0x2188); // Roman numerals
    span(0x24b6, 0x24e9); // circled letters
    span(0xff21, 0xff5a); // full-width letters
    const text = String.fromCharCode(...units);
    const escaped = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;
    for (const unit of units) {
      for (const source of [escaped(unit), `[${escaped(unit)}]`, `[^${escaped(unit)}]`]) {
        const expected = [...text.matchAll(new RegExp(source, 'gi'))].map((match) => match.index);
        const written = accepted(source, 'gi');
        expect([...text.matchAll(new RegExp(written.source, written.flags))].map((match) => match.index), `${source} → ${written.source}`).toEqual(expected);
      }
    }
    for (const source of ['[a-z]+', '[^a-z]+', '[À-ÿ]', '[α-ω]', '[\\u0100-\\u017f]', 'straße', '[-a]', '[a-]', '\\x41', 'K', 'ǆ']) {
      const expected = [...text.matchAll(new RegExp(source, 'gi'))].map((match) => [match.index, match[0]]);
      const written = accepted(source, 'gi');
      expect([...text.matchAll(new RegExp(written.source, written.flags))].map((match) => [match.index, match[0]]), `${source} → ${written.source}`).toEqual(expected);
    }
  });
});

/**
 * What text of the catalog may hold: it is shown to every user (the models list, the console, OpenAI-style clients),
 * so no C0 or C1 control characters and no bidirectional overrides, which hide or reorder what a reader sees. A
 * description may break lines.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export const hasControlCharacters = (text: string, options: { lines?: boolean } = {}): boolean => (options.lines ? CONTROL_BUT_LINES : CONTROL).test(text);

/**
 * Characters that show as nothing: format characters (Unicode category Cf: the zero-width space U+200B, joiners, the
 * word joiner U+2060, the BOM U+FEFF, the soft hyphen, the bidi controls) and the rest of the default-ignorable code
 * points (the Hangul filler U+3164, variation selectors, ...). In a name they make "Open\u200bAI" read as "OpenAI".
 */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;

export const hasInvisibleCharacters = (text: string): boolean => INVISIBLE.test(text);

/**
 * The scripts a word's letters are told by. Latin, Greek, Cyrillic, Armenian and Cherokee share look-alike letters
 * (Cyrillic "А" and Latin "A"); the others are listed so that a word in one of them is one script too. A letter of a
 * script not listed counts as "other".
 */
const SCRIPTS: readonly (readonly [string, RegExp])[] = (
  ['Latin', 'Greek', 'Cyrillic', 'Armenian', 'Cherokee', 'Georgian', 'Hebrew', 'Arabic', 'Devanagari', 'Bengali', 'Thai', 'Ethiopic', 'Han', 'Hiragana', 'Katakana', 'Hangul', 'Bopomofo'] as const
).map((script) => [script, new RegExp(`\\p{Script=${script}}`, 'u')] as const);

/** Mixes UTS #39's "highly restrictive" profile allows in one word: Latin with Chinese, Japanese or Korean writing. */
const CJK_MIXES: readonly ReadonlySet<string>[] = [new Set(['Latin', 'Han', 'Hiragana', 'Katakana']), new Set(['Latin', 'Han', 'Bopomofo']), new Set(['Latin', 'Han', 'Hangul'])];

const scriptOf = (letter: string): string => SCRIPTS.find(([, pattern]) => pattern.test(letter))?.[0] ?? 'other';

/**
 * Whether a word (letters and digits between spaces, punctuation and symbols) has letters of more than one script,
 * beyond the mixes of Latin with CJK writing that UTS #39's "highly restrictive" level allows: "OpenАI" with a
 * Cyrillic "А" does, "Яндекс" and "智谱AI" do not. A simple rule in place of UTS #39's confusable skeletons, which
 * need Unicode's confusables table: it refuses the look-alike built from two scripts, not a word spelt wholly in
 * another script (all-Cyrillic "АІ"), which needs that table.
 */
export const mixesScripts = (text: string): boolean => {
  for (const word of text.split(/[\p{Z}\p{P}\p{S}\s]+/u)) {
    const scripts = new Set<string>();
    for (const char of word) if (/\p{L}/u.test(char)) scripts.add(scriptOf(char));
    if (scripts.size > 1 && !CJK_MIXES.some((allowed) => [...scripts].every((s) => allowed.has(s)))) return true;
  }
  return false;
};

/**
 * Whether `text` is well-formed Unicode: no half of a UTF-16 surrogate pair on its own. JSON's `\ud800` escape (in a
 * REST body or GraphQL variables) makes such strings, and they are not text anyone can read: encodeURIComponent throws
 * on them, UTF-8 encoders (hashes, SQLite, the network) silently turn them into U+FFFD, and strict JSON decoders refuse
 * them. Checked where a name or other text a person gives is validated, with NOT_WELL_FORMED as the reason.
 */
export const isWellFormedText = (text: string): boolean => text.isWellFormed();

/** The refusal's words, after the field's name: "name must be well-formed text …". */
export const NOT_WELL_FORMED = 'must be well-formed text (it holds half of a surrogate pair, such as a lone \\ud800)';

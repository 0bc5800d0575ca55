/**
 * What text of the catalog may hold: it is shown to every user (the models list, the console, OpenAI-style clients),
 * so no C0 or C1 control characters and no bidirectional overrides, which hide or reorder what a reader sees. A
 * description may break lines.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export const hasControlCharacters = (text: string, options: { lines?: boolean } = {}): boolean => (options.lines ? CONTROL_BUT_LINES : CONTROL).test(text);

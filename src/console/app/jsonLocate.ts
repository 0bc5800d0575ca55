/**
 * Where each value of a JSON text is: a span per path, the paths written as the server names them in validation
 * errors (`steps[0].input.url`, `$` for the whole document), so an error can be shown on the text that caused it.
 */
export interface Span {
  readonly start: number;
  readonly end: number;
}

const LITERAL = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/** Every path's span in `text`, or null when it is not JSON. */
export const jsonSpans = (text: string): Map<string, Span> | null => {
  const spans = new Map<string, Span>();
  let at = 0;
  const space = () => {
    while (at < text.length && ' \t\r\n'.includes(text[at] ?? '')) at++;
  };
  const fail = (): never => {
    throw new SyntaxError(`not JSON at ${at}`);
  };
  const string = (): string => {
    const start = at;
    if (text[at] !== '"') fail();
    at++;
    while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
    if (at >= text.length) fail();
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  const join = (path: string, key: string | number) => (typeof key === 'number' ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`);
  const value = (path: string): void => {
    space();
    const start = at;
    const c = text[at];
    if (c === '{') {
      at++;
      space();
      if (text[at] === '}') at++;
      else
        for (;;) {
          space();
          const key = string();
          space();
          if (text[at++] !== ':') fail();
          value(join(path, key));
          space();
          const next = text[at++];
          if (next === '}') break;
          if (next !== ',') fail();
        }
    } else if (c === '[') {
      at++;
      space();
      if (text[at] === ']') at++;
      else
        for (let i = 0; ; i++) {
          value(join(path, i));
          space();
          const next = text[at++];
          if (next === ']') break;
          if (next !== ',') fail();
        }
    } else if (c === '"') string();
    else {
      LITERAL.lastIndex = at;
      if (!LITERAL.test(text)) fail();
      at = LITERAL.lastIndex;
    }
    spans.set(path || '$', { start, end: at });
  };
  try {
    value('');
    space();
    return at === text.length ? spans : null;
  } catch {
    return null;
  }
};

/**
 * The span of `path`, or of its nearest ancestor that the text has (a missing field is shown on the object that
 * lacks it); null when not even the root is there.
 */
export const locate = (spans: ReadonlyMap<string, Span>, path: string): Span | null => {
  for (let p = path; ; ) {
    const found = spans.get(p);
    if (found) return found;
    if (p === '$' || p === '') return null;
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    p = cut <= 0 ? '$' : p.slice(0, cut);
  }
};

/** 1-based line and column of an offset, as an editor shows them. */
export const lineColumn = (text: string, offset: number): { line: number; column: number } => {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
};

import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, BAD_KEY, UNREACHABLE } from './api.js';

/** Load once (and again on `reload()`), keeping the last value while reloading. */
export const useLoad = <T,>(load: () => Promise<T>, deps: readonly unknown[] = []) => {
  // `code`: the failure's API code (NOT_FOUND, ...), for a page that shows some failures as a state of its own.
  const [state, setState] = useState<{ value: T | null; error: string | null; code: string | null; loading: boolean }>({ value: null, error: null, code: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (value) => live && setState({ value, error: null, code: null, loading: false }),
      (error: unknown) => live && setState((s) => ({ ...s, error: messageOf(error), code: error instanceof ApiError ? error.code : null, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- callers list what the load depends on
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
};

export const messageOf = (error: unknown): string => (error instanceof ApiError ? (error.code === UNREACHABLE || error.code === BAD_KEY ? error.message : `${error.message} (${error.code})`) : error instanceof Error ? error.message : String(error));

/**
 * A string someone typed (an account, key, provider, model or workflow name): isolated, so a bidi override in it
 * (`Bob \u202Egnp.exe`) reorders nothing outside it. Every such string on a page is shown through this. Up to 100
 * characters long: cut short in the header and in tables (styles.css), so the columns after it stay in view, and
 * whole in its tooltip.
 */
export const Name = ({ text }: { text: string }) => (
  <bdi class="name" title={text}>
    {text}
  </bdi>
);

/** A region announced to screen readers when its text changes. */
export const Notice = ({ kind, id, children }: { kind: 'error' | 'ok' | 'info'; id?: string; children: ComponentChildren }) => (
  <p id={id} class={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
    {children}
  </p>
);

/** A card with its heading: `title` (plain text, which also makes the heading's id), or `heading` shown in its place. */
export const Section = ({ title, heading, children, actions }: { title: string; heading?: ComponentChildren; children: ComponentChildren; actions?: ComponentChildren }) => {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section class="card" aria-labelledby={id}>
      <div class="card-head">
        <h2 id={id}>{heading ?? title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
};

/** Label–value pairs (a description list; each pair kept together so the grid never splits one). */
export const Figures = ({ items, class: extra = '', ...rest }: { items: readonly (readonly [string, ComponentChildren, string?])[]; class?: string; 'data-testid'?: string; 'aria-live'?: 'polite' }) => (
  <dl class={`figures ${extra}`} {...rest}>
    {items.map(([label, value, testId]) => (
      <div key={label}>
        <dt>{label}</dt>
        <dd data-testid={testId}>{value}</dd>
      </div>
    ))}
  </dl>
);

/** A column heading: its text, or the text with `num` (right-aligned figures) or `hidden` (read to screen readers only). */
export type Column = string | readonly [string, 'num' | 'hidden'];

/**
 * A table in the scrolling wrapper every page uses: its accessible name, its column headings (a `false` one is left
 * out: a column shown only sometimes), then its rows.
 */
export const Table = ({ label, columns, busy, children }: { label: string; columns: readonly (Column | false)[]; busy?: boolean; children: ComponentChildren }) => (
  <div class="table-wrap">
    <table aria-label={label} aria-busy={busy}>
      <thead>
        <tr>
          {columns.map((column) => {
            if (column === false) return null;
            const [text, kind] = typeof column === 'string' ? [column, undefined] : column;
            return (
              <th key={text} scope="col" class={kind === 'num' ? 'num' : undefined}>
                {kind === 'hidden' ? <span class="visually-hidden">{text}</span> : text}
              </th>
            );
          })}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  </div>
);

/** A labelled select over fixed choices (value → label), in the markup every page's controls use. */
export const Choice = <V extends string | number,>({ id, label, value, choices, onChange }: { id: string; label: string; value: V; choices: readonly (readonly [V, string])[]; onChange: (value: V) => void }) => (
  <div>
    <label for={id}>{label}</label>
    <select id={id} value={value} onChange={(e) => onChange(choices[e.currentTarget.selectedIndex]![0])}>
      {choices.map(([v, text]) => (
        <option key={v} value={v}>
          {text}
        </option>
      ))}
    </select>
  </div>
);

/** The periods a daily chart offers, in days. */
export const PERIODS: readonly (readonly [number, string])[] = [
  [7, 'Last 7 days'],
  [30, 'Last 30 days'],
  [90, 'Last 90 days'],
];

/**
 * Newer / Older over a connection's pages: `cursors` is the stack of `after` cursors (null for the first page) the
 * caller queries with its last; `older` is said after the page number while older pages exist.
 */
export const CursorPager = ({ cursors, setCursors, pageInfo, older }: {
  cursors: readonly (string | null)[];
  setCursors: (update: (cursors: (string | null)[]) => (string | null)[]) => void;
  pageInfo: { hasNextPage: boolean; endCursor: string | null } | undefined;
  older?: string;
}) => (
  <div class="pager">
    <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
      Newer
    </button>
    <span class="muted small">
      Page {cursors.length}
      {older && pageInfo?.hasNextPage && `: ${older}`}
    </span>
    <button type="button" disabled={!pageInfo?.hasNextPage} onClick={() => pageInfo?.endCursor && setCursors((c) => [...c, pageInfo.endCursor])}>
      Older
    </button>
  </div>
);

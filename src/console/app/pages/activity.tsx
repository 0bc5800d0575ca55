import { useMemo, useState } from 'preact/hooks';
import { allPages, DOMAIN_ERROR, gql, unwrap, type Connection, type Result } from '../api.js';
import { DailyChart, MAX_SERIES, type Series } from '../chart.js';
import { formatInt, formatTime, formatUsd } from '../money.js';
import { GenerationDrawer } from '../generationDrawer.js';
import type { Me } from '../main.js';
import { actsAsUser, restrictedNote } from '../navigation.js';
import { CursorPager, Choice, Figures, Name, Notice, PERIODS, Section, Table, messageOf, useLoad } from '../ui.js';

type Metric = 'cost' | 'requests' | 'tokens';
type Dimension = 'MODEL' | 'KEY' | 'PROVIDER' | 'WORKFLOW' | 'APP';

interface Row {
  day: string;
  group: string;
  requests: number;
  cost: number;
  promptTokens: number;
  completionTokens: number;
}
interface Generation {
  id: string;
  createdAt: string;
  model: string | null;
  provider: string | null;
  status: string;
  cost: number;
  latencyMs: number | null;
  keyId: string | null;
  workflowId: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
}

const USAGE = `query Usage($groupBy: UsageGroupBy!, $from: String!, $to: String!) {
  usage(groupBy: $groupBy, from: $from, to: $to, perDay: true) { day group requests cost promptTokens completionTokens }
}`;
const KEY_NAMES = 'query KeyNames($after: String) { apiKeys(first: 100, after: $after, includeRevoked: true) { edges { node { id name } } pageInfo { hasNextPage endCursor } } }';
/** Keys whose names label the chart, the generations and the Key filter: every key of almost any account. */
const MAX_KEYS = 2_000;
const RECENT = `query Recent($after: String, $filter: GenerationFilter) {
  generations(first: 15, after: $after, newestFirst: true, filter: $filter) { edges { node { id createdAt model provider status cost latencyMs keyId workflowId usage { promptTokens completionTokens } } } pageInfo { hasNextPage endCursor } }
}`;
type Status = 'PENDING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'UNRECORDED';
interface Filter {
  model: string;
  provider: string;
  /** The conversation's id its calls were sent with (session_id / x-session-id). */
  sessionId: string;
  keyId: string;
  status: '' | Status;
}
const NO_FILTER: Filter = { model: '', provider: '', sessionId: '', keyId: '', status: '' };

const METRICS: Record<Metric, { label: string; of: (row: Row) => number; format: (v: number) => string }> = {
  cost: { label: 'Spend', of: (r) => r.cost, format: formatUsd },
  requests: { label: 'Requests', of: (r) => r.requests, format: formatInt },
  tokens: { label: 'Tokens', of: (r) => r.promptTokens + r.completionTokens, format: formatInt },
};
const DIMENSIONS: Record<Dimension, string> = { MODEL: 'Model', KEY: 'Key', PROVIDER: 'Provider', WORKFLOW: 'Workflow', APP: 'App' };
const DAY_MS = 86_400_000;

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Input & output logging: the account's switch, and the deletion of what it kept. */
/**
 * `canSet`: the switch needs the user role; without it the account may still delete what was kept. A restricted key
 * (`restricted`) may do neither, and is told why.
 */
const ContentLogging = ({ canSet, restricted }: { canSet: boolean; restricted: boolean }) => {
  const me = useLoad(() => gql<{ me: { contentLogging: boolean } }>('{ me { contentLogging } }'));
  // As last set here (shown at once while the change is under way); the server's value until then.
  const [set, setSet] = useState<boolean | null>(null);
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const act = async (work: () => Promise<string>) => {
    setBusy(true);
    try {
      setNotice({ kind: 'ok', text: await work() });
    } catch (error) {
      setNotice({ kind: 'error', text: messageOf(error) });
    } finally {
      setBusy(false);
    }
  };
  const toggle = (enabled: boolean) =>
    act(async () => {
      setSet(enabled);
      try {
        const data = await gql<{ setContentLogging: Result<{ contentLogging: boolean }> }>(
          `mutation ($enabled: Boolean!) { setContentLogging(enabled: $enabled) { __typename ... on Account { contentLogging } ${DOMAIN_ERROR} } }`,
          { enabled },
        );
        const now = unwrap(data.setContentLogging).contentLogging;
        setSet(now);
        return now ? 'Prompts and answers of new generations are kept.' : 'New generations no longer keep their prompt and answer.';
      } catch (error) {
        setSet(null);
        throw error;
      }
    });
  const remove = () => {
    if (!window.confirm('Delete every kept prompt and answer of this account? This cannot be undone; the generations, their usage and cost stay.')) return;
    void act(async () => {
      const data = await gql<{ deleteGenerationContent: number }>('mutation { deleteGenerationContent }');
      const n = data.deleteGenerationContent;
      return `Deleted the prompts and answers of ${formatInt(n)} ${n === 1 ? 'generation' : 'generations'}.`;
    });
  };
  const on = set ?? me.value?.me.contentLogging ?? false;
  return (
    <div class="logging">
      <label class="switch">
        <input type="checkbox" checked={on} disabled={busy || !me.value || !canSet || restricted} onChange={(e) => void toggle(e.currentTarget.checked)} />
        Keep prompts and answers (input &amp; output logging)
      </label>
      <button type="button" disabled={busy || restricted} onClick={remove}>
        Delete kept prompts
      </button>
      {restricted && <Notice kind="info">{restrictedNote('change content logging or delete kept prompts')}</Notice>}
      {(notice ?? me.error) && <Notice kind={notice?.kind ?? 'error'}>{notice?.text ?? me.error}</Notice>}
    </div>
  );
};

export const ActivityPage = ({ me }: { me: Me }) => {
  const [metric, setMetric] = useState<Metric>('cost');
  const [dimension, setDimension] = useState<Dimension>('MODEL');
  const [span, setSpan] = useState(30);
  const range = useMemo(() => {
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    return { from: isoDay(today - (span - 1) * DAY_MS), to: isoDay(today), start: today - (span - 1) * DAY_MS };
  }, [span]);
  // The answer keeps the dimension it was asked for: while the next one loads, the chart stays labelled as drawn.
  const usage = useLoad(
    async () => ({
      dimension,
      ...(await gql<{ usage: Row[] }>(USAGE, { groupBy: dimension, from: range.from, to: range.to })),
    }),
    [dimension, range],
  );
  const shown = usage.value?.dimension ?? dimension;
  const [filter, setFilter] = useState<Filter>(NO_FILTER);
  const [draft, setDraft] = useState<Filter>(NO_FILTER);
  // Cursors of the pages before the current one (the list pages towards older generations).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const [open, setOpen] = useState<string | null>(null);
  const recent = useLoad(() => {
    const given = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== ''));
    return gql<{ generations: { edges: { node: Generation }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(RECENT, { after, filter: given });
  }, [filter, after]);
  const applyFilter = (event: Event) => {
    event.preventDefault();
    setCursors([null]);
    setFilter({ ...draft, model: draft.model.trim(), provider: draft.provider.trim(), sessionId: draft.sessionId.trim() });
  };

  // Every key, page after page: a call on a key past the first page still shows its name, and the filter offers it.
  const keys = useLoad(() => allPages(async (after) => (await gql<{ apiKeys: Connection<{ id: string; name: string }> }>(KEY_NAMES, { after })).apiKeys, MAX_KEYS));
  const keyNames = useMemo(() => new Map(keys.value?.nodes.map((key) => [key.id, key.name]) ?? []), [keys.value]);
  const labelOf = (group: string) => {
    if (group === '-') return shown === 'WORKFLOW' ? 'outside workflows' : shown === 'KEY' ? 'no key (a workflow or the admin)' : shown === 'APP' ? 'no app named' : '—';
    return shown === 'KEY' ? (keyNames.get(group) ?? group) : group;
  };

  const { days, series, totals } = useMemo(() => {
    const rows = usage.value?.usage ?? [];
    const days = Array.from({ length: span }, (_, i) => (range.start + i * DAY_MS) / 1000);
    const dayIndex = new Map(days.map((d, i) => [isoDay(d * 1000), i]));
    const of = METRICS[metric].of;
    const byGroup = new Map<string, number[]>();
    for (const row of rows) {
      const i = dayIndex.get(row.day);
      if (i === undefined) continue;
      const values = byGroup.get(row.group) ?? new Array<number>(span).fill(0);
      values[i] = (values[i] ?? 0) + of(row);
      byGroup.set(row.group, values);
    }
    const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
    const ranked = [...byGroup].sort((a, b) => sum(b[1]) - sum(a[1]));
    const shown: Series[] = ranked.slice(0, MAX_SERIES).map(([group, values]) => ({ label: labelOf(group), values }));
    const rest = ranked.slice(MAX_SERIES);
    if (rest.length) shown.push({ label: `other (${rest.length})`, values: days.map((_, i) => sum(rest.map(([, v]) => v[i] ?? 0))) });
    const totals = rows.reduce((t, r) => ({ cost: t.cost + r.cost, requests: t.requests + r.requests, tokens: t.tokens + r.promptTokens + r.completionTokens }), { cost: 0, requests: 0, tokens: 0 });
    return { days, series: shown, totals };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- labelOf follows usage.value (and the dimension in it)
  }, [usage.value, metric, span, range, keyNames]);

  const generations = recent.value?.generations.edges.map((e) => e.node) ?? [];
  const pageInfo = recent.value?.generations.pageInfo;

  return (
    <>
      <h1>Activity</h1>
      <Section title="Usage per day">
        <div class="controls">
          <Choice id="act-metric" label="Show" value={metric} choices={(Object.keys(METRICS) as Metric[]).map((m) => [m, METRICS[m].label] as const)} onChange={setMetric} />
          <Choice id="act-dimension" label="Split by" value={dimension} choices={(Object.keys(DIMENSIONS) as Dimension[]).map((d) => [d, DIMENSIONS[d]] as const)} onChange={setDimension} />
          <Choice id="act-span" label="Period" value={span} choices={PERIODS} onChange={setSpan} />
        </div>
        <Figures
          class="totals"
          items={[
            ['Spend', formatUsd(totals.cost), 'total-spend'],
            ['Requests', formatInt(totals.requests), 'total-requests'],
            ['Tokens', formatInt(totals.tokens)],
          ]}
        />
        {usage.error && <Notice kind="error">{usage.error}</Notice>}
        {usage.loading && usage.value && <p class="muted small" role="status">Loading…</p>}
        {usage.value && (series.length ? <DailyChart days={days} series={series} format={METRICS[metric].format} title={`${METRICS[metric].label} per day by ${DIMENSIONS[shown].toLowerCase()}`} /> : <p class="muted">No usage in this period.</p>)}
      </Section>
      <Section title="Recent generations">
        <ContentLogging canSet={actsAsUser(me.roles)} restricted={me.restricted} />
        <form class="controls" onSubmit={applyFilter} aria-label="Filter generations">
          <div>
            <label for="gen-model">Model</label>
            <input id="gen-model" value={draft.model} onInput={(e) => setDraft({ ...draft, model: e.currentTarget.value })} placeholder="any" />
          </div>
          <div>
            <label for="gen-provider">Provider (slug)</label>
            <input id="gen-provider" value={draft.provider} onInput={(e) => setDraft({ ...draft, provider: e.currentTarget.value })} placeholder="any" />
          </div>
          <div>
            <label for="gen-session">Session</label>
            <input id="gen-session" value={draft.sessionId} onInput={(e) => setDraft({ ...draft, sessionId: e.currentTarget.value })} placeholder="any" />
          </div>
          <div>
            <label for="gen-key">Key</label>
            <select id="gen-key" value={draft.keyId} onChange={(e) => setDraft({ ...draft, keyId: e.currentTarget.value })}>
              <option value="">any</option>
              {[...keyNames].map(([id, name]) => (
                <option key={id} value={id}>
                  {name}
                </option>
              ))}
            </select>
            {keys.value && !keys.value.complete && <span class="muted small">The first {formatInt(keys.value.nodes.length)} keys</span>}
          </div>
          <div>
            <label for="gen-status">Status</label>
            <select id="gen-status" value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value as Filter['status'] })}>
              <option value="">any</option>
              {(['COMPLETED', 'FAILED', 'CANCELLED', 'PENDING', 'UNRECORDED'] as const).map((status) => (
                <option key={status} value={status}>
                  {status.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
          <div class="form-actions">
            <button type="submit">Apply filters</button>
          </div>
        </form>
        {keys.error && <Notice kind="error">{keys.error}</Notice>}
        {recent.error && <Notice kind="error">{recent.error}</Notice>}
        <Table label="Recent generations" columns={['When', 'Model', 'Provider', 'Key', 'Status', ['Tokens in / out', 'num'], ['Latency', 'num'], ['Cost', 'num'], ['Details', 'hidden']]}>
          {generations.map((g) => (
            <tr key={g.id}>
              <td>{formatTime(g.createdAt)}</td>
              <td>{g.model ? <Name text={g.model} /> : '—'}</td>
              <td>{g.provider ? <Name text={g.provider} /> : '—'}</td>
              <td>{g.keyId ? <Name text={keyNames.get(g.keyId) ?? g.keyId} /> : g.workflowId ? 'workflow' : 'admin key'}</td>
              <td>
                <span class={`badge badge-${g.status.toLowerCase()}`}>{g.status.toLowerCase()}</span>
              </td>
              <td class="num">{g.usage ? `${formatInt(g.usage.promptTokens)} / ${formatInt(g.usage.completionTokens)}` : '—'}</td>
              <td class="num">{g.latencyMs === null ? '—' : `${formatInt(g.latencyMs)} ms`}</td>
              <td class="num">{formatUsd(g.cost)}</td>
              <td>
                <button type="button" class="link" onClick={() => setOpen(g.id)} aria-label={`Details of generation ${g.id}`}>
                  Details
                </button>
              </td>
            </tr>
          ))}
        </Table>
        {recent.value && generations.length === 0 && <p class="muted">{filter === NO_FILTER ? 'No generations yet: try the Playground.' : 'No generation matches these filters.'}</p>}
        <CursorPager cursors={cursors} setCursors={setCursors} pageInfo={pageInfo} />
      </Section>
      {open && <GenerationDrawer id={open} keyName={(id) => keyNames.get(id) ?? id} onClose={() => setOpen(null)} />}
    </>
  );
};

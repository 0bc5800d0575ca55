import { useMemo, useState } from 'preact/hooks';
import { DOMAIN_ERROR, gql, unwrap, type Connection, type Result } from '../api.js';
import { DailyChart, MAX_SERIES, type Series } from '../chart.js';
import { formatInt, formatPerMillion as perMillion, formatUsd, parsePerMillion, perMillionInput } from '../money.js';
import { CursorPager, Choice, Figures, messageOf, Name, Notice, PERIODS, Section, Table, useLoad } from '../ui.js';

/** Prices are nano-dollars per token; people think in dollars per million tokens. */
export const formatPerMillion = (nanoPerToken: number): string => `${perMillion(nanoPerToken)} / M`;

export interface EndpointRow {
  id: string;
  model: string;
  status: string;
  disabledByAdmin: boolean;
  circuitBreaker: string;
  prices: { prompt: number; completion: number };
  stats: { errorRate30m: number | null; requests30m: number; uptime30m: number | null; latency30m: { p50: number } | null };
}
interface Provider {
  slug: string;
  name: string;
  protocol: string;
  baseUrl: string;
  available: boolean;
  unavailableReason: string | null;
  cancellable: boolean;
  endpoints: EndpointRow[];
}
interface Proposal {
  id: string;
  model: string;
  proposalStatus: string;
  reason: string | null;
  proposedAt: string;
  provider: { slug: string };
}
interface Traffic {
  endpointId: string;
  day: string;
  requests: number;
  errors: number;
  served: number;
  avgLatencyMs: number | null;
  earnings: number;
}

export const ENDPOINT_FIELDS =
  'id model status disabledByAdmin circuitBreaker prices { prompt completion } stats { errorRate30m requests30m uptime30m latency30m { p50 } }';
const MINE = `query MyProviders { myProviders { slug name protocol baseUrl available unavailableReason cancellable endpoints { ${ENDPOINT_FIELDS} } } }`;
/** The caller's proposals of every status (status null), newest first, a page at a time (an account may have 200). */
const PROPOSALS = `query MyProposals($after: String) {
  endpointProposals(first: 50, after: $after, status: null) { edges { node { id model proposalStatus reason proposedAt provider { slug } } } pageInfo { hasNextPage endCursor } }
}`;
const TRAFFIC = `query Traffic($from: String!, $to: String!) { providerTraffic(from: $from, to: $to) { endpointId day requests errors served avgLatencyMs earnings } }`;
const REGISTER = `mutation Register($slug: String!, $name: String!, $protocol: ProviderProtocol!, $baseUrl: String!, $apiKey: String) {
  r: registerProvider(slug: $slug, name: $name, protocol: $protocol, baseUrl: $baseUrl, apiKey: $apiKey) { __typename ... on Provider { slug } ${DOMAIN_ERROR} } }`;
const PUBLISH = `mutation Publish($provider: String!, $model: String!, $upstreamModel: String!, $prices: PricesInput!, $contextLength: Int!, $maxOutput: Int!) {
  r: publishEndpoint(provider: $provider, model: $model, upstreamModel: $upstreamModel, prices: $prices, contextLength: $contextLength, maxOutput: $maxOutput) {
    __typename ... on Endpoint { id } ... on EndpointProposal { id proposalStatus amends } ${DOMAIN_ERROR} } }`;
const CHANGE_PRICE = `mutation ChangePrice($provider: String!, $model: String!, $prices: PricesInput!) {
  r: changePrice(provider: $provider, model: $model, prices: $prices) { __typename ... on Endpoint { id } ${DOMAIN_ERROR} } }`;
const DISABLE = `mutation Disable($provider: String!, $model: String!) { r: disableEndpoint(provider: $provider, model: $model) { __typename ... on Endpoint { id } ${DOMAIN_ERROR} } }`;
const ENABLE = `mutation Enable($provider: String!, $model: String!) { r: enableEndpoint(provider: $provider, model: $model) { __typename ... on Endpoint { id } ${DOMAIN_ERROR} } }`;

const PROTOCOLS = ['OPENAI', 'ANTHROPIC', 'GEMINI'] as const;
const DAY_MS = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const percent = (rate: number | null) => (rate === null ? '—' : `${(rate * 100).toFixed(1)}%`);

/** The range of the last `span` UTC days, today included, and the chart's x values (Unix seconds). */
export const lastDays = (span: number) => {
  const now = new Date();
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const start = today - (span - 1) * DAY_MS;
  return { from: isoDay(start), to: isoDay(today), days: Array.from({ length: span }, (_, i) => (start + i * DAY_MS) / 1000) };
};

const RegisterForm = ({ onDone }: { onDone: (slug: string) => void }) => {
  const [form, setForm] = useState({ slug: '', name: '', protocol: 'OPENAI', baseUrl: '', apiKey: '' });
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const { r } = await gql<{ r: Result<{ slug: string }> }>(REGISTER, { ...form, apiKey: form.apiKey || null });
      onDone(unwrap(r).slug);
      setForm({ slug: '', name: '', protocol: 'OPENAI', baseUrl: '', apiKey: '' });
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const field = (id: keyof typeof form, label: string, extra: Record<string, unknown> = {}) => (
    <div>
      <label for={`reg-${id}`}>{label}</label>
      <input id={`reg-${id}`} value={form[id]} onInput={(e) => setForm({ ...form, [id]: e.currentTarget.value })} {...extra} />
    </div>
  );
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Register a provider">
      {field('slug', 'Slug', { required: true, placeholder: 'acme-ai', pattern: '[a-z0-9][a-z0-9\\-]{0,39}' })}
      {field('name', 'Display name', { required: true })}
      <div>
        <label for="reg-protocol">Protocol</label>
        <select id="reg-protocol" value={form.protocol} onChange={(e) => setForm({ ...form, protocol: e.currentTarget.value })}>
          {PROTOCOLS.map((p) => (
            <option key={p} value={p}>
              {p.toLowerCase()}
            </option>
          ))}
        </select>
      </div>
      {field('baseUrl', 'Base URL', { required: true, type: 'url', placeholder: 'https://api.example.com/v1' })}
      {field('apiKey', 'Upstream API key (stored encrypted; empty for none)', { type: 'password', autocomplete: 'off' })}
      <div class="form-actions">
        <button type="submit" class="primary">
          Register
        </button>
      </div>
      {error && <Notice kind="error">{error}</Notice>}
    </form>
  );
};

const PublishForm = ({ providers, onDone }: { providers: readonly Provider[]; onDone: (message: string) => void }) => {
  const [form, setForm] = useState({ provider: providers[0]?.slug ?? '', model: '', upstreamModel: '', prompt: '', completion: '', contextLength: '128000', maxOutput: '4096' });
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const prompt = parsePerMillion(form.prompt, 'prompt');
    const completion = parsePerMillion(form.completion, 'completion');
    if (typeof prompt === 'string') return setError(prompt);
    if (typeof completion === 'string') return setError(completion);
    try {
      const { r } = await gql<{ r: Result<{ id: string; proposalStatus?: string; amends?: boolean }> }>(PUBLISH, {
        provider: form.provider || providers[0]?.slug,
        model: form.model.trim(),
        upstreamModel: form.upstreamModel.trim() || form.model.trim(),
        prices: { prompt, completion },
        contextLength: Number(form.contextLength),
        maxOutput: Number(form.maxOutput),
      });
      const done = unwrap(r);
      onDone(
        done.amends
          ? `The change to ${done.id} waits for an admin's approval: the endpoint routes as approved meanwhile.`
          : done.proposalStatus
            ? `${done.id} waits for an admin's approval.`
            : `Published ${done.id}: it routes now.`,
      );
      setForm({ ...form, model: '', upstreamModel: '' });
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const field = (id: keyof typeof form, label: string, extra: Record<string, unknown> = {}) => (
    <div>
      <label for={`pub-${id}`}>{label}</label>
      <input id={`pub-${id}`} value={form[id]} onInput={(e) => setForm({ ...form, [id]: e.currentTarget.value })} {...extra} />
    </div>
  );
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Publish an endpoint">
      <div>
        <label for="pub-provider">Provider</label>
        <select id="pub-provider" value={form.provider} onChange={(e) => setForm({ ...form, provider: e.currentTarget.value })}>
          {providers.map((p) => (
            <option key={p.slug} value={p.slug}>
              {p.name} ({p.slug})
            </option>
          ))}
        </select>
      </div>
      {field('model', 'Model id', { required: true, placeholder: `${providers[0]?.slug ?? 'acme'}/my-model` })}
      {field('upstreamModel', 'Upstream model (empty: the same)')}
      {field('prompt', 'Prompt price (USD per M tokens)', { required: true, inputMode: 'decimal' })}
      {field('completion', 'Completion price (USD per M tokens)', { required: true, inputMode: 'decimal' })}
      {field('contextLength', 'Context length (tokens)', { required: true, type: 'number', min: 1 })}
      {field('maxOutput', 'Max output (tokens)', { required: true, type: 'number', min: 1 })}
      <div class="form-actions">
        <button type="submit" class="primary">
          Publish
        </button>
      </div>
      {error && <Notice kind="error">{error}</Notice>}
    </form>
  );
};

const PriceForm = ({ provider, endpoint, onDone, onCancel }: { provider: string; endpoint: EndpointRow; onDone: () => void; onCancel: () => void }) => {
  const [prompt, setPrompt] = useState(perMillionInput(endpoint.prices.prompt));
  const [completion, setCompletion] = useState(perMillionInput(endpoint.prices.completion));
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const p = parsePerMillion(prompt, 'prompt');
    const c = parsePerMillion(completion, 'completion');
    if (typeof p === 'string') return setError(p);
    if (typeof c === 'string') return setError(c);
    try {
      unwrap((await gql<{ r: Result<{ id: string }> }>(CHANGE_PRICE, { provider, model: endpoint.model, prices: { prompt: p, completion: c } })).r);
      onDone();
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  return (
    <form class="grid-form edit" onSubmit={submit} aria-label={`Prices of ${endpoint.id}`}>
      <div>
        <label for={`pp-${endpoint.id}`}>Prompt (USD per M tokens)</label>
        <input id={`pp-${endpoint.id}`} inputMode="decimal" value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} required />
      </div>
      <div>
        <label for={`pc-${endpoint.id}`}>Completion (USD per M tokens)</label>
        <input id={`pc-${endpoint.id}`} inputMode="decimal" value={completion} onInput={(e) => setCompletion(e.currentTarget.value)} required />
      </div>
      <div class="form-actions">
        <button type="submit" class="primary">
          Save prices
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error && <Notice kind="error">{error}</Notice>}
    </form>
  );
};

/** Endpoints with their live health; `actions` adds per-row buttons (the provider's own page). */
export const EndpointTable = ({ provider, endpoints, onChanged, manage }: { provider: string; endpoints: readonly EndpointRow[]; onChanged: () => void; manage: boolean }) => {
  const [pricing, setPricing] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const act = async (query: string, endpoint: EndpointRow) => {
    setError(null);
    try {
      unwrap((await gql<{ r: Result<{ id: string }> }>(query, { provider, model: endpoint.model })).r);
      onChanged();
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  const columns = manage ? 9 : 8;
  return (
    <>
      {error && <Notice kind="error">{error}</Notice>}
      <Table label={`Endpoints of ${provider}`} columns={['Model', 'Status', 'Breaker', ['Prompt', 'num'], ['Completion', 'num'], ['Requests (30 min)', 'num'], ['Error rate', 'num'], ['Latency p50', 'num'], manage && 'Actions']}>
        {endpoints.map((e) =>
          pricing === e.id ? (
            <tr key={e.id}>
              <td colSpan={columns}>
                <PriceForm provider={provider} endpoint={e} onCancel={() => setPricing(null)} onDone={() => (setPricing(null), onChanged())} />
              </td>
            </tr>
          ) : (
            <tr key={e.id} data-endpoint-id={e.id}>
              <th scope="row">
                <Name text={e.model} />
              </th>
              <td>
                <span class={`badge badge-${e.status}`}>{e.status}</span>
                {e.disabledByAdmin && <span class="muted small"> by an admin</span>}
              </td>
              <td>
                <span class={`badge badge-${e.circuitBreaker === 'closed' ? 'active' : e.circuitBreaker === 'open' ? 'failed' : 'pending'}`}>{e.circuitBreaker}</span>
              </td>
              <td class="num">{formatPerMillion(e.prices.prompt)}</td>
              <td class="num">{formatPerMillion(e.prices.completion)}</td>
              <td class="num">{formatInt(e.stats.requests30m)}</td>
              <td class="num">{percent(e.stats.errorRate30m)}</td>
              <td class="num">{e.stats.latency30m ? `${formatInt(Math.round(e.stats.latency30m.p50))} ms` : '—'}</td>
              {manage && (
                <td class="actions">
                  <button type="button" onClick={() => setPricing(e.id)} aria-label={`Change the price of ${e.model}`}>
                    Price
                  </button>
                  {e.status === 'active' ? (
                    <button type="button" onClick={() => act(DISABLE, e)} aria-label={`Disable ${e.model}`}>
                      Disable
                    </button>
                  ) : (
                    <button type="button" onClick={() => act(ENABLE, e)} aria-label={`Enable ${e.model}`} disabled={e.disabledByAdmin}>
                      Enable
                    </button>
                  )}
                </td>
              )}
            </tr>
          ),
        )}
      </Table>
      {endpoints.length === 0 && <p class="muted">No endpoints yet: publish one below.</p>}
    </>
  );
};

/** A yes/no setting of a provider: its field on Provider (its checkbox's id: `<field>-<slug>`), the mutation that sets it (answering `on`), its label and note. */
interface ProviderSetting<F extends 'cancellable' | 'byok'> {
  readonly field: F;
  readonly mutation: string;
  readonly label: string;
  readonly note: string;
  readonly saved: (name: string, on: boolean) => string;
}

/** Whether cancelling a call stops the provider's billing, as its owner (this page) or an admin (the Admin page) says. */
export const CANCELLATION: ProviderSetting<'cancellable'> = {
  field: 'cancellable',
  mutation: `mutation SetCancellation($provider: String!, $on: Boolean!) {
  r: setProviderCancellation(provider: $provider, cancellable: $on) { __typename ... on Provider { on: cancellable } ${DOMAIN_ERROR} } }`,
  label: 'Stops billing when a call is cancelled',
  note: 'Not cancellable: a client that leaves mid-stream is still billed for the whole answer, because the provider bills it.',
  saved: (name, on) => `Saved: ${name} ${on ? 'stops billing when a call is cancelled' : 'bills the whole answer of a cancelled call'}.`,
};

/** Whether accounts may bring their own key for the provider (BYOK): an admin's call, on the Admin page. */
export const BYOK_CAPABLE: ProviderSetting<'byok'> = {
  field: 'byok',
  mutation: `mutation SetProviderByok($provider: String!, $on: Boolean!) {
  r: setProviderByok(provider: $provider, allowed: $on) { __typename ... on Provider { on: byok } ${DOMAIN_ERROR} } }`,
  label: 'Accounts may bring their own key (BYOK)',
  note: "An account's own key goes wherever this provider's endpoints point. Turned off, the keys accounts stored are kept and not used.",
  saved: (name, on) => `Saved: ${name} ${on ? 'takes accounts’ own keys' : 'no longer takes accounts’ own keys'}.`,
};

/**
 * One provider setting as a checkbox, as the provider loaded says it (its `setting.field`): saved on change, no
 * confirmation (it is undone the same way), and the saved value shown.
 */
export const ProviderSwitch = <F extends 'cancellable' | 'byok'>({ provider, setting }: { provider: { slug: string; name: string } & Record<F, boolean>; setting: ProviderSetting<F> }) => {
  const loaded = provider[setting.field];
  // As chosen here (while saving) and then saved; the loaded value until then, or once a reload brings another.
  const [chosen, setChosen] = useState<{ from: boolean; on: boolean } | null>(null);
  const on = chosen && chosen.from === loaded ? chosen.on : loaded;
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `${setting.field}-${provider.slug}`;
  const toggle = async (wanted: boolean) => {
    // Not disabled while saving: a disabled checkbox would lose the keyboard's focus.
    if (busy) return;
    const before = on;
    setChosen({ from: loaded, on: wanted });
    setBusy(true);
    setNotice(null);
    try {
      const now = unwrap((await gql<{ r: Result<{ on: boolean }> }>(setting.mutation, { provider: provider.slug, on: wanted })).r).on;
      setChosen({ from: loaded, on: now });
      setNotice({ kind: 'ok', text: setting.saved(provider.name, now) });
    } catch (failure) {
      setChosen({ from: loaded, on: before });
      setNotice({ kind: 'error', text: messageOf(failure) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="provider-switch">
      <label class="switch" for={id}>
        <input id={id} type="checkbox" checked={on} aria-describedby={`${id}-note`} onChange={(e) => void toggle(e.currentTarget.checked)} />
        <span>
          <span class="visually-hidden">{provider.name}: </span>
          {setting.label}
        </span>
      </label>
      <p id={`${id}-note`} class="muted small">
        {setting.note}
      </p>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
    </div>
  );
};

type Metric = 'earnings' | 'requests' | 'errorRate' | 'latency';
const METRICS: Record<Metric, { label: string; format: (v: number) => string }> = {
  earnings: { label: 'Earnings', format: formatUsd },
  requests: { label: 'Requests', format: formatInt },
  errorRate: { label: 'Error rate', format: (v) => `${(v * 100).toFixed(1)}%` },
  latency: { label: 'Latency (mean, ms)', format: (v) => formatInt(Math.round(v)) },
};

const TrafficSection = () => {
  const [span, setSpan] = useState(30);
  const [metric, setMetric] = useState<Metric>('earnings');
  const range = useMemo(() => lastDays(span), [span]);
  const traffic = useLoad(() => gql<{ providerTraffic: Traffic[] }>(TRAFFIC, { from: range.from, to: range.to }), [range]);
  const { series, totals } = useMemo(() => {
    const rows = traffic.value?.providerTraffic ?? [];
    const index = new Map(range.days.map((d, i) => [isoDay(d * 1000), i]));
    const byEndpoint = new Map<string, Traffic[]>();
    for (const row of rows) byEndpoint.set(row.endpointId, [...(byEndpoint.get(row.endpointId) ?? []), row]);
    const valueOf = (r: Traffic): number => {
      switch (metric) {
        case 'earnings':
          return r.earnings;
        case 'requests':
          return r.requests;
        case 'errorRate':
          return r.requests === 0 ? 0 : r.errors / r.requests;
        case 'latency':
          return r.avgLatencyMs ?? 0;
        default: {
          const never: never = metric;
          return never;
        }
      }
    };
    const line = (label: string, list: readonly Traffic[]): Series => {
      const values = new Array<number>(range.days.length).fill(0);
      for (const r of list) {
        const i = index.get(r.day);
        if (i !== undefined) values[i] = valueOf(r);
      }
      return { label, values };
    };
    // The busiest endpoints (by requests, whichever metric is shown: the lines stay the same) each get a line; the
    // rest are one "other" line, its days merged before the metric is taken (a rate of the sums, not a sum of rates).
    const requestsOf = (list: readonly Traffic[]) => list.reduce((a, r) => a + r.requests, 0);
    const ranked = [...byEndpoint].sort((a, b) => requestsOf(b[1]) - requestsOf(a[1]) || a[0].localeCompare(b[0]));
    const series = ranked.slice(0, MAX_SERIES).map(([endpointId, list]) => line(endpointId, list));
    const rest = ranked.slice(MAX_SERIES);
    if (rest.length) {
      const days = new Map<string, Traffic & { timed: number; latencySum: number }>();
      for (const r of rest.flatMap(([, list]) => list)) {
        const day = days.get(r.day) ?? { ...r, requests: 0, errors: 0, served: 0, earnings: 0, avgLatencyMs: null, timed: 0, latencySum: 0 };
        day.requests += r.requests;
        day.errors += r.errors;
        day.served += r.served;
        day.earnings += r.earnings;
        // The mean latency over the answers that have one (as the totals below weigh it).
        if (r.avgLatencyMs !== null) {
          day.timed += r.served;
          day.latencySum += r.avgLatencyMs * r.served;
        }
        day.avgLatencyMs = day.timed === 0 ? null : day.latencySum / day.timed;
        days.set(r.day, day);
      }
      series.push(line(`other (${rest.length})`, [...days.values()]));
    }
    const totals = [...byEndpoint].map(([endpointId, list]) => {
      const sum = (f: (r: Traffic) => number) => list.reduce((a, r) => a + f(r), 0);
      const served = sum((r) => (r.avgLatencyMs === null ? 0 : r.served));
      return {
        endpointId,
        requests: sum((r) => r.requests),
        errors: sum((r) => r.errors),
        earnings: sum((r) => r.earnings),
        latency: served === 0 ? null : sum((r) => (r.avgLatencyMs ?? 0) * r.served) / served,
      };
    });
    return { series, totals };
  }, [traffic.value, metric, range]);
  const earned = totals.reduce((a, t) => a + t.earnings, 0);
  return (
    <Section title="Traffic and earnings">
      <div class="controls">
        <Choice id="tr-metric" label="Show" value={metric} choices={(Object.keys(METRICS) as Metric[]).map((m) => [m, METRICS[m].label] as const)} onChange={setMetric} />
        <Choice id="tr-span" label="Period" value={span} choices={PERIODS} onChange={setSpan} />
      </div>
      <Figures
        class="totals"
        items={[
          ['Earnings', formatUsd(earned), 'provider-earnings'],
          ['Requests', formatInt(totals.reduce((a, t) => a + t.requests, 0)), 'provider-requests'],
          ['Errors', formatInt(totals.reduce((a, t) => a + t.errors, 0))],
        ]}
      />
      {traffic.error && <Notice kind="error">{traffic.error}</Notice>}
      {traffic.value &&
        (series.length ? (
          <DailyChart days={range.days} series={series} format={METRICS[metric].format} whole={metric !== 'errorRate'} title={`${METRICS[metric].label} per day by endpoint`} />
        ) : (
          <p class="muted">No traffic in this period.</p>
        ))}
      {totals.length > 0 && (
        <Table label="Traffic per endpoint" columns={['Endpoint', ['Requests', 'num'], ['Errors', 'num'], ['Error rate', 'num'], ['Mean latency', 'num'], ['Earnings', 'num']]}>
          {totals.map((t) => (
            <tr key={t.endpointId}>
              <th scope="row">{t.endpointId}</th>
              <td class="num">{formatInt(t.requests)}</td>
              <td class="num">{formatInt(t.errors)}</td>
              <td class="num">{percent(t.requests === 0 ? null : t.errors / t.requests)}</td>
              <td class="num">{t.latency === null ? '—' : `${formatInt(Math.round(t.latency))} ms`}</td>
              <td class="num">{formatUsd(t.earnings)}</td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
};

/** The provider's own proposals, paged as the Admin page pages pending ones; `version` reloads the page shown (a publish may add one). */
const ProposalsSection = ({ version }: { version: number }) => {
  // Cursors of the pages before the current one: the list pages towards older proposals, 50 at a time.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const mine = useLoad(() => gql<{ endpointProposals: Connection<Proposal> }>(PROPOSALS, { after }), [after, version]);
  const pageInfo = mine.value?.endpointProposals.pageInfo;
  const proposals = mine.value?.endpointProposals.edges.map((e) => e.node) ?? [];
  if (!mine.error && proposals.length === 0 && cursors.length <= 1) return null;
  return (
    <Section title="Proposals">
      {mine.error && <Notice kind="error">{mine.error}</Notice>}
      {proposals.length > 0 && (
        <Table label="Your endpoint proposals" columns={['Endpoint', 'Status', 'Reason']}>
          {proposals.map((p) => (
            <tr key={p.id}>
              <th scope="row">{p.id}</th>
              <td>{p.proposalStatus.toLowerCase()}</td>
              <td>{p.reason ?? '—'}</td>
            </tr>
          ))}
        </Table>
      )}
      {mine.value && proposals.length === 0 && <p class="muted">No older proposals.</p>}
      {(cursors.length > 1 || pageInfo?.hasNextPage) && (
        <CursorPager cursors={cursors} setCursors={setCursors} pageInfo={pageInfo} older="older proposals follow" />
      )}
    </Section>
  );
};

export const ProviderPage = () => {
  const mine = useLoad(() => gql<{ myProviders: Provider[] }>(MINE));
  const [notice, setNotice] = useState<string | null>(null);
  // Bumped by a publish, which may add a proposal: the proposals shown are loaded again.
  const [published, setPublished] = useState(0);
  const providers = mine.value?.myProviders ?? [];
  return (
    <>
      <h1>Provider</h1>
      {notice && <Notice kind="ok">{notice}</Notice>}
      {mine.error && <Notice kind="error">{mine.error}</Notice>}
      {providers.map((p) => (
        <Section
          key={p.slug}
          title={`${p.name} (${p.slug})`}
          heading={
            <>
              <Name text={p.name} /> ({p.slug})
            </>
          }
        >
          <Figures
            items={[
              ['Protocol', p.protocol.toLowerCase()],
              ['Base URL', <span class="mono">{p.baseUrl}</span>],
              ['Credentials', p.available ? 'available' : (p.unavailableReason ?? 'unavailable')],
            ]}
          />
          <ProviderSwitch provider={p} setting={CANCELLATION} />
          <EndpointTable provider={p.slug} endpoints={p.endpoints} onChanged={mine.reload} manage />
        </Section>
      ))}
      {mine.value && providers.length === 0 && <Notice kind="info">No providers yet: register one below.</Notice>}
      <TrafficSection />
      {providers.length > 0 && (
        <Section title="Publish an endpoint">
          <PublishForm providers={providers} onDone={(message) => (setNotice(message), mine.reload(), setPublished((n) => n + 1))} />
        </Section>
      )}
      <ProposalsSection version={published} />
      <Section title="Register a provider">
        <RegisterForm onDone={(slug) => (setNotice(`Registered ${slug}.`), mine.reload())} />
      </Section>
    </>
  );
};

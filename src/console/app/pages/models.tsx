import { useEffect, useState } from 'preact/hooks';
import { gql } from '../api.js';
import { formatInt, formatPerMillion, parsePerMillion } from '../money.js';
import { Name, Notice, Section, Table, useLoad } from '../ui.js';

type Sort = 'ID' | 'NEWEST' | 'PRICE_LOW_TO_HIGH' | 'PRICE_HIGH_TO_LOW' | 'CONTEXT_HIGH_TO_LOW' | 'LATENCY_LOW_TO_HIGH' | 'THROUGHPUT_HIGH_TO_LOW';
const SORTS: readonly (readonly [Sort, string])[] = [
  ['ID', 'name (id)'],
  ['NEWEST', 'newest'],
  ['PRICE_LOW_TO_HIGH', 'price, low to high'],
  ['PRICE_HIGH_TO_LOW', 'price, high to low'],
  ['CONTEXT_HIGH_TO_LOW', 'context, largest first'],
  ['LATENCY_LOW_TO_HIGH', 'latency, fastest first'],
  ['THROUGHPUT_HIGH_TO_LOW', 'throughput, highest first'],
];
type Modality = 'TEXT' | 'IMAGE' | 'AUDIO' | 'VIDEO' | 'FILE';
const MODALITIES: readonly Modality[] = ['TEXT', 'IMAGE', 'AUDIO', 'VIDEO', 'FILE'];

interface Prices {
  prompt: number;
  completion: number;
  request: number;
}
interface Percentiles {
  p50: number;
  p90: number;
}
interface Endpoint {
  id: string;
  status: string;
  contextLength: number;
  maxOutput: number;
  quantization: string | null;
  prices: Prices;
  provider: { slug: string; name: string };
  stats: { requests30m: number; errorRate30m: number | null; latency30m: Percentiles | null; throughput30m: Percentiles | null; uptime30m: number | null; uptime1d: number | null };
}
interface Model {
  id: string;
  name: string;
  description: string;
  contextLength: number;
  inputModalities: Modality[];
  cheapestPrices: Prices | null;
  endpoints: { id: string }[];
}
interface Filter {
  search?: string;
  provider?: string;
  minContextLength?: number;
  maxPromptPrice?: number;
  inputModality?: Modality;
}

const PRICES = 'prompt completion request';
/**
 * The list and each model's endpoints are two queries: together they are over the server's query cost limit. The
 * whole catalog, models that cannot serve now included (an operator browses what is configured).
 */
const MODELS = `query Catalog($filter: ModelFilter, $sort: ModelSort, $after: String) {
  models(first: 50, filter: $filter, sort: $sort, after: $after, includeUnavailable: true) {
    edges { node { id name description contextLength inputModalities cheapestPrices { ${PRICES} } endpoints { id } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const ENDPOINTS = `query ModelEndpoints($id: ID!) { model(id: $id) { id endpoints {
  id status contextLength maxOutput quantization prices { ${PRICES} } provider { slug name }
  stats { requests30m errorRate30m latency30m { p50 p90 } throughput30m { p50 p90 } uptime30m uptime1d }
} } }`;

/** Stats are re-read this often while the page is open: they are rolling windows. */
const REFRESH_MS = 30_000;

/** Per-token nano-dollars as dollars per million tokens, exactly. */
const perMillion = (nano: number): string => (nano === 0 ? 'free' : formatPerMillion(nano));
const percent = (value: number | null): string => (value === null ? '—' : `${value.toFixed(value >= 99.95 || value === 0 ? 0 : 1)}%`);

/** A model's endpoints with their rolling stats, read again every REFRESH_MS while shown. */
const EndpointTable = ({ model }: { model: Model }) => {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const loaded = useLoad(() => gql<{ model: { endpoints: Endpoint[] } | null }>(ENDPOINTS, { id: model.id }), [model.id, tick]);
  if (loaded.error) return <Notice kind="error">{loaded.error}</Notice>;
  const endpoints = loaded.value?.model?.endpoints;
  if (!endpoints) return <p class="muted" role="status">Loading the endpoints…</p>;
  return (
  <table class="endpoints" aria-label={`Endpoints of ${model.name}`}>
    <thead>
      <tr>
        <th scope="col">Provider</th>
        <th scope="col" class="num">Prompt / 1M</th>
        <th scope="col" class="num">Completion / 1M</th>
        <th scope="col" class="num">Context</th>
        <th scope="col" class="num">Max output</th>
        <th scope="col" class="num" title="Time to first token, last 30 minutes">
          Latency p50 / p90
        </th>
        <th scope="col" class="num" title="Tokens per second, last 30 minutes">
          Throughput p50
        </th>
        <th scope="col" class="num">Uptime 30m / 1d</th>
        <th scope="col" class="num">Requests 30m</th>
      </tr>
    </thead>
    <tbody>
      {endpoints.map((e) => (
        <tr key={e.id} data-endpoint={e.id}>
          <th scope="row">
            <Name text={e.provider.name} /> <span class="muted small mono">{e.provider.slug}</span>
            {e.quantization && <span class="muted small"> ({e.quantization})</span>}
          </th>
          <td class="num">{perMillion(e.prices.prompt)}</td>
          <td class="num">{perMillion(e.prices.completion)}</td>
          <td class="num">{formatInt(e.contextLength)}</td>
          <td class="num">{formatInt(e.maxOutput)}</td>
          <td class="num" data-testid="latency">
            {e.stats.latency30m ? `${formatInt(Math.round(e.stats.latency30m.p50))} / ${formatInt(Math.round(e.stats.latency30m.p90))} ms` : '—'}
          </td>
          <td class="num" data-testid="throughput">
            {e.stats.throughput30m ? `${e.stats.throughput30m.p50.toFixed(1)} tok/s` : '—'}
          </td>
          <td class="num" data-testid="uptime">
            {percent(e.stats.uptime30m)} / {percent(e.stats.uptime1d)}
          </td>
          <td class="num">{formatInt(e.stats.requests30m)}</td>
        </tr>
      ))}
    </tbody>
  </table>
  );
};

export const ModelsPage = () => {
  const [search, setSearch] = useState('');
  const [provider, setProvider] = useState('');
  const [minContext, setMinContext] = useState('');
  const [maxPrice, setMaxPrice] = useState('');
  const [modality, setModality] = useState<Modality | ''>('');
  const [sort, setSort] = useState<Sort>('ID');
  const [filter, setFilter] = useState<Filter>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [pages, setPages] = useState<(string | null)[]>([null]);
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const after = pages.at(-1) ?? null;
  const catalog = useLoad(() => gql<{ models: { edges: { node: Model }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(MODELS, { filter, sort, after }), [filter, sort, after]);
  const models = catalog.value?.models.edges.map((e) => e.node) ?? [];

  const apply = (event: Event) => {
    event.preventDefault();
    setFormError(null);
    const next: Filter = {};
    if (search.trim()) next.search = search.trim();
    if (provider.trim()) next.provider = provider.trim();
    if (minContext.trim()) {
      const n = Number(minContext.replace(/[,_\s]/g, ''));
      if (!Number.isInteger(n) || n < 0) return setFormError('The minimum context is a whole number of tokens, e.g. 32000.');
      next.minContextLength = n;
    }
    if (maxPrice.trim()) {
      // Dollars per million tokens to nano-dollars per token: a tenth of a cent per million is the smallest step.
      const nano = parsePerMillion(maxPrice, 'maximum prompt');
      if (typeof nano === 'string') return setFormError(nano);
      next.maxPromptPrice = nano;
    }
    if (modality) next.inputModality = modality;
    setPages([null]);
    setFilter(next);
  };
  const toggle = (id: string) =>
    setOpen((was) => {
      const next = new Set(was);
      if (!next.delete(id)) next.add(id);
      return next;
    });

  return (
    <>
      <h1>Models</h1>
      <Section title="Catalog">
        <form class="grid-form" onSubmit={apply} aria-label="Filter models">
          <div>
            <label for="m-search">Search (id or name)</label>
            <input id="m-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          </div>
          <div>
            <label for="m-provider">Provider (slug)</label>
            <input id="m-provider" value={provider} onInput={(e) => setProvider(e.currentTarget.value)} />
          </div>
          <div>
            <label for="m-context">Context at least (tokens)</label>
            <input id="m-context" inputMode="numeric" value={minContext} onInput={(e) => setMinContext(e.currentTarget.value)} />
          </div>
          <div>
            <label for="m-price">Prompt price at most (USD / 1M tokens)</label>
            <input id="m-price" inputMode="decimal" value={maxPrice} onInput={(e) => setMaxPrice(e.currentTarget.value)} />
          </div>
          <div>
            <label for="m-modality">Input</label>
            <select id="m-modality" value={modality} onChange={(e) => setModality(e.currentTarget.value as Modality | '')}>
              <option value="">any</option>
              {MODALITIES.map((m) => (
                <option key={m} value={m}>
                  {m.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="m-sort">Sort by</label>
            <select
              id="m-sort"
              value={sort}
              onChange={(e) => {
                setPages([null]);
                setSort(e.currentTarget.value as Sort);
              }}
            >
              {SORTS.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <div class="form-actions">
            <button type="submit" class="primary">
              Apply filters
            </button>
          </div>
          {formError && <Notice kind="error">{formError}</Notice>}
        </form>
        {catalog.error && <Notice kind="error">{catalog.error}</Notice>}
        {/* Results of the filters applied before would read as the answer to the ones refused: none until fixed. */}
        {!formError && (
          <>
            <Table label="Models" busy={catalog.loading} columns={['Model', ['Context', 'num'], ['Prompt / 1M', 'num'], ['Completion / 1M', 'num'], 'Input', ['Endpoints', 'num']]}>
              {models.map((m) => [
                <tr key={m.id} data-model={m.id}>
                  <th scope="row">
                    <button type="button" class="link expander" aria-expanded={open.has(m.id)} onClick={() => toggle(m.id)} aria-label={`${open.has(m.id) ? 'Hide' : 'Show'} the endpoints of ${m.id}`}>
                      {open.has(m.id) ? '▾' : '▸'}
                    </button>
                    <Name text={m.name} /> <span class="muted small mono">{m.id}</span>
                  </th>
                  <td class="num">{formatInt(m.contextLength)}</td>
                  <td class="num">{m.cheapestPrices ? perMillion(m.cheapestPrices.prompt) : 'free'}</td>
                  <td class="num">{m.cheapestPrices ? perMillion(m.cheapestPrices.completion) : 'free'}</td>
                  <td>{m.inputModalities.map((x) => x.toLowerCase()).join(', ')}</td>
                  <td class="num">{m.endpoints.length}</td>
                </tr>,
                open.has(m.id) && (
                  <tr key={`${m.id}-endpoints`} class="expanded">
                    <td colSpan={6}>
                      {m.description && <p class="muted small description">{m.description}</p>}
                      <div class="table-wrap">
                        <EndpointTable model={m} />
                      </div>
                    </td>
                  </tr>
                ),
              ])}
            </Table>
            {catalog.value && models.length === 0 && <p class="muted">No model matches these filters.</p>}
            <div class="pager">
              <span class="muted small">Prices per million tokens on the cheapest paid endpoint (a free endpoint serves the model's :free variant); an open model's endpoint stats cover the last 30 minutes, read again every {REFRESH_MS / 1000} s.</span>
              {pages.length > 1 && (
                <button type="button" onClick={() => setPages((p) => p.slice(0, -1))}>
                  Previous
                </button>
              )}
              {catalog.value?.models.pageInfo.hasNextPage && (
                <button type="button" onClick={() => setPages((p) => [...p, catalog.value?.models.pageInfo.endCursor ?? null])}>
                  Next
                </button>
              )}
            </div>
          </>
        )}
      </Section>
    </>
  );
};

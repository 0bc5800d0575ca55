import { useEffect, useMemo, useState } from 'preact/hooks';
import { DOMAIN_ERROR, gql, unwrap, withIdempotencyKey, type Connection, type Result } from '../api.js';
import { DailyChart, MAX_SERIES, type Series } from '../chart.js';
import { formatInt, formatTime, formatUsd, MAX_LEDGER_AMOUNT, parseUsd } from '../money.js';
import type { Role } from '../navigation.js';
import { CursorPager, Choice, Figures, messageOf, Name, Notice, Section, Table, useLoad } from '../ui.js';
import { BYOK_CAPABLE, CANCELLATION, ENDPOINT_FIELDS, EndpointTable, formatPerMillion, lastDays, ProviderSwitch, type EndpointRow } from './provider.js';

const ROLES: readonly Role[] = ['USER', 'DESIGNER', 'PROVIDER', 'ADMIN'];

interface Balance {
  available: number;
  purchased: number;
  granted: number;
  refunded: number;
  settled: number;
}
interface Account {
  id: string;
  name: string;
  email: string | null;
  roles: Role[];
  plan: string;
  openedAt: string;
  balance: Balance;
}
interface UsageRow {
  day: string;
  group: string;
  requests: number;
  cost: number;
}
interface Generation {
  id: string;
  accountId: string;
  createdAt: string;
  model: string | null;
  provider: string | null;
  status: string;
  cost: number;
  latencyMs: number | null;
}
interface Proposal {
  id: string;
  model: string;
  /** What the admin reviews: approving sends it back, and a proposal filed again since is refused (CONFLICT). */
  version: number;
  provider: { slug: string; name: string; baseUrl: string | null; cancellable: boolean };
  upstreamModel: string;
  /** Null on proposals filed before reviews were pinned: the provider's then. */
  baseUrl: string | null;
  cancellable: boolean | null;
  contextLength: number;
  maxOutput: number;
  quantization: string | null;
  supportedParameters: string[];
  variants: string[];
  prices: { prompt: number; completion: number; request: number; reasoning: number; cacheRead: number; cacheWrite: number };
  createsModel: boolean;
  /** A change to an endpoint already published, which routes as approved meanwhile. */
  amends: boolean;
  /** An amendment's changes to the endpoint as it routes now. */
  changes: { field: string; was: unknown; now: unknown }[] | null;
  newModel: { name: string; description: string; contextLength: number; inputModalities: string[] } | null;
  proposedBy: string;
  proposedAt: string;
}
interface AuditReport {
  ok: boolean;
  accountsChecked: number;
  eventsReplayed: number;
  durationMs: number;
  differences: { accountId: string; model: string; documentId: string; field: string; expected: unknown; actual: unknown }[];
}

const ACCOUNT_FIELDS = 'id name email roles plan openedAt balance { available purchased granted refunded settled }';
const ACCOUNTS = `query Accounts($search: String, $role: Role, $after: String) {
  accounts(first: 50, search: $search, role: $role, after: $after) { edges { node { ${ACCOUNT_FIELDS} } } pageInfo { hasNextPage endCursor } }
}`;
type AccountPage = { accounts: { edges: { node: Account }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
const account = (name: string, args: string, call: string) => `mutation ${name}(${args}) { r: ${call} { __typename ... on Account { ${ACCOUNT_FIELDS} } ${DOMAIN_ERROR} } }`;
const GRANT_ROLE = account('GrantRole', '$id: ID!, $role: Role!', 'grantRole(accountId: $id, role: $role)');
const REVOKE_ROLE = account('RevokeRole', '$id: ID!, $role: Role!', 'revokeRole(accountId: $id, role: $role)');
const CHANGE_PLAN = account('ChangePlan', '$id: ID!, $plan: String!', 'changePlan(accountId: $id, plan: $plan)');
const credits = (name: string, field: string) =>
  `mutation ${name}($id: ID!, $amount: Money!, $reason: String!, $key: String) { r: ${field}(accountId: $id, amount: $amount, reason: $reason, idempotencyKey: $key) { __typename ... on Balance { available } ${DOMAIN_ERROR} } }`;
const GRANT = credits('GrantCredits', 'grantCredits');
const REFUND = credits('RefundCredits', 'refundCredits');
const PLATFORM = `query Platform($from: String!, $to: String!) {
  platformUsage(groupBy: MODEL, perDay: true, from: $from, to: $to) { day group requests cost }
  platformGenerations(first: 15, newestFirst: true) { edges { node { id accountId createdAt model provider status cost latencyMs } } }
}`;
const HEALTH = `query Health { providers { slug name available ownerAccountId dataPolicy cancellable byok endpoints { ${ENDPOINT_FIELDS} } } }`;
const SET_DATA_POLICY = `mutation SetDataPolicy($provider: String!, $policy: DataPolicy) { r: setProviderDataPolicy(provider: $provider, dataPolicy: $policy) { __typename ... on Provider { slug } ${DOMAIN_ERROR} } }`;
type DataPolicy = '' | 'COLLECTS' | 'NO_COLLECTION' | 'ZERO_RETENTION';
/** Requests that ask for a data policy (provider.data_collection "deny", provider.zdr) route by these. */
const DATA_POLICIES: readonly (readonly [DataPolicy, string])[] = [
  ['', 'unstated (counts as collecting)'],
  ['COLLECTS', 'collects (stores or trains)'],
  ['NO_COLLECTION', 'no collection'],
  ['ZERO_RETENTION', 'zero retention'],
];
const PROPOSALS = `query Pending($after: String) {
  endpointProposals(first: 30, after: $after, status: PENDING) { edges { node {
    id model version provider { slug name baseUrl cancellable } upstreamModel baseUrl cancellable contextLength maxOutput quantization supportedParameters variants
    prices { prompt completion request reasoning cacheRead cacheWrite } createsModel amends changes newModel { name description contextLength inputModalities } proposedBy proposedAt } } pageInfo { hasNextPage endCursor } }
}`;
const APPROVE = `mutation Approve($provider: String!, $model: String!, $version: Int, $prices: ReviewedPricesInput) {
  r: approveEndpoint(provider: $provider, model: $model, expectedVersion: $version, expectedPrices: $prices) { __typename ... on Endpoint { id } ${DOMAIN_ERROR} }
}`;
const REJECT = `mutation Reject($provider: String!, $model: String!, $reason: String!, $version: Int) { r: rejectEndpoint(provider: $provider, model: $model, reason: $reason, expectedVersion: $version) { __typename ... on EndpointProposal { id } ${DOMAIN_ERROR} } }`;
const AUDIT = `query Audit { billingAudit { ok accountsChecked eventsReplayed durationMs differences { accountId model documentId field expected actual } } }`;

const AccountPanel = ({ account: shown, onChanged, onClose }: { account: Account; onChanged: () => void; onClose: () => void }) => {
  const [role, setRole] = useState<Role>('PROVIDER');
  const [plan, setPlan] = useState(shown.plan);
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const run = async (work: () => Promise<string>) => {
    setMessage(null);
    try {
      setMessage({ kind: 'ok', text: await work() });
      onChanged();
    } catch (failure) {
      setMessage({ kind: 'error', text: messageOf(failure) });
    }
  };
  // The select lists only roles the account lacks: what it shows is what a click grants.
  const grantable = ROLES.filter((r) => !shown.roles.includes(r));
  const chosen = grantable.includes(role) ? role : grantable[0];
  const changeRole = (query: string, which: Role, verb: string) =>
    run(async () => {
      unwrap((await gql<{ r: Result<Account> }>(query, { id: shown.id, role: which })).r);
      return `${verb} ${which.toLowerCase()}.`;
    });
  const moveCredits = (query: string, verb: string) =>
    run(async () => {
      const nano = parseUsd(amount);
      if (nano === null || nano === 0) throw new Error('The amount is dollars, e.g. 10 or 2.50.');
      if (nano > MAX_LEDGER_AMOUNT) throw new Error(`The amount is at most ${formatUsd(MAX_LEDGER_AMOUNT)} at a time.`);
      if (!reason.trim()) throw new Error('Give a reason: it is recorded in the ledger.');
      // The reason is not part of what is sent again: a grant whose answer was lost, its reason's typo fixed, is the same grant.
      const balance = await withIdempotencyKey(`${query}\n${shown.id}\n${nano}`, async (key) =>
        unwrap((await gql<{ r: Result<{ available: number }> }>(query, { id: shown.id, amount: nano, reason: reason.trim(), key })).r),
      );
      setAmount('');
      setReason('');
      return `${verb} ${formatUsd(nano)}: the balance is ${formatUsd(balance.available)}.`;
    });
  return (
    <Section
      title={`Account ${shown.name}`}
      heading={
        <>
          Account <Name text={shown.name} />
        </>
      }
      actions={
        <button type="button" onClick={onClose}>
          Close account
        </button>
      }
    >
      <Figures
        items={[
          ['Id', <span class="mono">{shown.id}</span>],
          ['Email', shown.email ?? '—'],
          ['Opened', formatTime(shown.openedAt)],
          ['Available', formatUsd(shown.balance.available), 'account-available'],
          ['Purchased', formatUsd(shown.balance.purchased)],
          ['Granted', formatUsd(shown.balance.granted)],
          ['Refunded', formatUsd(shown.balance.refunded)],
          ['Spent', formatUsd(shown.balance.settled)],
        ]}
      />
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <div class="controls" role="group" aria-label="Roles">
        <div>
          <span class="muted small">Roles: </span>
          {shown.roles.map((r) => (
            <button key={r} type="button" onClick={() => changeRole(REVOKE_ROLE, r, 'Revoked')} aria-label={`Revoke the role ${r.toLowerCase()}`} title="Revoke this role">
              {r.toLowerCase()} ✕
            </button>
          ))}
        </div>
        <div>
          <label for="acct-role">Role to grant</label>
          <select id="acct-role" value={chosen} onChange={(e) => setRole(e.currentTarget.value as Role)} disabled={!chosen}>
            {grantable.map((r) => (
              <option key={r} value={r}>
                {r.toLowerCase()}
              </option>
            ))}
          </select>
        </div>
        <div class="form-actions">
          <button type="button" onClick={() => chosen && changeRole(GRANT_ROLE, chosen, 'Granted')} disabled={!chosen}>
            Grant role
          </button>
        </div>
      </div>
      <form class="controls" aria-label="Grant or refund credits" onSubmit={(e) => (e.preventDefault(), moveCredits(GRANT, 'Granted'))}>
        <div>
          <label for="acct-amount">Amount (USD)</label>
          <input id="acct-amount" inputMode="decimal" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} required />
        </div>
        <div>
          <label for="acct-reason">Reason</label>
          <input id="acct-reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} required maxLength={500} />
        </div>
        <div class="form-actions">
          <button type="submit" class="primary">
            Grant credits
          </button>
          <button type="button" class="danger" onClick={() => moveCredits(REFUND, 'Refunded')}>
            Refund credits
          </button>
        </div>
      </form>
      <form
        class="controls"
        aria-label="Change the plan"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            unwrap((await gql<{ r: Result<Account> }>(CHANGE_PLAN, { id: shown.id, plan: plan.trim() })).r);
            return `Moved to the ${plan.trim()} plan.`;
          });
        }}
      >
        <div>
          <label for="acct-plan">Plan</label>
          <input id="acct-plan" value={plan} onInput={(e) => setPlan(e.currentTarget.value)} required />
        </div>
        <div class="form-actions">
          <button type="submit">Change plan</button>
        </div>
      </form>
    </Section>
  );
};

const AccountsSection = () => {
  const [search, setSearch] = useState('');
  const [roleFilter, setRoleFilter] = useState<'' | Role>('');
  // The search runs on the server, over every account, once typing pauses.
  const [needle, setNeedle] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => setNeedle(search.trim()), 250);
    return () => clearTimeout(timer);
  }, [search]);
  const [more, setMore] = useState<{ rows: Account[]; cursor: string | null } | null>(null);
  const [moreError, setMoreError] = useState<string | null>(null);
  const variables = { search: needle || null, role: roleFilter || null };
  const accounts = useLoad(() => {
    setMore(null);
    return gql<AccountPage>(ACCOUNTS, variables);
  }, [needle, roleFilter]);
  const [open, setOpen] = useState<string | null>(null);
  const first = accounts.value?.accounts;
  const shown = [...(first?.edges.map((e) => e.node) ?? []), ...(more?.rows ?? [])];
  const cursor = more ? more.cursor : first?.pageInfo.hasNextPage ? first.pageInfo.endCursor : null;
  const showMore = async () => {
    setMoreError(null);
    try {
      const page = (await gql<AccountPage>(ACCOUNTS, { ...variables, after: cursor })).accounts;
      setMore({ rows: [...(more?.rows ?? []), ...page.edges.map((e) => e.node)], cursor: page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null });
    } catch (failure) {
      setMoreError(messageOf(failure));
    }
  };
  const opened = shown.find((a) => a.id === open);
  return (
    <>
      <Section title="Accounts">
        <div class="controls">
          <div>
            <label for="acct-search">Search (name, email or id)</label>
            <input id="acct-search" type="search" value={search} maxLength={100} onInput={(e) => setSearch(e.currentTarget.value)} />
          </div>
          <div>
            <label for="acct-role-filter">Role</label>
            <select id="acct-role-filter" value={roleFilter} onChange={(e) => setRoleFilter(e.currentTarget.value as '' | Role)}>
              <option value="">any</option>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
        </div>
        {(accounts.error ?? moreError) && <Notice kind="error">{accounts.error ?? moreError}</Notice>}
        <Table label="Accounts" columns={['Name', 'Email', 'Roles', 'Plan', ['Balance', 'num'], ['Open', 'hidden']]}>
          {shown.map((a) => (
            <tr key={a.id} data-account-id={a.id}>
              <th scope="row">
                <Name text={a.name} />
              </th>
              <td>{a.email ?? '—'}</td>
              <td>{a.roles.map((r) => r.toLowerCase()).join(', ')}</td>
              <td>{a.plan}</td>
              <td class="num">{formatUsd(a.balance.available)}</td>
              <td>
                <button type="button" class="link" onClick={() => setOpen(a.id)} aria-label={`Open account ${a.name}`}>
                  Open
                </button>
              </td>
            </tr>
          ))}
        </Table>
        {accounts.value && !accounts.loading && shown.length === 0 && <p class="muted">No account matches.</p>}
        {cursor && (
          <button type="button" onClick={() => void showMore()}>
            Show more accounts
          </button>
        )}
      </Section>
      {opened && <AccountPanel key={opened.id} account={opened} onChanged={accounts.reload} onClose={() => setOpen(null)} />}
    </>
  );
};

const PlatformSection = () => {
  const range = useMemo(() => lastDays(30), []);
  const platform = useLoad(() => gql<{ platformUsage: UsageRow[]; platformGenerations: { edges: { node: Generation }[] } }>(PLATFORM, { from: range.from, to: range.to }), [range]);
  const { series, spend, requests } = useMemo(() => {
    const rows = platform.value?.platformUsage ?? [];
    const index = new Map(range.days.map((d, i) => [new Date(d * 1000).toISOString().slice(0, 10), i]));
    const byModel = new Map<string, number[]>();
    for (const row of rows) {
      const i = index.get(row.day);
      if (i === undefined) continue;
      const values = byModel.get(row.group) ?? new Array<number>(range.days.length).fill(0);
      values[i] = (values[i] ?? 0) + row.cost;
      byModel.set(row.group, values);
    }
    const total = (v: readonly number[]) => v.reduce((a, b) => a + b, 0);
    const ranked = [...byModel].sort((a, b) => total(b[1]) - total(a[1]));
    const series: Series[] = ranked.slice(0, MAX_SERIES).map(([label, values]) => ({ label, values }));
    const rest = ranked.slice(MAX_SERIES);
    if (rest.length) series.push({ label: `other (${rest.length})`, values: range.days.map((_, i) => total(rest.map(([, v]) => v[i] ?? 0))) });
    return { series, spend: rows.reduce((a, r) => a + r.cost, 0), requests: rows.reduce((a, r) => a + r.requests, 0) };
  }, [platform.value, range]);
  const generations = platform.value?.platformGenerations.edges.map((e) => e.node) ?? [];
  return (
    <>
      <Section title="Platform usage">
        <Figures
          class="totals"
          items={[
            ['Spend, 30 days', formatUsd(spend), 'platform-spend'],
            ['Requests, 30 days', formatInt(requests), 'platform-requests'],
          ]}
        />
        {platform.error && <Notice kind="error">{platform.error}</Notice>}
        {platform.value && (series.length ? <DailyChart days={range.days} series={series} format={formatUsd} title="Platform spend per day by model" /> : <p class="muted">No usage in 30 days.</p>)}
      </Section>
      <Section title="Platform generations">
        <Table label="Latest generations of every account" columns={['When', 'Account', 'Model', 'Provider', 'Status', ['Latency', 'num'], ['Cost', 'num']]}>
          {generations.map((g) => (
            <tr key={g.id}>
              <td>{formatTime(g.createdAt)}</td>
              <td class="mono small">{g.accountId}</td>
              <td>{g.model ?? '—'}</td>
              <td>{g.provider ?? '—'}</td>
              <td>
                <span class={`badge badge-${g.status.toLowerCase()}`}>{g.status.toLowerCase()}</span>
              </td>
              <td class="num">{g.latencyMs === null ? '—' : `${formatInt(g.latencyMs)} ms`}</td>
              <td class="num">{formatUsd(g.cost)}</td>
            </tr>
          ))}
        </Table>
        {platform.value && generations.length === 0 && <p class="muted">No generations yet.</p>}
      </Section>
    </>
  );
};

const HealthSection = () => {
  const health = useLoad(() => gql<{ providers: { slug: string; name: string; available: boolean; dataPolicy: DataPolicy | null; cancellable: boolean; byok: boolean; endpoints: EndpointRow[] }[] }>(HEALTH));
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const setPolicy = async (provider: { slug: string; name: string }, policy: DataPolicy) => {
    setMessage(null);
    try {
      unwrap((await gql<{ r: Result<{ slug: string }> }>(SET_DATA_POLICY, { provider: provider.slug, policy: policy || null })).r);
      setMessage({ kind: 'ok', text: `${provider.name}'s data policy: ${DATA_POLICIES.find(([v]) => v === policy)![1]}.` });
      health.reload();
    } catch (error) {
      setMessage({ kind: 'error', text: messageOf(error) });
    }
  };
  return (
    <Section
      title="Providers' health"
      actions={
        <button type="button" onClick={health.reload}>
          Refresh health
        </button>
      }
    >
      {health.error && <Notice kind="error">{health.error}</Notice>}
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      {health.value?.providers.map((p) => (
        <div key={p.slug}>
          <h3>
            <Name text={p.name} /> <span class="muted small">({p.slug})</span> {!p.available && <span class="badge badge-failed">credentials unavailable</span>}
          </h3>
          <div class="controls provider-controls">
            <Choice id={`data-policy-${p.slug}`} label={`${p.name}: data policy`} value={p.dataPolicy ?? ''} choices={DATA_POLICIES} onChange={(policy) => void setPolicy(p, policy)} />
            <ProviderSwitch provider={p} setting={CANCELLATION} />
            <ProviderSwitch provider={p} setting={BYOK_CAPABLE} />
          </div>
          <EndpointTable provider={p.slug} endpoints={p.endpoints} onChanged={health.reload} manage={false} />
        </div>
      ))}
    </Section>
  );
};

/** The prices that differ from what publishEndpoint defaults them to: what a call costs besides prompt and completion. */
const otherPrices = (p: Proposal['prices']): string => {
  const shown = [
    p.request !== 0 && `request ${formatUsd(p.request)} each`,
    p.reasoning !== p.completion && `reasoning ${formatPerMillion(p.reasoning)}`,
    p.cacheRead !== p.prompt && `cache read ${formatPerMillion(p.cacheRead)}`,
    p.cacheWrite !== p.prompt && `cache write ${formatPerMillion(p.cacheWrite)}`,
  ].filter((text): text is string => typeof text === 'string');
  return shown.length > 0 ? shown.join(', ') : 'as prompt and completion';
};

/** What the endpoint would be besides its prices: where calls go, what is asked there, its limits. */
const Serves = ({ p }: { p: Proposal }) => {
  const cancellable = p.cancellable ?? p.provider.cancellable;
  const limits = [
    `context ${formatInt(p.contextLength)}`,
    `max output ${formatInt(p.maxOutput)}`,
    p.quantization !== null && `quantization ${p.quantization}`,
    p.variants.length > 0 && `variants ${p.variants.map((v) => v.toLowerCase()).join(', ')}`,
    !cancellable && 'not cancellable (a client that leaves is billed the whole answer)',
  ].filter((text): text is string => typeof text === 'string');
  return (
    <>
      <Name text={p.upstreamModel} /> <span class="muted small">at</span> <Name text={p.baseUrl ?? p.provider.baseUrl ?? 'in-process'} />
      <div class="muted small">{limits.join(', ')}</div>
      <div class="muted small">parameters: {p.supportedParameters.length > 0 ? p.supportedParameters.join(', ') : 'none'}</div>
      {p.changes && p.changes.length > 0 && (
        <div class="small">
          changes:{' '}
          {p.changes.map((c, i) => (
            <span key={c.field}>
              {i > 0 && ', '}
              {c.field} <Name text={JSON.stringify(c.was)} /> → <Name text={JSON.stringify(c.now)} />
            </span>
          ))}
        </div>
      )}
      {p.newModel && (
        <div class="muted small">
          creates the model <Name text={p.newModel.name} />
          {p.newModel.description && <>: {p.newModel.description}</>} (context {formatInt(p.newModel.contextLength)}, takes{' '}
          {p.newModel.inputModalities.map((m) => m.toLowerCase()).join(', ')})
        </div>
      )}
    </>
  );
};

const ProposalsSection = () => {
  // Cursors of the pages before the current one: the list pages towards older proposals, 30 at a time.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const pending = useLoad(() => gql<{ endpointProposals: Connection<Proposal> }>(PROPOSALS, { after }), [after]);
  const pageInfo = pending.value?.endpointProposals.pageInfo;
  const [reasons, setReasons] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const decide = async (p: Proposal, approve: boolean) => {
    setMessage(null);
    const reason = reasons[p.id]?.trim() ?? '';
    // Said before anything is sent: the list has not changed, so it is not read again.
    if (!approve && !reason) return setMessage({ kind: 'error', text: 'Give the provider a reason for the rejection.' });
    try {
      // A decision is about the version shown (an approval every price too): a proposal filed again since (another
      // upstream model, base URL, limit or price) is refused, and the list shows it as it is now, to be reviewed again.
      const variables = { provider: p.provider.slug, model: p.model, version: p.version, ...(approve ? { prices: p.prices } : { reason }) };
      unwrap((await gql<{ r: Result<{ id: string }> }>(approve ? APPROVE : REJECT, variables)).r);
      setMessage({ kind: 'ok', text: `${approve ? 'Approved' : 'Rejected'} ${p.id}.` });
      pending.reload();
    } catch (failure) {
      setMessage({ kind: 'error', text: messageOf(failure) });
      pending.reload();
    }
  };
  const proposals = pending.value?.endpointProposals.edges.map((e) => e.node) ?? [];
  return (
    <Section title="Endpoints waiting for approval">
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      {pending.error && <Notice kind="error">{pending.error}</Notice>}
      {proposals.length > 0 && (
        <Table label="Pending endpoint proposals" columns={['Endpoint', 'Provider', 'Serves', ['Prompt', 'num'], ['Completion', 'num'], 'Other prices', 'Proposed', 'Decision']}>
          {proposals.map((p) => (
            <tr key={p.id}>
              <th scope="row">
                {p.id} {p.createsModel && <span class="muted small">(new model)</span>}
                {p.amends && <span class="muted small">(change to the published endpoint, which routes as approved meanwhile)</span>} <span class="muted small">version {p.version}</span>
              </th>
              <td>
                <Name text={p.provider.name} />
              </td>
              <td>
                <Serves p={p} />
              </td>
              <td class="num">{formatPerMillion(p.prices.prompt)}</td>
              <td class="num">{formatPerMillion(p.prices.completion)}</td>
              <td>{otherPrices(p.prices)}</td>
              <td>{formatTime(p.proposedAt)}</td>
              <td class="actions">
                <div class="decide">
                  <button type="button" class="primary" onClick={() => decide(p, true)} aria-label={`Approve ${p.id}`}>
                    Approve
                  </button>
                  <input aria-label={`Reason to reject ${p.id}`} placeholder="reason" value={reasons[p.id] ?? ''} onInput={(e) => setReasons({ ...reasons, [p.id]: e.currentTarget.value })} />
                  <button type="button" class="danger" onClick={() => decide(p, false)} aria-label={`Reject ${p.id}`}>
                    Reject
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </Table>
      )}
      {pending.value && proposals.length === 0 && <p class="muted">{cursors.length > 1 ? 'No older proposal waits.' : 'Nothing waits for approval.'}</p>}
      {(cursors.length > 1 || pageInfo?.hasNextPage) && (
        <CursorPager cursors={cursors} setCursors={setCursors} pageInfo={pageInfo} older="older proposals wait too" />
      )}
    </Section>
  );
};

const show = (value: unknown) => (value === undefined ? '—' : JSON.stringify(value));

const AuditSection = () => {
  const [report, setReport] = useState<AuditReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const audit = async () => {
    setBusy(true);
    setError(null);
    try {
      setReport((await gql<{ billingAudit: AuditReport }>(AUDIT)).billingAudit);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section
      title="Billing audit"
      actions={
        <button type="button" class="primary" onClick={audit} disabled={busy}>
          {busy ? 'Auditing…' : 'Run billing audit'}
        </button>
      }
    >
      <p class="muted small">Replays the ledger from its first event and compares every balance, usage row and generation cost with the read models.</p>
      {error && <Notice kind="error">{error}</Notice>}
      {report && (
        <div data-testid="audit-report" aria-live="polite">
          <Notice kind={report.ok ? 'ok' : 'error'}>
            {report.ok ? 'No differences' : `${report.differences.length} difference${report.differences.length === 1 ? '' : 's'}`}: {formatInt(report.accountsChecked)} accounts,{' '}
            {formatInt(report.eventsReplayed)} events replayed in {formatInt(report.durationMs)} ms.
          </Notice>
          {report.differences.length > 0 && (
            <Table label="Audit differences" columns={['Account', 'Read model', 'Document', 'Field', 'Replay says', 'Read model holds']}>
              {report.differences.map((d) => (
                <tr key={`${d.model}|${d.documentId}|${d.field}`}>
                  <td class="mono small">{d.accountId}</td>
                  <td>
                    <Name text={d.model} />
                  </td>
                  <td class="mono small">{d.documentId}</td>
                  <td>{d.field}</td>
                  <td class="num">{show(d.expected)}</td>
                  <td class="num">{show(d.actual)}</td>
                </tr>
              ))}
            </Table>
          )}
        </div>
      )}
    </Section>
  );
};

export const AdminPage = () => (
  <>
    <h1>Admin</h1>
    <AccountsSection />
    <PlatformSection />
    <HealthSection />
    <ProposalsSection />
    <AuditSection />
  </>
);

import { useRef, useState } from 'preact/hooks';
import { DOMAIN_ERROR, fieldOf, gql, storedKey, unwrap, type Result } from '../api.js';
import { formatTime, formatUsd, MAX_MONEY, parseUsd } from '../money.js';
import type { Me } from '../main.js';
import { restrictedNote } from '../navigation.js';
import { loadTextModels } from '../textModels.js';
import { Figures, messageOf, Name, Notice, Section, Table, useLoad } from '../ui.js';

type LimitReset = 'DAILY' | 'WEEKLY' | 'MONTHLY' | 'NEVER';
const RESETS: readonly LimitReset[] = ['NEVER', 'DAILY', 'WEEKLY', 'MONTHLY'];
/** An inference key calls models; a management key (OpenRouter's) only manages keys and reads activity and credits. */
type KeyKind = 'INFERENCE' | 'MANAGEMENT';
const MANAGEMENT_NOTE = 'A management key calls no model: it manages the inference keys (/api/v1/keys) and reads /api/v1/activity and /api/v1/credits. It has no spending limit.';

interface Key {
  id: string;
  name: string;
  hint: string;
  kind: KeyKind;
  status: 'ACTIVE' | 'DISABLED' | 'REVOKED';
  limit: number | null;
  limitRemaining: number | null;
  limitReset: LimitReset;
  includeByokInLimit: boolean;
  expiresAt: string | null;
  createdAt: string;
  usage: { daily: number; monthly: number; lifetime: number };
}

const KEY_FIELDS = 'id name hint kind status limit limitRemaining limitReset includeByokInLimit expiresAt createdAt usage { daily monthly lifetime }';
/** Newest first (`last`, paging back with `before`): a key just created is always at the top, with its actions. */
const KEYS = `query Keys($last: Int!, $before: String) { apiKeys(last: $last, before: $before, includeRevoked: true) { edges { node { ${KEY_FIELDS} } } pageInfo { hasPreviousPage startCursor } } }`;
/** Keys shown at first, and added by each "Show older keys". */
const KEYS_PAGE = 50;

/** The `wanted` newest keys, newest first (the server gives at most 100 a page), and whether older ones exist. */
const loadKeys = async (wanted: number): Promise<{ keys: Key[]; more: boolean }> => {
  const keys: Key[] = [];
  let before: string | null = null;
  for (;;) {
    type Page = { apiKeys: { edges: { node: Key }[]; pageInfo: { hasPreviousPage: boolean; startCursor: string | null } } };
    const { apiKeys }: Page = await gql<Page>(KEYS, { last: Math.min(100, wanted - keys.length), before });
    keys.push(...apiKeys.edges.map((e) => e.node).reverse());
    const more = apiKeys.pageInfo.hasPreviousPage;
    if (!more || keys.length >= wanted || !apiKeys.pageInfo.startCursor) return { keys, more };
    before = apiKeys.pageInfo.startCursor;
  }
};
const CREATE = `mutation CreateKey($name: String!, $kind: ApiKeyKind, $limit: Money, $limitReset: LimitReset, $includeByokInLimit: Boolean, $expiresAt: DateTime) {
  createApiKey(name: $name, kind: $kind, limit: $limit, limitReset: $limitReset, includeByokInLimit: $includeByokInLimit, expiresAt: $expiresAt) { __typename ... on CreatedApiKey { secret key { ${KEY_FIELDS} } } ${DOMAIN_ERROR} }
}`;
const mutation = (name: string, args: string, params: string) =>
  `mutation ${name[0]?.toUpperCase()}${name.slice(1)}(${args}) { r: ${name}(${params}) { __typename ... on ApiKey { ${KEY_FIELDS} } ${DOMAIN_ERROR} } }`;
const RENAME = mutation('renameApiKey', '$id: ID!, $name: String!', 'id: $id, name: $name');
const SET_LIMIT = mutation('setApiKeyLimit', '$id: ID!, $limit: Money, $limitReset: LimitReset!', 'id: $id, limit: $limit, limitReset: $limitReset');
const SET_BYOK_IN_LIMIT = mutation('setApiKeyByokInLimit', '$id: ID!, $includeByokInLimit: Boolean!', 'id: $id, includeByokInLimit: $includeByokInLimit');
const SET_EXPIRY = mutation('setApiKeyExpiry', '$id: ID!, $expiresAt: DateTime', 'id: $id, expiresAt: $expiresAt');
const DISABLE = mutation('disableApiKey', '$id: ID!', 'id: $id');
const ENABLE = mutation('enableApiKey', '$id: ID!', 'id: $id');
const REVOKE = mutation('revokeApiKey', '$id: ID!', 'id: $id');
const SET_DEFAULT_MODEL = `mutation SetDefaultModel($model: String) { setDefaultModel(model: $model) { __typename ... on Account { defaultModel } ${DOMAIN_ERROR} } }`;
interface ProviderLists {
  ignore: string[];
  allow: string[];
}
const PROVIDER_LISTS = 'query ProviderLists { me { providerPreferences { ignore allow } } providers { slug name } }';
const SET_PROVIDER_LISTS = `mutation SetProviderPreferences($ignore: [String!], $allow: [String!]) {
  setProviderPreferences(ignore: $ignore, allow: $allow) { __typename ... on Account { providerPreferences { ignore allow } } ${DOMAIN_ERROR} } }`;

type ByokStatus = 'ACTIVE' | 'NEEDS_CONFIRMATION' | 'PROVIDER_NOT_ALLOWED' | 'PROVIDER_UNKNOWN';
/** The account's own key for a provider, as the server shows it: never the key, only its last characters. */
interface ByokKey {
  provider: string;
  hint: string;
  origin: string;
  fallbackToShared: boolean;
  createdAt: string;
  status: ByokStatus;
  problem: string | null;
}
const BYOK_FIELDS = 'byokKeys { provider hint origin fallbackToShared createdAt status problem }';
const BYOK = `query Byok { me { byokFeePercent ${BYOK_FIELDS} } providers { slug name byok } }`;
const SET_BYOK_KEY = `mutation SetByokKey($provider: String!, $apiKey: String!, $fallbackToShared: Boolean!) {
  r: setByokKey(provider: $provider, apiKey: $apiKey, fallbackToShared: $fallbackToShared) { __typename ... on Account { ${BYOK_FIELDS} } ${DOMAIN_ERROR} } }`;
const REMOVE_BYOK_KEY = `mutation RemoveByokKey($provider: String!) { r: removeByokKey(provider: $provider) { __typename ... on Account { ${BYOK_FIELDS} } ${DOMAIN_ERROR} } }`;
const BYOK_STATUS: Record<ByokStatus, string> = {
  ACTIVE: 'active',
  NEEDS_CONFIRMATION: 'needs confirmation',
  PROVIDER_NOT_ALLOWED: 'not allowed',
  PROVIDER_UNKNOWN: 'provider gone',
};

/** "" → no limit; otherwise dollars, or an error message. */
export const limitOf = (text: string): { limit: number | null } | { error: string } => {
  if (!text.trim()) return { limit: null };
  const limit = parseUsd(text);
  if (limit === null) return { error: 'The limit is an amount of dollars, e.g. 5 or 2.50.' };
  if (limit > MAX_MONEY) return { error: `The limit is at most ${formatUsd(MAX_MONEY)}; leave it empty for no limit.` };
  return limit > 0 ? { limit } : { error: 'The limit must be more than $0; leave it empty for no limit.' };
};

/** OpenRouter's include_byok_in_limit: whether calls on the account's own provider keys count their list price too. */
const ByokInLimit = ({ id, checked, onChange }: { id: string; checked: boolean; onChange: (checked: boolean) => void }) => (
  <div>
    <label class="switch" for={id}>
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.currentTarget.checked)} />
      <span>Count BYOK calls' list price against the limit</span>
    </label>
  </div>
);

const CreateKeyForm = ({ onCreated }: { onCreated: (secret: string, key: Key) => void }) => {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<KeyKind>('INFERENCE');
  const [limit, setLimit] = useState('');
  const [reset, setReset] = useState<LimitReset>('NEVER');
  const [byokInLimit, setByokInLimit] = useState(false);
  const [expires, setExpires] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const management = kind === 'MANAGEMENT';
    // A management key takes no limit: the fields are hidden, and what they held is not sent.
    const parsed = management ? { limit: null } : limitOf(limit);
    if ('error' in parsed) return setError(parsed.error);
    setBusy(true);
    setError(null);
    try {
      const { createApiKey } = await gql<{ createApiKey: Result<{ secret: string; key: Key }> }>(CREATE, {
        name: name.trim(),
        kind,
        limit: parsed.limit,
        limitReset: management ? 'NEVER' : reset,
        includeByokInLimit: !management && byokInLimit,
        // The end of the chosen day, UTC.
        expiresAt: expires ? `${expires}T23:59:59.999Z` : null,
      });
      const created = unwrap(createApiKey);
      setName('');
      setKind('INFERENCE');
      setLimit('');
      setByokInLimit(false);
      setExpires('');
      onCreated(created.secret, created.key);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Create a key">
      <div>
        <label for="key-name">Name</label>
        <input id="key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
      </div>
      <div>
        <label for="key-kind">Kind</label>
        <select id="key-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as KeyKind)} aria-describedby={kind === 'MANAGEMENT' ? 'key-kind-note' : undefined}>
          <option value="INFERENCE">inference</option>
          <option value="MANAGEMENT">management</option>
        </select>
      </div>
      {kind === 'INFERENCE' ? (
        <>
          <div>
            <label for="key-limit">Spending limit (USD, empty for none)</label>
            <input id="key-limit" inputMode="decimal" value={limit} onInput={(e) => setLimit(e.currentTarget.value)} placeholder="none" />
          </div>
          <div>
            <label for="key-reset">Limit resets</label>
            <select id="key-reset" value={reset} onChange={(e) => setReset(e.currentTarget.value as LimitReset)}>
              {RESETS.map((r) => (
                <option key={r} value={r}>
                  {r.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
          <ByokInLimit id="key-byok-in-limit" checked={byokInLimit} onChange={setByokInLimit} />
        </>
      ) : (
        <p id="key-kind-note" class="muted small">
          {MANAGEMENT_NOTE}
        </p>
      )}
      <div>
        <label for="key-expires">Expires (end of day, UTC; empty for never)</label>
        <input id="key-expires" type="date" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
      </div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy}>
          Create key
        </button>
      </div>
      {error && <Notice kind="error">{error}</Notice>}
    </form>
  );
};

/** The secret, once: it is not stored anywhere in the page once dismissed. */
const NewSecret = ({ secret, name, kind, onDone }: { secret: string; name: string; kind: KeyKind; onDone: () => void }) => {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = () =>
    navigator.clipboard.writeText(secret).then(
      () => setCopied('Copied to the clipboard.'),
      () => setCopied('The browser refused the clipboard: select the key and copy it by hand.'),
    );
  return (
    <div class="secret" role="region" aria-label="New key secret">
      <p>
        <strong>
          <Name text={name} />
        </strong>{' '}
        is ready. Copy its secret now: it is shown only this once.
      </p>
      {kind === 'MANAGEMENT' && <p class="muted small">{MANAGEMENT_NOTE}</p>}
      <div class="secret-row">
        <input aria-label="Secret of the new key" readOnly value={secret} onFocus={(e) => e.currentTarget.select()} class="mono" data-testid="new-secret" />
        <button type="button" onClick={copy}>
          Copy
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
      {copied && <Notice kind="info">{copied}</Notice>}
    </div>
  );
};

const EditKey = ({ apiKey, onSaved, onCancel }: { apiKey: Key; onSaved: (key: Key) => void; onCancel: () => void }) => {
  const [name, setName] = useState(apiKey.name);
  const [limit, setLimit] = useState(apiKey.limit === null ? '' : formatUsd(apiKey.limit).replace(/[$,]/g, ''));
  const [reset, setReset] = useState<LimitReset>(apiKey.limitReset);
  const [byokInLimit, setByokInLimit] = useState(apiKey.includeByokInLimit);
  const [expires, setExpires] = useState(apiKey.expiresAt?.slice(0, 10) ?? '');
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const parsed = limitOf(limit);
    if ('error' in parsed) return setError(parsed.error);
    try {
      let key = apiKey;
      if (name.trim() !== apiKey.name) key = unwrap((await gql<{ r: Result<Key> }>(RENAME, { id: apiKey.id, name: name.trim() })).r);
      if (parsed.limit !== apiKey.limit || reset !== apiKey.limitReset) key = unwrap((await gql<{ r: Result<Key> }>(SET_LIMIT, { id: apiKey.id, limit: parsed.limit, limitReset: reset })).r);
      if (byokInLimit !== apiKey.includeByokInLimit) key = unwrap((await gql<{ r: Result<Key> }>(SET_BYOK_IN_LIMIT, { id: apiKey.id, includeByokInLimit: byokInLimit })).r);
      // Only a changed day is sent (an expiry set to the minute through the API stays as it is): the end of the chosen
      // day, UTC, as at creation; empty: never expires.
      if (expires !== (apiKey.expiresAt?.slice(0, 10) ?? '')) {
        key = unwrap((await gql<{ r: Result<Key> }>(SET_EXPIRY, { id: apiKey.id, expiresAt: expires ? `${expires}T23:59:59.999Z` : null })).r);
      }
      onSaved(key);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  return (
    <form class="grid-form edit" onSubmit={submit} aria-label={`Edit key ${apiKey.name}`}>
      <div>
        <label for={`name-${apiKey.id}`}>Name</label>
        <input id={`name-${apiKey.id}`} value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
      </div>
      {apiKey.kind === 'INFERENCE' && (
        <>
          <div>
            <label for={`limit-${apiKey.id}`}>Limit (USD, empty for none)</label>
            <input id={`limit-${apiKey.id}`} inputMode="decimal" value={limit} onInput={(e) => setLimit(e.currentTarget.value)} />
          </div>
          <div>
            <label for={`reset-${apiKey.id}`}>Limit resets</label>
            <select id={`reset-${apiKey.id}`} value={reset} onChange={(e) => setReset(e.currentTarget.value as LimitReset)}>
              {RESETS.map((r) => (
                <option key={r} value={r}>
                  {r.toLowerCase()}
                </option>
              ))}
            </select>
          </div>
          <ByokInLimit id={`byok-in-limit-${apiKey.id}`} checked={byokInLimit} onChange={setByokInLimit} />
        </>
      )}
      <div>
        <label for={`expires-${apiKey.id}`}>Expires (end of day, UTC; empty for never)</label>
        <input id={`expires-${apiKey.id}`} type="date" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
      </div>
      <div class="form-actions">
        <button type="submit" class="primary">
          Save
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error && <Notice kind="error">{error}</Notice>}
    </form>
  );
};

/**
 * The account's default model: what an API call that names no `model` is answered by. On the Keys page because it
 * is a setting of the API calls those keys make (the Models page browses the catalog; the Playground always names one).
 */
const DefaultModel = ({ readOnly }: { readOnly: boolean }) => {
  const me = useLoad(() => gql<{ me: { defaultModel: string | null } }>('query DefaultModel { me { defaultModel } }'));
  const models = useLoad(loadTextModels);
  // As last saved here; the server's value until then (undefined: not changed on this page).
  const [saved, setSaved] = useState<string | null | undefined>(undefined);
  const current = saved === undefined ? (me.value?.me.defaultModel ?? null) : saved;
  // What the field holds once edited; the current default until then.
  const [draft, setDraft] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const save = async (model: string | null) => {
    setBusy(true);
    setNotice(null);
    try {
      const { setDefaultModel } = await gql<{ setDefaultModel: Result<{ defaultModel: string | null }> }>(SET_DEFAULT_MODEL, { model });
      const now = unwrap(setDefaultModel).defaultModel;
      setSaved(now);
      setDraft(null);
      setNotice({ kind: 'ok', text: now === null ? 'Cleared: API calls without a model are refused again.' : `Saved: API calls without a model now use ${now}.` });
    } catch (failure) {
      setNotice({ kind: 'error', text: messageOf(failure) });
    } finally {
      setBusy(false);
      // Back to the field either way: to fix a refused id, or to go on from there (Clear, once used, is disabled).
      input.current?.focus();
    }
  };
  const value = draft ?? current ?? '';
  const invalid = notice?.kind === 'error';
  return (
    <Section title="Default model">
      <p id="default-model-note" class="muted small">
        API calls that name no <code>model</code> (chat and completions) are answered by this model. With none set, such a call is refused.
      </p>
      <Figures items={[['Current default', me.value ? (current ?? <span class="muted">none</span>) : '…', 'default-model']]} />
      {me.error && <Notice kind="error">{me.error}</Notice>}
      {!readOnly && (
        <form
          class="default-model"
          aria-label="Set the default model"
          onSubmit={(event) => {
            event.preventDefault();
            void save(value.trim());
          }}
        >
          <div>
            <label for="default-model">Model id</label>
            <input
              id="default-model"
              ref={input}
              class="mono"
              list="default-model-ids"
              value={value}
              onInput={(e) => setDraft(e.currentTarget.value)}
              required
              autocomplete="off"
              spellcheck={false}
              placeholder="vendor/model"
              aria-invalid={invalid || undefined}
              aria-describedby={invalid ? 'default-model-note default-model-notice' : 'default-model-note'}
            />
            <datalist id="default-model-ids">
              {models.value?.models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </datalist>
          </div>
          <div class="form-actions">
            <button type="submit" class="primary" disabled={busy || !me.value}>
              Save
            </button>
            <button type="button" disabled={busy || current === null} onClick={() => void save(null)}>
              Clear
            </button>
          </div>
          {notice && (
            <Notice kind={notice.kind} id="default-model-notice">
              {notice.text}
            </Notice>
          )}
        </form>
      )}
    </Section>
  );
};

/** "a, b,, c " → ["a", "b", "c"]: each slug once, in the order typed. */
export const slugsOf = (text: string): string[] => [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];

type ListName = keyof ProviderLists;
const LIST_FIELDS: readonly (readonly [ListName, string])[] = [
  ['ignore', 'Ignored providers'],
  ['allow', 'Allowed providers (empty: all)'],
];

/**
 * The account's provider lists (OpenRouter's account-wide provider settings), beside the default model: both are
 * settings of every API call the account's keys make. Comma-separated slugs, with the registered providers offered as
 * suggestions for the entry being typed (each field's own datalist, holding what is typed before the last comma).
 */
const ProviderPreferences = ({ readOnly }: { readOnly: boolean }) => {
  const loaded = useLoad(() => gql<{ me: { providerPreferences: ProviderLists }; providers: { slug: string; name: string }[] }>(PROVIDER_LISTS));
  const [saved, setSaved] = useState<ProviderLists | null>(null);
  const current = saved ?? loaded.value?.me.providerPreferences ?? null;
  const [drafts, setDrafts] = useState<Partial<Record<ListName, string>>>({});
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string; field?: ListName } | null>(null);
  const [busy, setBusy] = useState(false);
  const fields = { ignore: useRef<HTMLInputElement>(null), allow: useRef<HTMLInputElement>(null) };

  const save = async (lists: ProviderLists) => {
    setBusy(true);
    setNotice(null);
    let focus: ListName = 'ignore';
    try {
      const { setProviderPreferences } = await gql<{ setProviderPreferences: Result<{ providerPreferences: ProviderLists }> }>(SET_PROVIDER_LISTS, { ...lists });
      const now = unwrap(setProviderPreferences).providerPreferences;
      setSaved(now);
      setDrafts({});
      const said = [now.ignore.length ? `ignored: ${now.ignore.join(', ')}` : '', now.allow.length ? `only: ${now.allow.join(', ')}` : ''].filter(Boolean).join('; ');
      setNotice({ kind: 'ok', text: said ? `Saved: API calls now route with ${said}.` : 'Cleared: API calls may use every provider again.' });
    } catch (failure) {
      // The server names the list it refused (details.field): that field is marked and focused.
      focus = fieldOf(failure) === 'allow' ? 'allow' : 'ignore';
      setNotice({ kind: 'error', text: messageOf(failure), field: focus });
    } finally {
      setBusy(false);
      fields[focus].current?.focus();
    }
  };
  const valueOf = (list: ListName) => drafts[list] ?? current?.[list].join(', ') ?? '';
  const providers = loaded.value?.providers ?? [];
  const shown = (list: string[], empty: string) => (list.length ? <span class="mono">{list.join(', ')}</span> : <span class="muted">{empty}</span>);
  return (
    <Section title="Providers">
      <p id="provider-lists-note" class="muted small">
        Every API call of this account: ignored providers are never used; with an allow list, only the providers on it are used.
      </p>
      <Figures
        items={[
          ['Ignored', current ? shown(current.ignore, 'none') : '…', 'providers-ignored'],
          ['Allowed', current ? shown(current.allow, 'all') : '…', 'providers-allowed'],
        ]}
      />
      {loaded.error && <Notice kind="error">{loaded.error}</Notice>}
      {!readOnly && (
        <form
          class="provider-lists"
          aria-label="Set the provider lists"
          onSubmit={(event) => {
            event.preventDefault();
            void save({ ignore: slugsOf(valueOf('ignore')), allow: slugsOf(valueOf('allow')) });
          }}
        >
          {LIST_FIELDS.map(([list, label]) => {
            const value = valueOf(list);
            const invalid = notice?.kind === 'error' && notice.field === list;
            // What is typed before the last comma, then each provider not on the list yet.
            const cut = value.lastIndexOf(',');
            const before = cut < 0 ? '' : `${value.slice(0, cut + 1)} `;
            const typed = new Set(slugsOf(value.slice(0, cut + 1)));
            return (
              <div key={list}>
                <label for={`providers-${list}`}>{label}</label>
                <input
                  id={`providers-${list}`}
                  ref={fields[list]}
                  class="mono"
                  list={`providers-${list}-slugs`}
                  value={value}
                  onInput={(e) => setDrafts({ ...drafts, [list]: e.currentTarget.value })}
                  autocomplete="off"
                  spellcheck={false}
                  placeholder="slug, slug"
                  aria-invalid={invalid || undefined}
                  aria-describedby={invalid ? 'provider-lists-note provider-lists-notice' : 'provider-lists-note'}
                />
                <datalist id={`providers-${list}-slugs`}>
                  {providers
                    .filter((p) => !typed.has(p.slug))
                    .map((p) => (
                      <option key={p.slug} value={`${before}${p.slug}`}>
                        {p.name}
                      </option>
                    ))}
                </datalist>
              </div>
            );
          })}
          <div class="form-actions">
            <button type="submit" class="primary" disabled={busy || !current}>
              Save
            </button>
            <button type="button" disabled={busy || !current || (current.ignore.length === 0 && current.allow.length === 0)} onClick={() => void save({ ignore: [], allow: [] })}>
              Clear
            </button>
          </div>
          {notice && (
            <Notice kind={notice.kind} id="provider-lists-notice">
              {notice.text}
            </Notice>
          )}
        </form>
      )}
    </Section>
  );
};

/**
 * The account's own provider keys (BYOK): listed without the key (its last characters, where it may be sent, whether
 * it is sent now and why not), added or replaced one provider at a time among those an admin allows, removed after a
 * confirmation. The key typed is sent once and cleared from the field once saved; a refused one stays in the form.
 */
const ByokKeys = ({ readOnly }: { readOnly: boolean }) => {
  const loaded = useLoad(() => gql<{ me: { byokFeePercent: number; byokKeys: ByokKey[] }; providers: { slug: string; name: string; byok: boolean }[] }>(BYOK));
  // As the last mutation answered; the loaded list until then.
  const [saved, setSaved] = useState<ByokKey[] | null>(null);
  const keys = saved ?? loaded.value?.me.byokKeys ?? null;
  const providers = loaded.value?.providers ?? [];
  const capable = providers.filter((p) => p.byok);
  const nameOf = (slug: string) => providers.find((p) => p.slug === slug)?.name ?? slug;
  const [provider, setProvider] = useState('');
  const chosen = provider || capable[0]?.slug || '';
  const [apiKey, setApiKey] = useState('');
  const [fallback, setFallback] = useState(true);
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string; field?: 'provider' | 'apiKey' } | null>(null);
  const [listNotice, setListNotice] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const fields = { provider: useRef<HTMLSelectElement>(null), apiKey: useRef<HTMLInputElement>(null) };
  const replacing = keys?.some((k) => k.provider === chosen) ?? false;

  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setNotice(null);
    setListNotice(null);
    let focus: 'provider' | 'apiKey' = 'apiKey';
    try {
      const now = unwrap((await gql<{ r: Result<{ byokKeys: ByokKey[] }> }>(SET_BYOK_KEY, { provider: chosen, apiKey, fallbackToShared: fallback })).r).byokKeys;
      setSaved(now);
      // The key leaves the page: the field is cleared, and the list shows only its hint.
      setApiKey('');
      const hint = now.find((k) => k.provider === chosen)?.hint ?? '';
      setNotice({ kind: 'ok', text: `Saved your key ${hint} for ${nameOf(chosen)}: its calls now go on your key first.` });
    } catch (failure) {
      // Everything typed stays; the field the server names (details.field) is marked and focused.
      focus = fieldOf(failure) === 'provider' ? 'provider' : 'apiKey';
      setNotice({ kind: 'error', text: messageOf(failure), field: focus });
    } finally {
      setBusy(false);
      fields[focus].current?.focus();
    }
  };
  const remove = async (key: ByokKey) => {
    if (!window.confirm(`Remove your key for ${nameOf(key.provider)}? Its calls then go on the provider's shared key, charged in full.`)) return;
    setListNotice(null);
    try {
      setSaved(unwrap((await gql<{ r: Result<{ byokKeys: ByokKey[] }> }>(REMOVE_BYOK_KEY, { provider: key.provider })).r).byokKeys);
      setListNotice({ kind: 'ok', text: `Removed your key for ${nameOf(key.provider)}.` });
    } catch (failure) {
      setListNotice({ kind: 'error', text: messageOf(failure) });
    }
  };
  const invalid = (field: 'provider' | 'apiKey') => notice?.kind === 'error' && notice.field === field;
  const describedBy = (field: 'provider' | 'apiKey') => (invalid(field) ? 'byok-note byok-notice' : 'byok-note');
  return (
    <Section title="Provider keys (BYOK)">
      <p id="byok-note" class="muted small">
        Your own key for a provider: calls to its endpoints go on your key first, and are charged a fee
        {loaded.value ? ` of ${loaded.value.me.byokFeePercent}% of the list price` : ''} instead of the price. It is stored encrypted, sent only to the origin
        shown, and never shown again.
      </p>
      {loaded.error && <Notice kind="error">{loaded.error}</Notice>}
      {listNotice && <Notice kind={listNotice.kind}>{listNotice.text}</Notice>}
      <Table label="Provider keys" columns={['Provider', 'Key', 'Origin', 'Status', 'Fallback to shared', 'Created', !readOnly && ['Actions', 'hidden']]}>
        {keys?.map((key) => (
          <tr key={key.provider} data-provider={key.provider}>
            <th scope="row">
              <Name text={nameOf(key.provider)} /> <span class="muted small">({key.provider})</span>
            </th>
            <td class="mono nowrap">{key.hint}</td>
            <td class="mono">{key.origin}</td>
            <td>
              <span class={`badge badge-${key.status === 'ACTIVE' ? 'active' : 'failed'}`}>{BYOK_STATUS[key.status]}</span>
              {key.problem && <p class="small byok-problem">{key.problem[0]?.toUpperCase() + key.problem.slice(1)}.</p>}
            </td>
            <td>{key.fallbackToShared ? 'yes' : 'no'}</td>
            <td>{formatTime(key.createdAt)}</td>
            {!readOnly && (
              <td class="actions">
                <button type="button" class="danger" onClick={() => void remove(key)} aria-label={`Remove the key for ${nameOf(key.provider)}`}>
                  Remove
                </button>
              </td>
            )}
          </tr>
        ))}
      </Table>
      {keys && keys.length === 0 && <p class="muted">No provider keys yet: calls use the providers' shared keys.</p>}
      {!readOnly && (
        <form class="grid-form byok-form" onSubmit={save} aria-label="Add or replace a provider key">
          <div>
            <label for="byok-provider">Provider</label>
            <select
              id="byok-provider"
              ref={fields.provider}
              value={chosen}
              onChange={(e) => {
                const slug = e.currentTarget.value;
                setProvider(slug);
                // Replacing a key starts from its fallback setting.
                setFallback(keys?.find((k) => k.provider === slug)?.fallbackToShared ?? true);
              }}
              aria-invalid={invalid('provider') || undefined}
              aria-describedby={describedBy('provider')}
            >
              {capable.map((p) => (
                <option key={p.slug} value={p.slug}>
                  {p.name} ({p.slug})
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="byok-key">{replacing ? 'New API key (replaces yours)' : 'API key'}</label>
            <input
              id="byok-key"
              ref={fields.apiKey}
              type="password"
              class="mono"
              value={apiKey}
              onInput={(e) => setApiKey(e.currentTarget.value)}
              required
              autocomplete="off"
              spellcheck={false}
              aria-invalid={invalid('apiKey') || undefined}
              aria-describedby={describedBy('apiKey')}
            />
          </div>
          <div>
            <label class="switch" for="byok-fallback">
              <input id="byok-fallback" type="checkbox" checked={fallback} onChange={(e) => setFallback(e.currentTarget.checked)} />
              <span>Fall back to the shared key (charged in full)</span>
            </label>
          </div>
          <div class="form-actions">
            <button type="submit" class="primary" disabled={busy || !chosen}>
              {replacing ? 'Replace key' : 'Save key'}
            </button>
          </div>
          {loaded.value && capable.length === 0 && <p class="muted small">No provider takes keys of its own: an admin allows them per provider.</p>}
          {notice && (
            <Notice kind={notice.kind} id="byok-notice">
              {notice.text}
            </Notice>
          )}
        </form>
      )}
    </Section>
  );
};

/** A restricted key (`me.restricted`) is shown the keys and settings, and told why it is offered no change. */
export const KeysPage = ({ me }: { me: Me }) => {
  const readOnly = me.restricted;
  // How many of the newest keys are shown; a change reloads as many, so a key on a later page keeps its row fresh.
  const [wanted, setWanted] = useState(KEYS_PAGE);
  const { value, error, loading, reload } = useLoad(() => loadKeys(wanted), [wanted]);
  const [fresh, setFresh] = useState<{ secret: string; name: string; kind: KeyKind } | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const keys = value?.keys ?? [];

  // The key this console signed in with, by its hint (prefix and last four characters): acting on it signs you out.
  const signedInHint = (() => {
    const secret = storedKey();
    return secret && secret.length > 16 ? `${secret.slice(0, 12)}…${secret.slice(-4)}` : null;
  })();
  const isCurrent = (key: Key) => key.hint === signedInHint;
  const SIGN_OUT = ' This console is signed in with this key: you will be signed out, and need another active key to sign in again.';

  const act = async (query: string, key: Key, confirmText?: string) => {
    if (confirmText && !window.confirm(confirmText)) return;
    setActionError(null);
    try {
      unwrap((await gql<{ r: Result<Key> }>(query, { id: key.id })).r);
      reload();
    } catch (failure) {
      setActionError(messageOf(failure));
    }
  };

  return (
    <>
      <h1>Keys</h1>
      {readOnly && <Notice kind="info">{restrictedNote('manage keys or change the account’s settings (default model, provider lists, provider keys)')}</Notice>}
      {!readOnly && (
        <Section title="New key">
          {fresh ? (
            <NewSecret secret={fresh.secret} name={fresh.name} kind={fresh.kind} onDone={() => setFresh(null)} />
          ) : (
            <CreateKeyForm
              onCreated={(secret, key) => {
                setFresh({ secret, name: key.name, kind: key.kind });
                reload();
              }}
            />
          )}
        </Section>
      )}
      <Section title="Your keys">
        {error && <Notice kind="error">{error}</Notice>}
        {actionError && <Notice kind="error">{actionError}</Notice>}
        <Table label="Your keys" columns={['Name', 'Key', 'Kind', 'Status', ['Limit', 'num'], ['Today', 'num'], ['This month', 'num'], ['Lifetime', 'num'], 'Expires', !readOnly && 'Actions']}>
          {keys.map((key) =>
            editing === key.id ? (
              <tr key={key.id}>
                <td colSpan={10}>
                  <EditKey
                    apiKey={key}
                    onCancel={() => setEditing(null)}
                    onSaved={() => {
                      setEditing(null);
                      reload();
                    }}
                  />
                </td>
              </tr>
            ) : (
              <tr key={key.id} data-key-id={key.id}>
                <th scope="row">
                  <Name text={key.name} />
                  {isCurrent(key) && <span class="muted small"> (this console)</span>}
                </th>
                <td class="mono nowrap">{key.hint}</td>
                <td>{key.kind === 'MANAGEMENT' ? <span class="badge badge-management">management</span> : 'inference'}</td>
                <td>
                  <span class={`badge badge-${key.status.toLowerCase()}`}>{key.status.toLowerCase()}</span>
                </td>
                <td class="num">
                  {key.limit === null ? '—' : `${formatUsd(key.limit)} ${key.limitReset === 'NEVER' ? 'total' : key.limitReset.toLowerCase()}`}
                  {key.limit !== null && key.includeByokInLimit && <span class="muted small nowrap"> incl. BYOK</span>}
                </td>
                <td class="num">{formatUsd(key.usage.daily)}</td>
                <td class="num">{formatUsd(key.usage.monthly)}</td>
                <td class="num">{formatUsd(key.usage.lifetime)}</td>
                <td>{key.expiresAt ? formatTime(key.expiresAt) : 'never'}</td>
                {!readOnly && (
                  <td class="actions">
                    {key.status !== 'REVOKED' && (
                      <>
                        <button type="button" onClick={() => setEditing(key.id)} aria-label={`Edit ${key.name}`}>
                          Edit
                        </button>
                        {key.status === 'ACTIVE' ? (
                          <button type="button" onClick={() => act(DISABLE, key, isCurrent(key) ? `Disable ${key.name}?${SIGN_OUT}` : undefined)} aria-label={`Disable ${key.name}`}>
                            Disable
                          </button>
                        ) : (
                          <button type="button" onClick={() => act(ENABLE, key)} aria-label={`Enable ${key.name}`}>
                            Enable
                          </button>
                        )}
                        <button type="button" class="danger" onClick={() => act(REVOKE, key, `Revoke ${key.name} for good? Requests with it will be refused.${isCurrent(key) ? SIGN_OUT : ''}`)} aria-label={`Revoke ${key.name}`}>
                          Revoke
                        </button>
                      </>
                    )}
                  </td>
                )}
              </tr>
            ),
          )}
        </Table>
        {value && keys.length === 0 && <p class="muted">No keys yet.</p>}
        {value?.more && (
          <div class="pager">
            <span class="muted small">Showing the newest {keys.length} keys, revoked ones included.</span>
            <button type="button" disabled={loading} onClick={() => setWanted(keys.length + KEYS_PAGE)}>
              Show older keys
            </button>
          </div>
        )}
      </Section>
      <DefaultModel readOnly={readOnly} />
      <ProviderPreferences readOnly={readOnly} />
      <ByokKeys readOnly={readOnly} />
    </>
  );
};

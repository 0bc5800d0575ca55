import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, cleanKey, forgetKey, gql, setUnauthenticatedHandler, storedKey, storeKey, UNREACHABLE } from './api.js';
import { hashParts, pageFromHash, pagesFor, restrictedNote, type PageId, type Role } from './navigation.js';
import { ActivityPage } from './pages/activity.js';
import { AuthorizePage } from './pages/authorize.js';
import { AdminPage } from './pages/admin.js';
import { CreditsPage } from './pages/credits.js';
import { KeysPage } from './pages/keys.js';
import { ModelsPage } from './pages/models.js';
import { PlaygroundPage } from './pages/playground.js';
import { RunsPage } from './pages/runs.js';
import { WorkflowsPage } from './pages/workflows.js';
import { ProviderPage } from './pages/provider.js';
import { messageOf, Name, Notice } from './ui.js';

export interface Me {
  readonly id: string;
  readonly name: string;
  /** The roles the signed-in key holds: its account's, or a restricted key's (at most user). */
  readonly roles: Role[];
  /** The key has a spending limit or was issued to an app: it may not manage keys, buy credits or change settings. */
  readonly restricted: boolean;
}

const ME = 'query Me { me { id name } currentKey { restricted roles } }';
const loadMe = async (key?: string): Promise<Me> => {
  const { me, currentKey } = await gql<{ me: { id: string; name: string }; currentKey: { restricted: boolean; roles: Role[] } }>(ME, {}, key);
  return { ...me, ...currentKey };
};
/** What an account without roles can do here, and how it gets more. */
const NO_ROLE = 'This account has no role: it reads its activity, its credits and the model catalog. To call models, buy credits or manage keys, ask an admin of this server to grant it the user role.';
/** A restricted key holds at most the user role: of an account without it, it reads what an account without roles reads. */
const RESTRICTED_NO_ROLE = restrictedNote('call models or do this account’s other work (it holds no more than the user role, which this account does not have); it reads its activity, its credits and the model catalog');

const SignIn = ({ onSignedIn, reason }: { onSignedIn: (me: Me) => void; reason: string | null }) => {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(reason);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    let secret: string;
    try {
      secret = cleanKey(key);
    } catch (refused) {
      return setError(messageOf(refused));
    }
    if (!secret) return setError('Paste an API key first.');
    setBusy(true);
    try {
      const me = await loadMe(secret);
      storeKey(secret);
      setKey('');
      onSignedIn(me);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <form class="card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Switchyard console</h1>
        <p class="muted">Sign in with one of your API keys. It stays in this browser tab (session storage) and is sent only to this server.</p>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" spellcheck={false} value={key} onInput={(e) => setKey(e.currentTarget.value)} placeholder="sk-sy-…" required />
        {error && <Notice kind="error">{error}</Notice>}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">
          The GraphQL API and its explorer are at <a href="/graphql">/graphql</a>.
        </p>
      </form>
    </main>
  );
};

const Page = ({ id, me, hash }: { id: PageId; me: Me; hash: string }) => {
  switch (id) {
    case 'activity':
      return <ActivityPage me={me} />;
    case 'keys':
      return <KeysPage me={me} />;
    case 'credits':
      return <CreditsPage me={me} />;
    case 'playground':
      return <PlaygroundPage me={me} />;
    case 'models':
      return <ModelsPage />;
    case 'workflows':
      return <WorkflowsPage />;
    case 'runs':
      return <RunsPage hash={hash} />;
    case 'provider':
      return <ProviderPage />;
    case 'admin':
      return <AdminPage />;
    default: {
      const never: never = id;
      return never;
    }
  }
};

const App = () => {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const [reason, setReason] = useState<string | null>(null);
  const [unreachable, setUnreachable] = useState(false);
  const [hash, setHash] = useState(location.hash);

  useEffect(() => {
    const onHash = () => setHash(location.hash);
    window.addEventListener('hashchange', onHash);
    // The hash may have moved between the first render and this effect (a link followed while the page loads): its
    // event came before anyone listened, so it is read again now.
    onHash();
    setUnauthenticatedHandler(() => {
      forgetKey();
      setMe(null);
      setReason('The server no longer accepts this key (revoked, disabled or expired). Sign in again.');
    });
    if (storedKey()) checkKey();
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  // The stored key is forgotten only when the server refuses it: a refresh while the server restarts keeps it.
  const checkKey = () => {
    setChecking(true);
    setUnreachable(false);
    loadMe()
      .then(setMe)
      .catch((error: unknown) => {
        if (error instanceof ApiError && error.code === UNREACHABLE) return setUnreachable(true);
        forgetKey();
        setReason(messageOf(error));
      })
      .finally(() => setChecking(false));
  };

  if (checking) return <p class="loading" role="status">Loading…</p>;
  if (unreachable)
    return (
      <main id="main" class="signin">
        <div class="card unreachable">
          <h1>Switchyard console</h1>
          <Notice kind="error">The server cannot be reached. Your key is kept; try again in a moment.</Notice>
          <button type="button" class="primary" onClick={checkKey}>
            Retry
          </button>
        </div>
      </main>
    );
  if (!me) return <SignIn reason={reason} onSignedIn={(found) => (setReason(null), setMe(found))} />;

  // /auth?callback_url=…: an app asks for a key (Sign in with Switchyard); the page alone, no navigation.
  if (location.pathname === '/auth') {
    showTitle('Authorize an app');
    return (
      <main id="main" class="signin">
        <AuthorizePage me={me} search={location.search} />
      </main>
    );
  }

  const pages = pagesFor(me.roles);
  const current = pageFromHash(hash, me.roles);
  showTitle(current?.title);
  const signOut = () => {
    forgetKey();
    setMe(null);
    setReason(null);
  };
  return (
    <>
      {/* The hash is the router's: the link moves focus itself instead of navigating to #main. */}
      <a
        class="skip"
        href="#main"
        onClick={(event) => {
          event.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Switchyard</span>
        <nav aria-label="Pages">
          <ul>
            {pages.map((page) => (
              <li key={page.id}>
                <a href={`#/${page.id}`} aria-current={page.id === current?.id ? 'page' : undefined}>
                  {page.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who" title={`Account ${me.id}`}>
          <Name text={me.name} /> <span class="muted small">({me.roles.length ? me.roles.join(', ').toLowerCase() : 'no role'}{me.restricted && '; restricted key'})</span>
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {me.roles.length === 0 && <Notice kind="info">{me.restricted ? RESTRICTED_NO_ROLE : NO_ROLE}</Notice>}
        {current && !hashParts(hash) && <Notice kind="info">This address could not be read (a malformed % escape); here is {current.title} instead.</Notice>}
        {current ? <Page id={current.id} me={me} hash={hash} /> : <Notice kind="info">This key's roles ({me.roles.join(', ')}) have no console pages yet.</Notice>}
      </main>
    </>
  );
};

const showTitle = (title: string | undefined) => {
  document.title = title ? `${title} · Switchyard` : 'Switchyard console';
};

const root = document.getElementById('app');
if (root) render(<App />, root);

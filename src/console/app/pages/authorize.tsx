/**
 * Sign in with Switchyard (OpenRouter's OAuth PKCE): an app sends the user to /auth?callback_url=…&code_challenge=…
 * (&code_challenge_method=S256|plain). Signed in, the user allows or denies it a key on their account; on allow the
 * server grants a one-time code and the browser goes to the app's callback with it. The server checks the callback
 * URL and the challenge; this page only shows what the app asks for.
 */
import { useState } from 'preact/hooks';
import { DOMAIN_ERROR, gql, unwrap, type Result } from '../api.js';
import type { Me } from '../main.js';
import { restrictedNote } from '../navigation.js';
import { messageOf, Name, Notice } from '../ui.js';
import { limitOf } from './keys.js';

const AUTHORIZE = `mutation AuthorizeApp($callbackUrl: String!, $codeChallenge: String!, $method: CodeChallengeMethod, $keyName: String, $limit: Money) {
  authorizeApp(callbackUrl: $callbackUrl, codeChallenge: $codeChallenge, codeChallengeMethod: $method, keyName: $keyName, limit: $limit) {
    __typename ... on AppAuthorization { redirectUrl } ${DOMAIN_ERROR}
  }
}`;

interface Request {
  readonly callbackUrl: string;
  readonly origin: string;
  readonly codeChallenge: string;
  readonly method: 'S256' | 'PLAIN';
}

/** What the app asks for, or why the link is unusable (checked again, and fully, by the server). */
const requestOf = (search: string): Request | { error: string } => {
  const params = new URLSearchParams(search);
  const callbackUrl = params.get('callback_url');
  const codeChallenge = params.get('code_challenge');
  const method = (params.get('code_challenge_method') ?? 'S256').toUpperCase();
  if (!callbackUrl) return { error: 'This link has no callback_url: the app that sent you here built it wrong.' };
  if (!codeChallenge) return { error: 'This link has no code_challenge: the app that sent you here built it wrong.' };
  if (method !== 'S256' && method !== 'PLAIN') return { error: `This link's code_challenge_method "${method}" is not S256 or plain.` };
  let url: URL;
  try {
    url = new URL(callbackUrl);
  } catch {
    return { error: 'This link’s callback_url is not a URL.' };
  }
  // As the server checks it: https, or http on this machine only (myapp://, javascript: and the like have no origin).
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    return { error: `This link’s callback_url must use https (http only on localhost, 127.0.0.1 or [::1]); it is ${url.protocol}.` };
  }
  return { callbackUrl, origin: url.origin, codeChallenge, method };
};

export const AuthorizePage = ({ me, search }: { me: Me; search: string }) => {
  const request = requestOf(search);
  const [keyName, setKeyName] = useState('');
  const [limit, setLimit] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [denied, setDenied] = useState(false);

  if ('error' in request) {
    return (
      <section class="card authorize" aria-labelledby="authorize-title">
        <h1 id="authorize-title">Authorize an app</h1>
        <Notice kind="error">{request.error}</Notice>
      </section>
    );
  }
  // Such a key cannot give an app a key of its account (authorizeApp is refused): said before anything is asked.
  if (me.restricted) {
    return (
      <section class="card authorize" aria-labelledby="authorize-title">
        <h1 id="authorize-title">Authorize an app</h1>
        <Notice kind="info">{restrictedNote(`give the app at ${request.origin} a key`)}</Notice>
      </section>
    );
  }
  if (denied) {
    return (
      <section class="card authorize" aria-labelledby="authorize-title">
        <h1 id="authorize-title">Authorize an app</h1>
        <Notice kind="info">You denied {request.origin} a key. Nothing was created; you can close this tab.</Notice>
      </section>
    );
  }
  const allow = async (event: Event) => {
    event.preventDefault();
    const parsed = limitOf(limit);
    if ('error' in parsed) return setError(parsed.error);
    setBusy(true);
    setError(null);
    try {
      const { authorizeApp } = await gql<{ authorizeApp: Result<{ redirectUrl: string }> }>(AUTHORIZE, {
        callbackUrl: request.callbackUrl,
        codeChallenge: request.codeChallenge,
        method: request.method,
        keyName: keyName.trim() || null,
        limit: parsed.limit,
      });
      location.assign(unwrap(authorizeApp).redirectUrl);
    } catch (failure) {
      setError(messageOf(failure));
      setBusy(false);
    }
  };
  return (
    <form class="card authorize" onSubmit={allow} aria-labelledby="authorize-title">
      <h1 id="authorize-title">Authorize an app</h1>
      <p>
        The app at <strong data-testid="app-origin">{request.origin}</strong> asks for an API key on your account <strong>
          <Name text={me.name} />
        </strong>. With it, the app
        can call models and spend your credits, until you revoke the key on the Keys page.
      </p>
      <label for="app-key-name">Key name (optional)</label>
      <input id="app-key-name" value={keyName} maxLength={100} placeholder={`App at ${new URL(request.origin).host}`} onInput={(e) => setKeyName(e.currentTarget.value)} />
      <label for="app-key-limit">Spending limit (USD, empty for none)</label>
      <input id="app-key-limit" inputMode="decimal" value={limit} placeholder="none" onInput={(e) => setLimit(e.currentTarget.value)} />
      {error && <Notice kind="error">{error}</Notice>}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Allowing…' : 'Allow'}
        </button>
        <button type="button" disabled={busy} onClick={() => setDenied(true)}>
          Deny
        </button>
      </div>
    </form>
  );
};

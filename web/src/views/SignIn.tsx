/** Sign-in: paste an allot token; the server says who it is (GET /v1/whoami). */
import { useState } from 'preact/hooks';
import { ErrorNotice } from '../components/Notice.js';
import { signIn, type Session } from '../session.js';

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (token.trim() === '') {
      setError(new Error('Paste a token first.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await signIn(token));
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="content" class="sign-in">
      <h1>Sign in to allot</h1>
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          aria-describedby="token-help"
          required
        />
        <p id="token-help" class="muted">
          The admin token <code>allot serve</code> printed or was given, or one made with <code>allot token create</code>. It
          stays in this tab only.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <ErrorNotice error={error} />
    </main>
  );
}

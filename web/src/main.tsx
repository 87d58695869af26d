/**
 * The allot dashboard: a single page over the /v1 API, routed by the location hash so the
 * server only ever serves one index.html. What it shows follows the signed-in token: a
 * token scoped to an organization goes straight to it and sees nothing else.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { ErrorNotice, Loading } from './components/Notice.js';
import { useHashPath } from './hooks.js';
import { signIn, signOut, storedToken, type Session } from './session.js';
import './styles.css';
import { HistoryView } from './views/History.js';
import { LimitsView } from './views/Limits.js';
import { OrganizationView } from './views/Organization.js';
import { Organizations } from './views/Organizations.js';
import { SignIn } from './views/SignIn.js';

function App() {
  const [session, setSessionState] = useState<Session | null>(null);
  const setSession = (next: Session | null) => {
    if (next) {
      next.client.onUnauthorized = () => {
        signOut();
        setSessionState(null);
        setRestoreError(new Error('Your session ended: the server no longer accepts this token (revoked or expired). Sign in again.'));
      };
    }
    setSessionState(next);
  };
  const [restoring, setRestoring] = useState(storedToken() !== null);
  const [restoreError, setRestoreError] = useState<unknown>(null);
  useEffect(() => {
    const token = storedToken();
    if (token === null) return;
    signIn(token).then(
      (restored) => {
        setSession(restored);
        setRestoring(false);
      },
      (error: unknown) => {
        // A revoked or expired token signs out; a server that is down keeps it for a retry.
        if (error instanceof ApiError && error.status === 401) signOut();
        setRestoreError(error);
        setRestoring(false);
      },
    );
  }, []);
  if (restoring) return <Loading what="your session" />;
  if (session === null) {
    return (
      <>
        <SignIn
          onSignedIn={(signedIn) => {
            setRestoreError(null);
            setSession(signedIn);
          }}
        />
        {restoreError ? <ErrorNotice error={restoreError} /> : null}
      </>
    );
  }
  return (
    <>
      <a class="skip" href="#content" onClick={skipToContent}>
        Skip to content
      </a>
      <Header
        session={session}
        onSignOut={() => {
          signOut();
          setSession(null);
          window.location.hash = '#/';
        }}
      />
      <Routes session={session} />
    </>
  );
}

function skipToContent(event: Event) {
  // The hash routes pages, so the skip link moves focus itself.
  event.preventDefault();
  const main = document.getElementById('content');
  main?.setAttribute('tabindex', '-1');
  main?.focus();
}

function Header({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { me } = session;
  const scope = me.project ? `${me.organization}/${me.project}` : me.organization;
  return (
    <header class="top">
      <a class="brand" href="#/">
        allot
      </a>
      {me.organization === null ? (
        <nav aria-label="Main">
          <a href="#/">Organizations</a>
        </nav>
      ) : null}
      <span class="who" aria-label="Signed in as">
        {me.role}
        {scope ? ` of ${scope}` : ''} <span class="muted">({me.principal})</span>
      </span>
      <button type="button" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}

function Routes({ session }: { session: Session }) {
  const path = useHashPath();
  const own = session.me.organization;
  useEffect(() => {
    // A token scoped to one organization has nothing else to list.
    if (path === '/' && own !== null) window.location.hash = `#/o/${own}`;
  }, [path, own]);
  useEffect(() => {
    document.title = path === '/' ? 'allot — organizations' : `allot — ${path.split('/').slice(2).join(' · ')}`;
  }, [path]);
  const match = /^\/o\/([a-z0-9][a-z0-9-]{0,62})(?:\/(history|limits))?$/.exec(path);
  if (path === '/') return own === null ? <Organizations session={session} /> : <Loading what="your organization" />;
  if (match) {
    const organization = match[1]!;
    if (match[2] === 'history') return <HistoryView key={organization} session={session} organization={organization} />;
    if (match[2] === 'limits') return <LimitsView key={organization} session={session} organization={organization} />;
    return <OrganizationView key={organization} session={session} organization={organization} />;
  }
  return (
    <main id="content">
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <a href="#/">Go to the start.</a>
      </p>
    </main>
  );
}

render(<App />, document.getElementById('app')!);

import { NavLink, Navigate, Route, Routes, useLocation } from 'react-router';
import { $api, fetchClient, type Schemas } from './api';
import { LiveUpdates, useLiveConnected } from './live';
import { ApprovalsPage } from './pages/ApprovalsPage';
import { ControlsPage } from './pages/ControlsPage';
import { EvidencePage } from './pages/EvidencePage';
import { SessionPage } from './pages/SessionPage';
import { SessionsPage } from './pages/SessionsPage';

type Identity = Schemas['Identity'];

function loginHref(path: string): string {
  return `/auth/login?returnTo=${encodeURIComponent(path)}`;
}

async function logout(): Promise<void> {
  await fetchClient.POST('/auth/logout');
  window.location.assign('/');
}

/** Whether the page follows changes as they happen (GET /v1/live) or polls; announced politely to screen readers. */
function LiveStatus() {
  const connected = useLiveConnected();
  return (
    <span className="live-status" role="status" data-live={connected ? 'connected' : 'polling'}>
      {connected ? 'Live updates on' : 'Live updates reconnecting (refreshing every 2 s)'}
    </span>
  );
}

function SignIn() {
  const location = useLocation();
  return (
    <main className="signin">
      <h1>Custodian</h1>
      <p>Approvals, sessions and evidence of the Custodian gateway. Sign in with your organisation's identity provider.</p>
      <a className="button primary" href={loginHref(location.pathname + location.search)}>
        Sign in
      </a>
    </main>
  );
}

export function App() {
  const me = $api.useQuery('get', '/auth/me');
  if (me.isPending) return <p role="status">Loading…</p>;
  if (me.error || !me.data) return <SignIn />;
  const identity = me.data.identity as Identity;
  const auditor = me.data.auditor;
  if (identity.kind === 'agent') {
    // Agents never log in here (issue 16): the page shows nothing of the API to an agent identity.
    return (
      <main className="signin">
        <h1>Custodian</h1>
        <p role="alert">This dashboard is for people. {identity.subject} is an agent identity; agents use the gateway, not the dashboard.</p>
        <button type="button" onClick={() => void logout()}>
          Sign out
        </button>
      </main>
    );
  }
  return (
    <LiveUpdates>
      <div className="layout">
        <header>
          <span className="brand">Custodian</span>
          <nav aria-label="Main">
            <NavLink to="/approvals">Approvals</NavLink>
            <NavLink to="/sessions">Sessions</NavLink>
            {auditor && <NavLink to="/controls">Controls</NavLink>}
            {auditor && <NavLink to="/evidence">Evidence</NavLink>}
          </nav>
          <LiveStatus />
          <span className="who">
            {identity.subject} <span className="groups">({identity.groups.join(', ') || 'no groups'})</span>
            <button type="button" onClick={() => void logout()}>
              Sign out
            </button>
          </span>
        </header>
        <main>
          <Routes>
            <Route path="/" element={<Navigate to={auditor ? '/sessions' : '/approvals'} replace />} />
            <Route path="/approvals" element={<ApprovalsPage identity={identity} />} />
            <Route path="/sessions" element={<SessionsPage />} />
            <Route path="/sessions/:sessionId" element={<SessionPage />} />
            {auditor && <Route path="/controls" element={<ControlsPage />} />}
            {auditor && <Route path="/evidence" element={<EvidencePage />} />}
            <Route path="*" element={<p>Nothing here. <NavLink to="/approvals">Approvals</NavLink></p>} />
          </Routes>
        </main>
      </div>
    </LiveUpdates>
  );
}

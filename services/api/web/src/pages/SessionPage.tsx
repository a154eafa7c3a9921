import { Suspense } from 'react';
import { Link, useParams } from 'react-router';
import { $api, apiErrorOf } from '../api';
import { useFallbackRefresh } from '../live';
import { replayViewFor, timelineViewFor } from '../replay';
import { formatTime } from '../time';
import { SessionState } from './SessionsPage';

export function SessionPage() {
  const { sessionId = '' } = useParams();
  const poll = useFallbackRefresh();
  const session = $api.useQuery('get', '/v1/sessions/{sessionId}', { params: { path: { sessionId } } }, { refetchInterval: (query) => (query.state.data && query.state.data.session.state !== 'ended' ? poll : false) });
  if (session.error) return <p role="alert">{apiErrorOf(session.error)?.message ?? 'Could not load the session.'} <Link to="/sessions">All sessions</Link></p>;
  if (!session.data) return <p role="status">Loading…</p>;
  const s = session.data.session;
  const timeline = timelineViewFor(s.connection.protocol);
  const Timeline = timeline.component;
  const replay = replayViewFor(s.connection.protocol);
  const Replay = replay?.component;
  return (
    <section aria-labelledby="session-heading">
      <div className="page-head">
        <h1 id="session-heading">
          Session on {s.connection.name} <SessionState session={s} />
        </h1>
        <Link to="/sessions">All sessions</Link>
      </div>
      <dl className="facts">
        <dt>Session</dt>
        <dd>
          <code>{s.sessionId}</code>
        </dd>
        <dt>Identity</dt>
        <dd>{s.identity ? `${s.identity.subject} (${s.identity.kind}; groups ${s.identity.groups.join(', ') || 'none'}; issuer ${s.identity.issuer})` : 'none established'}</dd>
        <dt>Connection</dt>
        <dd>
          {s.connection.name} ({s.connection.protocol}) from {s.clientAddress ?? 'unknown address'}
        </dd>
        <dt>Opened</dt>
        <dd>{formatTime(s.openedAt)}</dd>
        <dt>Ended</dt>
        <dd>{s.closedAt ? `${formatTime(s.closedAt)} (${s.closeReason ?? '?'}${s.errorCode ? `, ${s.errorCode}` : ''}; ${s.durationMs ?? '?'} ms)` : `not yet; latest event ${formatTime(s.lastEventAt)}`}</dd>
        <dt>Commands</dt>
        <dd>
          {s.counts.commands} ({s.counts.allowed} allowed, {s.counts.blocked} blocked, {s.counts.held} held for approval, {s.counts.masked} masked)
        </dd>
        <dt>Credential</dt>
        <dd>
          {s.credentialRef ?? '—'}
          {s.custodyExposed === null ? '' : s.custodyExposed ? ' — EXPOSED (see the custody statement)' : ' — signed statement: never exposed to the client'}
        </dd>
      </dl>
      {replay && Replay && (
        <>
          <h2>{replay.title}</h2>
          <Suspense fallback={<p role="status">Loading the replay…</p>}>
            <Replay session={s} />
          </Suspense>
        </>
      )}
      <h2>{timeline.title}</h2>
      <Timeline session={s} />
    </section>
  );
}

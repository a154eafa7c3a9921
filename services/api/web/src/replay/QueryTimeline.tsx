import { $api, apiErrorOf } from '../api';
import { useFallbackRefresh } from '../live';
import { formatDuration, formatTime } from '../time';
import type { ReplayViewProps } from './index';

/** The SQL query timeline: GET /v1/sessions/{id}/timeline, paged by revision, live while the session runs. */
export function QueryTimeline({ session }: ReplayViewProps) {
  const poll = useFallbackRefresh(session.state !== 'ended');
  const timeline = $api.useQuery(
    'get',
    '/v1/sessions/{sessionId}/timeline',
    { params: { path: { sessionId: session.sessionId } } },
    { refetchInterval: poll },
  );
  if (timeline.error) return <p role="alert">Could not load the timeline: {apiErrorOf(timeline.error)?.message ?? 'error'}</p>;
  if (!timeline.data) return <p role="status">Loading the timeline…</p>;
  return (
    <>
      <table aria-label={session.connection.protocol === 'postgres' ? 'Query timeline' : 'Commands'}>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Statement</th>
            <th scope="col">Decision</th>
            <th scope="col">Result</th>
            <th scope="col">Rows</th>
            <th scope="col">Masked</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {timeline.data.commands.length === 0 && (
            <tr>
              <td colSpan={7}>No commands recorded.</td>
            </tr>
          )}
          {timeline.data.commands.map((c) => (
            <tr key={c.commandId}>
              <td>{formatTime(c.issuedAt)}</td>
              <td>
                <pre>{c.text}</pre>
                {c.parameters && c.parameters.length > 0 && <span className="muted">parameters: {c.parameters.map((p) => (p === null ? 'NULL' : p)).join(', ')}</span>}
              </td>
              <td>
                {c.decision ? (
                  <span className={`decision-${c.decision.decision}`} title={c.decision.reason}>
                    {c.decision.decision}
                    {c.decision.ruleId ? ` (${c.decision.ruleId})` : ' (default)'}
                  </span>
                ) : (
                  '—'
                )}
                {c.approval && (
                  <div>
                    approval {c.approval.status} ({c.approval.approvals} of {c.approval.required})
                  </div>
                )}
              </td>
              <td>{c.error ? <span className="decision-block">{c.error.message}{c.error.code ? ` [${c.error.code}]` : ''}</span> : (c.tag ?? '—')}</td>
              <td>{c.rows ?? '—'}</td>
              <td>{c.maskings.length === 0 ? '—' : c.maskings.map((m) => `${m.field} (${m.rule}${m.detector ? `, ${m.detector}` : ''}) ×${m.count}`).join('; ')}</td>
              <td>{formatDuration(c.durationMicros)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {timeline.data.nextRevision !== null && <p className="muted">More commands follow; this page shows the first {timeline.data.commands.length}.</p>}
    </>
  );
}

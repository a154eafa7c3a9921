import { useId, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { $api, apiErrorOf } from '../api';
import { recentPeriod, toApi, type Period } from '../period';
import { formatTime } from '../time';

/** NIST SP 800-53 rev5 and ISO/IEC 27001:2022 Annex A coverage from the evidence views, with findings linked to their sessions. */
export function ControlsPage() {
  const [period, setPeriod] = useState<Period>(() => recentPeriod(7));
  const fromId = useId();
  const toId = useId();
  const report = $api.useQuery('get', '/v1/evidence/report', { params: { query: { from: toApi(period.from), to: toApi(period.to) } } });
  const onSubmit = (event: FormEvent<HTMLFormElement>): void => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setPeriod({ from: String(form.get('from')), to: String(form.get('to')) });
  };
  const findings = new Map((report.data?.findings ?? []).map((f) => [f.id, f]));
  return (
    <section aria-labelledby="controls-heading">
      <div className="page-head">
        <h1 id="controls-heading">Controls</h1>
      </div>
      <form className="filters" onSubmit={onSubmit} aria-label="Reporting period">
        <label htmlFor={fromId}>
          From
          <input id={fromId} name="from" type="datetime-local" defaultValue={period.from} required />
        </label>
        <label htmlFor={toId}>
          To
          <input id={toId} name="to" type="datetime-local" defaultValue={period.to} required />
        </label>
        <button type="submit">Show</button>
      </form>
      {report.error && <p role="alert">Could not load the report: {apiErrorOf(report.error)?.message ?? 'error'}</p>}
      {!report.data && !report.error && <p role="status">Loading…</p>}
      {report.data && (
        <>
          <p>
            {report.data.totals.events ?? 0} events, {report.data.totals.sessions ?? 0} sessions, {report.data.totals.findings ?? 0} findings in this period.
          </p>
          <table aria-label="Control coverage">
            <thead>
              <tr>
                <th scope="col">Control</th>
                <th scope="col">Status</th>
                <th scope="col">Evidence</th>
                <th scope="col">Sample sessions</th>
                <th scope="col">Findings</th>
              </tr>
            </thead>
            <tbody>
              {report.data.controls.map((c) => (
                <tr key={c.id}>
                  <td>
                    <strong>{c.id}</strong> {c.title}
                    <div className="muted">{c.catalogue}</div>
                  </td>
                  <td className={c.status === 'satisfied' ? 'decision-allow' : 'decision-block'} title={c.statusReason}>
                    {c.status}
                  </td>
                  <td>{c.count}</td>
                  <td>
                    {c.sampleSessions.length === 0
                      ? '—'
                      : c.sampleSessions.slice(0, 3).map((id) => (
                          <div key={id}>
                            <Link to={`/sessions/${id}`}>{id.slice(0, 8)}…</Link>
                          </div>
                        ))}
                  </td>
                  <td>{c.findings.length === 0 ? '—' : c.findings.map((id) => <div key={id}>{findings.get(id)?.title ?? id}</div>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Findings</h2>
          {report.data.findings.length === 0 && <p>No findings in this period.</p>}
          <table aria-label="Findings">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Finding</th>
                <th scope="col">Severity</th>
                <th scope="col">Controls</th>
                <th scope="col">Session</th>
              </tr>
            </thead>
            <tbody>
              {report.data.findings.map((f) => (
                <tr key={f.id}>
                  <td>{formatTime(f.occurredAt)}</td>
                  <td>
                    <strong>{f.title}</strong>
                    <div>{f.description}</div>
                  </td>
                  <td>{f.severity}</td>
                  <td>{f.controls.join(', ')}</td>
                  <td>{f.sessionId ? <Link to={`/sessions/${f.sessionId}`}>{f.subject ?? 'session'} on {f.connection ?? '?'}</Link> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

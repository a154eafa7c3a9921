import { useId, useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { $api, apiErrorOf, type Schemas } from '../api';
import { useFallbackRefresh } from '../live';
import { formatTime } from '../time';

const FILTERS = ['identity', 'connection', 'protocol', 'from', 'to', 'decision', 'state', 'findings'] as const;
type Filter = (typeof FILTERS)[number];
type DecisionFilter = 'blocked' | 'held' | 'masked' | 'allowed-only';
type StateFilter = 'live' | 'quiet' | 'ended';
const PAGE_SIZE = 50;

/** `datetime-local` value (local time) → RFC 3339 (UTC), or undefined. */
function toRfc3339(local: string | null): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Live, quiet (open but no event for a while: idle, or its gateway stopped without closing it) or ended. */
export function SessionState({ session }: { session: Schemas['SessionSummary'] }) {
  if (session.state === 'live') return <span className="live">● live</span>;
  if (session.state === 'quiet') {
    return (
      <span className="quiet" title="No event for 15 minutes: idle, or its gateway stopped without closing it">
        ○ quiet since {formatTime(session.lastEventAt)}
      </span>
    );
  }
  return <>ended ({session.closeReason ?? '?'})</>;
}

export function SessionsPage() {
  const [params, setParams] = useSearchParams();
  // Cursors of the pages before this one (keyset paging has no page numbers).
  const [cursors, setCursors] = useState<string[]>([]);
  const ids = { identity: useId(), connection: useId(), protocol: useId(), from: useId(), to: useId(), decision: useId(), state: useId(), findings: useId() };
  const value = (name: Filter): string => params.get(name) ?? '';
  const cursor = cursors[cursors.length - 1];
  const from = toRfc3339(params.get('from'));
  const to = toRfc3339(params.get('to'));
  const decision = value('decision') as DecisionFilter | '';
  const state = value('state') as StateFilter | '';
  const findings = value('findings') === 'true';
  const poll = useFallbackRefresh();
  const sessions = $api.useQuery(
    'get',
    '/v1/sessions',
    {
      params: {
        query: {
          limit: PAGE_SIZE,
          ...(value('identity') ? { identity: value('identity') } : {}),
          ...(value('connection') ? { connection: value('connection') } : {}),
          ...(value('protocol') ? { protocol: value('protocol') } : {}),
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          ...(decision ? { decision } : {}),
          ...(state ? { state } : {}),
          ...(findings ? { findings: 'true' as const } : {}),
          ...(cursor ? { cursor } : {}),
        },
      },
    },
    { refetchInterval: poll },
  );
  const onSubmit = (event: FormEvent<HTMLFormElement>): void => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const v = form.get(name);
      if (typeof v === 'string' && v !== '') next.set(name, v);
    }
    setCursors([]);
    setParams(next);
  };
  return (
    <section aria-labelledby="sessions-heading">
      <div className="page-head">
        <h1 id="sessions-heading">Sessions</h1>
      </div>
      <form className="filters" onSubmit={onSubmit} aria-label="Filter sessions" key={params.toString()}>
        <label htmlFor={ids.identity}>
          Identity (subject)
          <input id={ids.identity} name="identity" defaultValue={value('identity')} />
        </label>
        <label htmlFor={ids.connection}>
          Connection
          <input id={ids.connection} name="connection" defaultValue={value('connection')} />
        </label>
        <label htmlFor={ids.protocol}>
          Protocol
          <select id={ids.protocol} name="protocol" defaultValue={value('protocol')}>
            <option value="">any</option>
            {['postgres', 'ssh', 'http', 'anthropic', 'mcp', 'kubernetes'].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label htmlFor={ids.from}>
          Opened from
          <input id={ids.from} name="from" type="datetime-local" defaultValue={value('from')} />
        </label>
        <label htmlFor={ids.to}>
          Opened before
          <input id={ids.to} name="to" type="datetime-local" defaultValue={value('to')} />
        </label>
        <label htmlFor={ids.decision}>
          Decisions
          <select id={ids.decision} name="decision" defaultValue={value('decision')}>
            <option value="">any</option>
            <option value="blocked">with a blocked command</option>
            <option value="held">with a held command</option>
            <option value="masked">with masking</option>
            <option value="allowed-only">nothing blocked or held</option>
          </select>
        </label>
        <label htmlFor={ids.state}>
          State
          <select id={ids.state} name="state" defaultValue={value('state')}>
            <option value="">any</option>
            <option value="live">live</option>
            <option value="quiet">quiet</option>
            <option value="ended">ended</option>
          </select>
        </label>
        <label htmlFor={ids.findings} className="checkbox">
          <span>
            <input id={ids.findings} name="findings" type="checkbox" value="true" defaultChecked={findings} /> Has findings
          </span>
        </label>
        <button type="submit">Apply</button>
      </form>
      {sessions.error && <p role="alert">Could not load sessions: {apiErrorOf(sessions.error)?.message ?? 'error'}</p>}
      {sessions.data && (
        <table aria-label="Sessions">
          <thead>
            <tr>
              <th scope="col">Opened</th>
              <th scope="col">Identity</th>
              <th scope="col">Connection</th>
              <th scope="col">State</th>
              <th scope="col">Commands</th>
              <th scope="col">Blocked / held</th>
              <th scope="col">Custody</th>
            </tr>
          </thead>
          <tbody>
            {sessions.data.sessions.length === 0 && (
              <tr>
                <td colSpan={7}>No sessions match.</td>
              </tr>
            )}
            {sessions.data.sessions.map((s) => (
              <tr key={s.sessionId}>
                <td>
                  <Link to={`/sessions/${s.sessionId}`}>{formatTime(s.openedAt)}</Link>
                </td>
                <td>
                  {s.identity ? `${s.identity.subject} (${s.identity.kind})` : 'no identity'}
                </td>
                <td>
                  {s.connection.name} <span className="muted">({s.connection.protocol})</span>
                </td>
                <td>
                  <SessionState session={s} />
                </td>
                <td>{s.counts.commands}</td>
                <td>
                  {s.counts.blocked} / {s.counts.held}
                </td>
                <td>{s.custodyExposed === null ? '—' : s.custodyExposed ? <strong className="decision-block">credential exposed</strong> : 'never exposed'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="pager">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={!sessions.data?.nextCursor} onClick={() => sessions.data?.nextCursor && setCursors([...cursors, sessions.data.nextCursor])}>
          Older
        </button>
      </div>
    </section>
  );
}

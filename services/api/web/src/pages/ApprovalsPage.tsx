import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useState } from 'react';
import { Link } from 'react-router';
import { $api, apiErrorOf, type Approval, type Schemas } from '../api';
import { useFallbackRefresh } from '../live';
import { formatTime, timeLeft } from '../time';

type Status = 'pending' | 'granted' | 'denied' | 'expired' | 'cancelled' | 'all';
const STATUSES: readonly Status[] = ['pending', 'all', 'granted', 'denied', 'expired', 'cancelled'];

/** Re-renders every second (the countdowns). */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

function DecisionForm({ approval }: { approval: Approval }) {
  const queryClient = useQueryClient();
  const [justification, setJustification] = useState('');
  const [result, setResult] = useState<{ kind: 'error' | 'ok'; text: string } | undefined>();
  const fieldId = useId();
  const onSettled = async (): Promise<void> => {
    await queryClient.invalidateQueries({ queryKey: ['get', '/v1/approvals'] });
  };
  const approve = $api.useMutation('post', '/v1/approvals/{approvalId}/approve', { onSettled });
  const deny = $api.useMutation('post', '/v1/approvals/{approvalId}/deny', { onSettled });
  const busy = approve.isPending || deny.isPending;
  const decide = async (action: 'approve' | 'deny'): Promise<void> => {
    setResult(undefined);
    const mutation = action === 'approve' ? approve : deny;
    try {
      const response = await mutation.mutateAsync({ params: { path: { approvalId: approval.approvalId } }, body: { justification } });
      const after = response.approval;
      setResult({
        kind: 'ok',
        text: after.status === 'pending' ? `Approved (${after.approvals} of ${after.required}); waiting for more approvers.` : `Recorded: ${after.status}.`,
      });
      setJustification('');
    } catch (error) {
      const refusal = apiErrorOf(error);
      setResult({ kind: 'error', text: refusal ? `${refusal.message} (${refusal.code})` : 'The request failed; try again.' });
    }
  };
  return (
    <form
      className="decision"
      onSubmit={(event) => {
        event.preventDefault();
        void decide('approve');
      }}
    >
      <label htmlFor={fieldId}>Justification (recorded in the evidence log)</label>
      <textarea id={fieldId} required maxLength={4096} value={justification} onChange={(event) => setJustification(event.target.value)} rows={2} />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || justification.trim() === ''}>
          Approve
        </button>
        <button type="button" className="danger" disabled={busy || justification.trim() === ''} onClick={() => void decide('deny')}>
          Deny
        </button>
      </div>
      {result && (
        <p role={result.kind === 'error' ? 'alert' : 'status'} className={result.kind}>
          {result.text}
        </p>
      )}
    </form>
  );
}

function ApprovalCard({ approval, now, identity }: { approval: Approval; now: number; identity: Schemas['Identity'] }) {
  const self = approval.requester.subject === identity.subject;
  const headingId = useId();
  return (
    <article className="card approval" aria-labelledby={headingId} data-approval-id={approval.approvalId}>
      <h3 id={headingId}>
        {approval.connection.name} <span className="muted">({approval.connection.protocol}, {approval.language})</span> —{' '}
        <span className={`status ${approval.status}`}>{approval.status}</span>
      </h3>
      <pre className="command" aria-label="Held command">
        {approval.command}
      </pre>
      {approval.parameters && approval.parameters.length > 0 && (
        <ol className="parameters" aria-label="Bound parameters">
          {approval.parameters.map((value, index) => (
            <li key={index}>
              <code>${index + 1}</code> = <code>{value === null ? 'NULL' : value}</code>
            </li>
          ))}
        </ol>
      )}
      <dl className="facts">
        <dt>Requested by</dt>
        <dd>
          {approval.requester.subject} ({approval.requester.kind}; groups {approval.requester.groups.join(', ') || 'none'})
        </dd>
        <dt>Rule</dt>
        <dd>
          {approval.ruleId}
          {approval.policy && ` (policy ${approval.policy.name} v${approval.policy.version})`}
        </dd>
        <dt>Requested</dt>
        <dd>{formatTime(approval.requestedAt)}</dd>
        <dt>Time left</dt>
        <dd>{approval.status === 'pending' ? timeLeft(approval.expiresAt, now) : '—'}</dd>
        <dt>Approvals</dt>
        <dd>
          <progress max={approval.required} value={approval.approvals} aria-label={`${approval.approvals} of ${approval.required} approvals`} /> {approval.approvals} of{' '}
          {approval.required} (approvers: {approval.approverGroups.join(', ')})
        </dd>
        <dt>Grant</dt>
        <dd>{approval.grantScope.kind === 'window' ? `a window of ${approval.grantScope.windowSeconds ?? '?'} s` : 'this execution only'}</dd>
        <dt>Session</dt>
        <dd>
          <Link to={`/sessions/${approval.sessionId}`}>{approval.sessionId}</Link>
        </dd>
      </dl>
      {approval.status === 'pending' && self && <p className="note">You asked for this command: someone else has to approve it (no self-approval).</p>}
      {approval.status === 'pending' && (approval.canDecide || self) && <DecisionForm approval={approval} />}
      {approval.status === 'pending' && !approval.canDecide && !self && <p className="note">You can see this request but may not decide it.</p>}
    </article>
  );
}

export function ApprovalsPage({ identity }: { identity: Schemas['Identity'] }) {
  const [status, setStatus] = useState<Status>('pending');
  const now = useNow();
  const statusId = useId();
  const poll = useFallbackRefresh();
  const approvals = $api.useQuery('get', '/v1/approvals', { params: { query: { status, limit: 100 } } }, { refetchInterval: poll });
  return (
    <section aria-labelledby="approvals-heading">
      <div className="page-head">
        <h1 id="approvals-heading">Approvals</h1>
        <label htmlFor={statusId}>Show</label>
        <select id={statusId} value={status} onChange={(event) => setStatus(event.target.value as Status)}>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <span className="muted" role="status">
          {approvals.isFetching ? 'refreshing…' : 'live'}
        </span>
      </div>
      {approvals.error && <p role="alert">Could not load approvals: {apiErrorOf(approvals.error)?.message ?? 'error'}</p>}
      {approvals.data && approvals.data.approvals.length === 0 && <p>No {status === 'all' ? '' : status} approvals for you.</p>}
      {approvals.data?.approvals.map((approval) => <ApprovalCard key={approval.approvalId} approval={approval} now={now} identity={identity} />)}
    </section>
  );
}

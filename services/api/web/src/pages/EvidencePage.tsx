import { useId, useState, type FormEvent } from 'react';
import { $api, apiErrorOf, fetchClient } from '../api';
import { recentPeriod, toApi } from '../period';
import { formatTime } from '../time';

type Report = NonNullable<Awaited<ReturnType<typeof verifyPack>>['data']>;

function verifyPack(file: File) {
  return fetchClient.POST('/v1/evidence/packs/verify', {
    body: file as unknown as string,
    bodySerializer: (body) => body,
    headers: { 'content-type': 'application/gzip' },
  });
}

function ExportForm() {
  const ids = { from: useId(), to: useId(), identity: useId(), connection: useId(), control: useId() };
  const initial = recentPeriod(7);
  const [status, setStatus] = useState<{ kind: 'progress' | 'ok' | 'error'; text: string } | undefined>();
  const onSubmit = async (event: FormEvent<HTMLFormElement>): Promise<void> => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string): string | undefined => {
      const v = form.get(name);
      return typeof v === 'string' && v !== '' ? v : undefined;
    };
    setStatus({ kind: 'progress', text: 'Building the pack (signing, proofs)…' });
    const identity = text('identity');
    const connection = text('connection');
    const control = text('control');
    const { data, error, response } = await fetchClient.POST('/v1/evidence/packs', {
      body: { from: toApi(String(form.get('from'))), to: toApi(String(form.get('to'))), ...(identity ? { identity } : {}), ...(connection ? { connection } : {}), ...(control ? { control } : {}) },
      parseAs: 'stream',
    });
    if (error || !data) {
      setStatus({ kind: 'error', text: `Export refused: ${apiErrorOf(error)?.message ?? response.statusText}` });
      return;
    }
    // Received bytes are counted as they arrive (the pack can be large).
    const reader = (data as ReadableStream<Uint8Array>).getReader();
    const chunks: Uint8Array[] = [];
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      setStatus({ kind: 'progress', text: `Downloading… ${(received / 1024).toFixed(0)} KiB` });
    }
    const packId = response.headers.get('x-custodian-pack-id') ?? 'pack';
    const digest = response.headers.get('x-custodian-pack-sha256') ?? '';
    const url = URL.createObjectURL(new Blob(chunks as BlobPart[], { type: 'application/gzip' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = `custodian-evidence-${packId}.tar.gz`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    setStatus({ kind: 'ok', text: `Pack ${packId} downloaded (${(received / 1024).toFixed(0)} KiB, sha256 ${digest}). The export is recorded in the log.` });
  };
  return (
    <form className="filters" onSubmit={(event) => void onSubmit(event)} aria-label="Export an evidence pack">
      <label htmlFor={ids.from}>
        From
        <input id={ids.from} name="from" type="datetime-local" defaultValue={initial.from} required />
      </label>
      <label htmlFor={ids.to}>
        To
        <input id={ids.to} name="to" type="datetime-local" defaultValue={initial.to} required />
      </label>
      <label htmlFor={ids.identity}>
        Identity
        <input id={ids.identity} name="identity" />
      </label>
      <label htmlFor={ids.connection}>
        Connection
        <input id={ids.connection} name="connection" />
      </label>
      <label htmlFor={ids.control}>
        Control
        <input id={ids.control} name="control" placeholder="e.g. AC-3" />
      </label>
      <button type="submit" className="primary" disabled={status?.kind === 'progress'}>
        Export pack
      </button>
      {status && (
        <p role={status.kind === 'error' ? 'alert' : 'status'} className={status.kind}>
          {status.text}
        </p>
      )}
    </form>
  );
}

function VerifyForm() {
  const fileId = useId();
  const [result, setResult] = useState<{ report?: Report; error?: string; busy?: boolean }>({});
  const onSubmit = async (event: FormEvent<HTMLFormElement>): Promise<void> => {
    event.preventDefault();
    const file = new FormData(event.currentTarget).get('pack');
    if (!(file instanceof File) || file.size === 0) return;
    setResult({ busy: true });
    const { data, error } = await verifyPack(file);
    setResult(data ? { report: data } : { error: apiErrorOf(error)?.message ?? 'verification failed' });
  };
  const report = result.report;
  return (
    <>
      <form className="filters" onSubmit={(event) => void onSubmit(event)} aria-label="Verify an evidence pack">
        <label htmlFor={fileId}>
          Pack file (.tar.gz)
          <input id={fileId} name="pack" type="file" accept=".gz,application/gzip" required />
        </label>
        <button type="submit" disabled={result.busy}>
          Verify
        </button>
      </form>
      {result.busy && <p role="status">Verifying…</p>}
      {result.error && <p role="alert">{result.error}</p>}
      {report && (
        <div aria-label="Verification result">
          <p role="status" className={report.ok ? 'ok' : 'error'}>
            {report.ok ? 'OK: every signature, digest and proof holds' : `FAILED: ${report.firstFailure?.name ?? '?'}: ${report.firstFailure?.detail ?? ''}`}
          </p>
          <ul>
            {report.checks.map((c) => (
              <li key={c.name}>
                {c.ok ? '✓' : '✗'} <strong>{c.name}</strong> {c.detail}
              </li>
            ))}
          </ul>
          <p className="muted">Checked with this log's keys pinned. For verification that trusts no server, run custodian evidence verify on the file offline (docs/verifying-evidence.md).</p>
        </div>
      )}
    </>
  );
}

function Checkpoints() {
  const log = $api.useQuery('get', '/v1/evidence/log');
  const checkpoints = $api.useQuery('get', '/v1/evidence/checkpoints');
  if (log.error) return <p role="alert">Could not load the log: {apiErrorOf(log.error)?.message ?? 'error'}</p>;
  if (!log.data) return <p role="status">Loading…</p>;
  const latest = log.data.latestCheckpoint;
  const recent = [...(checkpoints.data?.checkpoints ?? [])].reverse().slice(0, 10);
  return (
    <>
      <dl className="facts">
        <dt>Origin</dt>
        <dd>
          <code>{log.data.origin}</code>
        </dd>
        <dt>Leaves</dt>
        <dd>{log.data.treeSize}</dd>
        <dt>Log keys</dt>
        <dd>
          {log.data.keys.map((k) => (
            <div key={k}>
              <code>{k}</code>
            </div>
          ))}
        </dd>
        <dt>Witnesses</dt>
        <dd>{log.data.witnesses.length === 0 ? 'none configured' : log.data.witnesses.map((w) => <div key={w}><code>{w}</code></div>)}</dd>
        <dt>Latest checkpoint</dt>
        <dd>{latest ? `tree size ${latest.treeSize}, root ${latest.rootHash}, signed ${formatTime(latest.signedAt)}` : 'none signed yet'}</dd>
      </dl>
      {latest && (
        <pre className="command" aria-label="Latest signed checkpoint note">
          {latest.note}
        </pre>
      )}
      {recent.length > 0 && (
        <table aria-label="Recent checkpoints">
          <thead>
            <tr>
              <th scope="col">Signed</th>
              <th scope="col">Tree size</th>
              <th scope="col">Root hash</th>
              <th scope="col">Signatures</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((c) => (
              <tr key={c.treeSize}>
                <td>{formatTime(c.signedAt)}</td>
                <td>{c.treeSize}</td>
                <td>
                  <code>{c.rootHash}</code>
                </td>
                <td>{c.note.split('\n').filter((line) => line.startsWith('— ')).length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function EvidencePage() {
  return (
    <section aria-labelledby="evidence-heading">
      <h1 id="evidence-heading">Evidence</h1>
      <h2>Export a pack</h2>
      <ExportForm />
      <h2>Verify a pack</h2>
      <VerifyForm />
      <h2>Checkpoints</h2>
      <Checkpoints />
    </section>
  );
}

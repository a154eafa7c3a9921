// The pack's human-readable report: one self-contained HTML page (no scripts, no external assets).
import type { EvidenceReport } from '../evidence-views.js';

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface HtmlReportInput {
  readonly packId: string;
  readonly createdAt: string;
  readonly exportedBy: string;
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: string;
  readonly keyIds: readonly string[];
  readonly checkpoints: number;
  readonly witnesses: readonly string[];
  readonly report: EvidenceReport;
}

export function renderHtmlReport(input: HtmlReportInput): string {
  const { report } = input;
  const scope = [`${report.scope.from} → ${report.scope.to}`, report.scope.identity && `identity ${report.scope.identity}`, report.scope.connection && `connection ${report.scope.connection}`, report.scope.control && `control ${report.scope.control}`]
    .filter(Boolean)
    .join(', ');
  const controls = report.controls
    .map(
      (c) => `<tr class="${c.status}"><td><strong>${escape(c.id)}</strong><br>${escape(c.title)}</td><td>${escape(c.asks)}</td><td>${escape(c.status)}<br><small>${escape(c.statusReason)}</small></td><td>${c.count}<br><small>${c.byRule.map((r) => `${escape(r.event)}: ${r.count}`).join('<br>')}</small></td><td><small>${c.sampleSessions.map(escape).join('<br>')}</small></td></tr>`,
    )
    .join('\n');
  const findings =
    report.findings.length === 0
      ? '<p>No findings.</p>'
      : `<table><tr><th>Finding</th><th>Severity</th><th>Controls</th><th>When</th><th>What</th></tr>${report.findings
          .map((f) => `<tr><td>${escape(f.title)}</td><td>${escape(f.severity)}</td><td>${f.controls.map(escape).join(', ')}</td><td>${escape(f.occurredAt)}</td><td>${escape(f.description)}</td></tr>`)
          .join('\n')}</table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Custodian evidence pack ${escape(input.packId)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem;vertical-align:top;text-align:left}tr.not-satisfied td:nth-child(3){color:#a00}tr.satisfied td:nth-child(3){color:#070}tr.not-assessed td:nth-child(3){color:#666}code{word-break:break-all}</style>
</head><body>
<h1>Custodian evidence pack</h1>
<dl>
<dt>Pack</dt><dd><code>${escape(input.packId)}</code>, exported ${escape(input.createdAt)} by ${escape(input.exportedBy)}</dd>
<dt>Scope</dt><dd>${escape(scope)}</dd>
<dt>Contents</dt><dd>${report.totals.events} events, ${report.totals.sessions} sessions, ${report.totals.findings} findings, ${input.checkpoints} signed checkpoints</dd>
<dt>Evidence log</dt><dd><code>${escape(input.origin)}</code>, tree size ${input.treeSize}, root <code>${escape(input.rootHash)}</code>, signed by key ID(s) ${input.keyIds.map(escape).join(', ')}${input.witnesses.length > 0 ? `, cosigned by ${input.witnesses.map(escape).join(', ')}` : ''}</dd>
</dl>
<h2>Controls</h2>
<table><tr><th>Control</th><th>What it asks</th><th>Status</th><th>Evidence</th><th>Sample sessions</th></tr>
${controls}
</table>
<h2>Findings</h2>
${findings}
<h2>Verifying this pack</h2>
<p>Run <code>custodian evidence verify &lt;pack&gt; --key &lt;log vkey&gt;</code> (offline), or check it with independent tools:
<code>cosign verify-blob-attestation</code> for <code>attestation.dsse.json</code>, Go's <code>golang.org/x/mod/sumdb/note</code> and
<code>github.com/transparency-dev/merkle</code> for the checkpoints and proofs (see docs/verifying-evidence.md).
This report is informative; the signed files are the evidence.</p>
</body></html>
`;
}

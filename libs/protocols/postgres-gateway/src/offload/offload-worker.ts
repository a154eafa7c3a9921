// The offload worker's entry point (started by OffloadPool): classifies large statements and masks
// large values with the same code the event loop runs for small ones, so one session's heavy
// statement or value never stalls every other session. Holds the masking policies the pool sends
// (their HMAC key included: worker memory only, never logged).
import { parentPort, workerData } from 'node:worker_threads';
import { MaskingFindings, MaskingPolicy } from '@custodian/masking';
import { classifySqlSync, loadSqlClassifier, normalizeSqlSync, type SqlStatementClassification } from '@custodian/sql-classification';
import { OFFLOAD_WORKER_ROLE, type ClassifyResult, type MaskingPolicyMessage, type OffloadReply, type OffloadRequest, type OffloadedText, type PortableClassification } from './offload-protocol.js';

/** Policies kept per worker (a policy reload sends a new one; the oldest is dropped). */
const POLICIES_KEPT = 8;
const policies = new Map<number, MaskingPolicy>();

function policy(id: number): MaskingPolicy {
  const found = policies.get(id);
  if (!found) throw new Error(`masking policy ${id} was not sent to this worker`);
  return found;
}

function maskText(masking: MaskingPolicy, text: string, field: string): OffloadedText {
  const findings = new MaskingFindings();
  const masked = masking.detection.compiled.length === 0 ? text : masking.maskText(text, field, findings);
  return { text: masked, findings: findings.toArray() };
}

/** As row-masking.ts masks a json/jsonb value: path rules and detectors; text that is not JSON goes to the detectors. */
function maskJson(masking: MaskingPolicy, text: string, field: string): OffloadedText {
  const findings = new MaskingFindings();
  const result = masking.maskJsonText(text, { location: field, findings });
  const masked = result.outcome === 'invalid' ? masking.maskText(text, field, findings) : result.text;
  return { text: masked, findings: findings.toArray() };
}

function classify(task: Extract<OffloadRequest, { kind: 'classify' }>): ClassifyResult {
  const result = classifySqlSync(task.text, { maxLength: task.maxLength, preparedStatements: new Map<string, SqlStatementClassification>(task.prepared) });
  let classification: PortableClassification;
  let recorded: OffloadedText | undefined;
  if (result.ok) {
    // `normalized` is computed here (a scanner pass), not on the event loop.
    classification = { ok: true, kind: result.kind, statements: result.statements, multiStatement: result.multiStatement, flags: result.flags, normalized: result.normalized };
    if (task.mask) recorded = result.flags.includes('password') ? { text: result.normalized, findings: [] } : maskText(policy(task.mask.policy), task.text, task.mask.field);
  } else {
    const { code, message, position } = result.error;
    classification = { ok: false, error: { code, message, ...(position === undefined ? {} : { position }) } };
    if (task.mask) {
      const fallback = normalizeSqlSync(task.text, { maxLength: task.maxLength });
      recorded = { text: fallback.ok ? fallback.normalized : `[unclassifiable statement: ${code}]`, findings: [] };
    }
  }
  return recorded ? { classification, recorded } : { classification };
}

function run(request: OffloadRequest): ClassifyResult | OffloadedText {
  switch (request.kind) {
    case 'classify':
      return classify(request);
    case 'mask-text':
      return maskText(policy(request.policy), request.text, request.field);
    case 'mask-json':
      return maskJson(policy(request.policy), request.text, request.field);
  }
}

if (parentPort && (workerData as { role?: unknown } | null)?.role === OFFLOAD_WORKER_ROLE) {
  const port = parentPort;
  await loadSqlClassifier();
  port.on('message', (message: OffloadRequest | MaskingPolicyMessage) => {
    if (message.kind === 'masking-policy') {
      policies.delete(message.policy);
      policies.set(message.policy, MaskingPolicy.create(message.spec));
      for (const key of policies.keys()) {
        if (policies.size <= POLICIES_KEPT) break;
        policies.delete(key);
      }
      return;
    }
    let reply: OffloadReply;
    try {
      reply = { id: message.id, ok: true, value: run(message) };
    } catch (error) {
      // The error's name and code only: its message could quote a value under masking.
      const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? ` ${error.code}` : '';
      reply = { id: message.id, ok: false, message: `${error instanceof Error ? error.name : 'error'}${code}` };
    }
    port.postMessage(reply);
  });
  const ready: OffloadReply = { ready: true };
  port.postMessage(ready);
}

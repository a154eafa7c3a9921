// The per-event work of verifying a pack: the RFC 6962 leaf hash of each line of events.jsonl and
// the scope check of its envelope. It is most of a large pack's verification time and needs
// nothing but the bytes, so it runs in worker threads, a chunk of lines each (see
// pack-verification.ts). This file is also the worker's entry point: it imports only node:
// built-ins and ../leaf-format (by URL: a worker loads these files directly, dist/*.js or src/*.ts
// with Node's type stripping, without the workspace's module resolution).
import { hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type * as LeafFormatModule from '../leaf-format.js';

const leafFormatModule = new URL(import.meta.url.endsWith('.ts') ? '../leaf-format.ts' : '../leaf-format.js', import.meta.url).href;
const { instantKey, headerLeafOfLine } = (await import(leafFormatModule)) as typeof LeafFormatModule;
export { instantKey };

export interface LineScope {
  readonly from: string;
  readonly to: string;
  readonly identity?: string;
  /** A complete pack holds every leaf of its range: lines outside the window are counted, not refused. */
  readonly outsideAllowed?: boolean;
  /** Hand every line to the main thread (connection and control packs: their scope is checked there). */
  readonly collectLines?: boolean;
  /** The shipped mapping's rules (controls/mapping.json): each in-window line is counted per matching rule. */
  readonly rules?: readonly LineRule[];
  /** Complete packs: report each in-window line's command facts, with these flags making a command privileged. */
  readonly privilegedFlags?: readonly string[];
  /**
   * Which leaf hashes to compute (docs/evidence-pack-format.md §5): 1, the hash of the line (the
   * envelope), the default; 2, of the event's header; `both` when the lines straddle the log's
   * switch from format 1 to 2 (the main thread picks by leaf index).
   */
  readonly leafFormat?: 1 | 2 | 'both';
  /** Complete packs: report each line's time for checkpoint-gap (see `CheckedLines.gapTimes`). */
  readonly gapTimes?: boolean;
}

/** What a command's events say, compactly (complete packs: the verifier recomputes the command findings from them). */
export type CommandFact =
  | { readonly k: 'issued'; readonly key: string; readonly id: string; readonly privileged: boolean; readonly occurredAt: string }
  | { readonly k: 'decided'; readonly key: string; readonly decision: string }
  | { readonly k: 'requested'; readonly approvalId: string; readonly key: string }
  | { readonly k: 'granted'; readonly approvalId: string; readonly final: boolean }
  | { readonly k: 'refused'; readonly key: string };

/** The classification flags anywhere in a value (as the views collect them). */
function collectFlags(value: unknown, out: Set<string>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collectFlags(v, out, depth + 1);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key === 'flags' && Array.isArray(v)) {
      for (const f of v) if (typeof f === 'string') out.add(f);
    } else collectFlags(v, out, depth + 1);
  }
}

function commandFact(event: Record<string, unknown>, privilegedFlags: readonly string[]): CommandFact | undefined {
  const p = (event.payload ?? {}) as Record<string, unknown>;
  const key = typeof p.sessionId === 'string' && typeof p.commandId === 'string' ? `${p.sessionId}/${p.commandId}` : undefined;
  switch (event.type) {
    case 'command.issued': {
      if (!key) return undefined;
      const flags = new Set<string>();
      collectFlags(p.classification, flags);
      return { k: 'issued', key, id: String(event.id), privileged: privilegedFlags.some((f) => flags.has(f)), occurredAt: String(event.occurredAt) };
    }
    case 'policy.decided':
      return key ? { k: 'decided', key, decision: String(p.decision) } : undefined;
    case 'approval.requested':
      return key && typeof p.approvalId === 'string' ? { k: 'requested', approvalId: p.approvalId, key } : undefined;
    case 'approval.granted':
      return typeof p.approvalId === 'string' ? { k: 'granted', approvalId: p.approvalId, final: p.final === true } : undefined;
    case 'command.refused':
      return key ? { k: 'refused', key } : undefined;
    default:
      return undefined;
  }
}

/** A mapping rule as controls/mapping.json ships it: the event type and, optionally, values per dotted path. */
export interface LineRule {
  readonly id: string;
  readonly event: string;
  readonly where?: Readonly<Record<string, readonly unknown[]>>;
}

/** An event that raises a finding by itself (no other event needed), as the views define it. */
export interface LocalFinding {
  readonly kind: 'credential-exposed' | 'session-without-identity' | 'session-without-tls';
  readonly eventId: string;
}

/** Same semantics as ruleMatches in controls/control-catalogue.ts (a worker cannot import it). */
function lineRuleMatches(rule: LineRule, event: Record<string, unknown>): boolean {
  if (rule.event !== event.type) return false;
  for (const [path, values] of Object.entries(rule.where ?? {})) {
    let current: unknown = event;
    for (const key of path.split('.')) current = current !== null && typeof current === 'object' ? (current as Record<string, unknown>)[key] : undefined;
    if (!values.some((v) => v === (current ?? null))) return false;
  }
  return true;
}

/** The rules a data.masked event says fired (payload.maskings[].rule), as the views collect them. */
function maskingRules(event: Record<string, unknown>, out: Set<string>): void {
  const maskings = (event.payload as { maskings?: unknown } | undefined)?.maskings;
  if (!Array.isArray(maskings)) return;
  for (const m of maskings) if (m !== null && typeof m === 'object' && typeof (m as { rule?: unknown }).rule === 'string') out.add((m as { rule: string }).rule);
}

/** The findings an event raises by itself (see EvidenceAccumulator: custody.attested, session.opened). */
function localFindings(event: Record<string, unknown>, out: LocalFinding[]): void {
  const payload = event.payload as Record<string, unknown> | undefined;
  const eventId = String(event.id);
  if (event.type === 'custody.attested' && payload?.exposed === true) out.push({ kind: 'credential-exposed', eventId });
  if (event.type === 'session.opened') {
    if (event.identity === null) out.push({ kind: 'session-without-identity', eventId });
    if ((payload?.client as Record<string, unknown> | undefined)?.tls === false) out.push({ kind: 'session-without-tls', eventId });
  }
}

export type LineFailure =
  | { readonly line: number; readonly kind: 'not-json' }
  | { readonly line: number; readonly kind: 'outside-period'; readonly occurredAt: string }
  | { readonly line: number; readonly kind: 'other-identity' };

/** A custody.attested event line, handed to the main thread whose verifier checks its signature. */
export interface CustodyLine {
  /** 0-based line in the chunk. */
  readonly line: number;
  readonly text: string;
}

export interface CheckedLines {
  /** Lines checked and hashed (all of them, or up to and excluding the failed one). */
  readonly count: number;
  /** count × 32 bytes: the leaf hash of each line, in order, in the scope's leaf format (format 1 for `both`). */
  readonly leafHashes: Uint8Array;
  /** count × 32 bytes: the format-2 (header) leaf hash of each line, for leaf format `both`. */
  readonly headerHashes?: Uint8Array;
  readonly failure?: LineFailure;
  /** The chunk's custody.attested events (a few KiB each, one per session at most). */
  readonly custody?: readonly CustodyLine[];
  /** Lines outside the window, when the scope allows them (complete packs). */
  readonly outside?: number;
  /** Every line checked, when the scope asks for them (`collectLines`). */
  readonly lines?: readonly CustodyLine[];
  /** In-window lines per matching rule id (when the scope has `rules`). */
  readonly ruleCounts?: Readonly<Record<string, number>>;
  /** In-window lines that raise a finding by themselves (when the scope has `rules`). */
  readonly localFindings?: readonly LocalFinding[];
  /** In-window lines (when the scope has `rules`). */
  readonly inWindow?: number;
  /** In-window command facts, in line order (when the scope has `privilegedFlags`). */
  readonly commandFacts?: readonly CommandFact[];
  /** The masking rules that in-window data.masked lines say fired (when the scope has `privilegedFlags`: complete packs). */
  readonly maskingRulesFired?: readonly string[];
  /**
   * count entries (when the scope asks, `gapTimes`): the line's occurredAt in microseconds since the
   * epoch when it counts for checkpoint-gap (in the window, not a checkpoint.signed), else NaN.
   */
  readonly gapTimes?: Float64Array;
}

export const WORKER_ROLE = 'custodian-pack-event-lines';

/** Hashes and scope-checks the newline-separated lines of `bytes` (a final newline is optional). */
export function checkEventLines(bytes: Uint8Array, scope: LineScope): CheckedLines {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let lines = 0;
  for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) lines += 1;
  if (data.length > 0 && data[data.length - 1] !== 0x0a) lines += 1;
  const leafHashes = new Uint8Array(lines * 32);
  const format = scope.leafFormat ?? 1;
  const headerHashes = format === 'both' ? new Uint8Array(lines * 32) : undefined;
  const gapTimes = scope.gapTimes === true ? new Float64Array(lines).fill(Number.NaN) : undefined;
  let count = 0;
  const custody: CustodyLine[] = [];
  let leafInput = Buffer.allocUnsafe(4096);
  let outside = 0;
  const collected: CustodyLine[] = [];
  const window = { from: instantKey(scope.from) ?? '\uffff', to: instantKey(scope.to) ?? '' };
  const ruleCounts: Record<string, number> = {};
  const findings: LocalFinding[] = [];
  let inWindow = 0;
  const facts: CommandFact[] = [];
  const fired = new Set<string>();
  const views = (): Partial<CheckedLines> => ({
    ...(scope.rules ? { ruleCounts, localFindings: findings, inWindow, ...(scope.privilegedFlags ? { commandFacts: facts, maskingRulesFired: [...fired] } : {}) } : {}),
    ...(gapTimes ? { gapTimes: gapTimes.subarray(0, count) } : {}),
  });
  for (let start = 0; start < data.length; ) {
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    const line = data.subarray(start, end);
    start = end + 1;
    const { failure, type, event, value } = checkLine(line, scope, window, count);
    if (failure?.kind === 'outside-period' && scope.outsideAllowed === true) outside += 1;
    else if (failure) return { count, leafHashes: leafHashes.subarray(0, count * 32), ...(headerHashes ? { headerHashes: headerHashes.subarray(0, count * 32) } : {}), failure, ...(custody.length > 0 ? { custody } : {}), ...(outside > 0 ? { outside } : {}), ...(collected.length > 0 ? { lines: collected } : {}), ...views() };
    else if (gapTimes && event && event.type !== 'checkpoint.signed') gapTimes[count] = micros(String(event.occurredAt));
    if (!failure && scope.rules && event) {
      inWindow += 1;
      for (const rule of scope.rules) if (lineRuleMatches(rule, event)) ruleCounts[rule.id] = (ruleCounts[rule.id] ?? 0) + 1;
      localFindings(event, findings);
      if (scope.privilegedFlags) {
        const fact = commandFact(event, scope.privilegedFlags);
        if (fact) facts.push(fact);
        if (event.type === 'data.masked') maskingRules(event, fired);
      }
    }
    if (type === 'custody.attested') custody.push({ line: count, text: line.toString('utf8') });
    if (scope.collectLines === true) collected.push({ line: count, text: line.toString('utf8') });
    // RFC 6962 leaf hash: SHA-256(0x00 ‖ leaf), into a reused input buffer. The leaf is the line
    // (format 1) or the JCS of the event's header (format 2).
    const leafHash = (leaf: Buffer): Buffer => {
      if (leafInput.length < leaf.length + 1) leafInput = Buffer.allocUnsafe(2 * (leaf.length + 1));
      leafInput[0] = 0x00;
      leaf.copy(leafInput, 1);
      return hash('sha256', leafInput.subarray(0, leaf.length + 1), 'buffer');
    };
    const header = format !== 1 ? headerLeaf(line, value) : undefined;
    leafHashes.set(format === 2 ? leafHash(header!) : leafHash(line), count * 32);
    headerHashes?.set(leafHash(header!), count * 32);
    count += 1;
  }
  return { count, leafHashes, ...(headerHashes ? { headerHashes } : {}), ...(custody.length > 0 ? { custody } : {}), ...(outside > 0 ? { outside } : {}), ...(collected.length > 0 ? { lines: collected } : {}), ...views() };
}

/** Microseconds since the epoch (as checkpoint-gaps.ts instantMicros; a worker cannot import it). */
function micros(value: string): number {
  const key = instantKey(value);
  return key === undefined ? Number.NaN : (Date.parse(`${key.slice(0, 19)}Z`) / 1000) * 1_000_000 + Number(key.slice(20, 26));
}

/** The format-2 leaf of a parsed line (a line that is no event gets a leaf no header has: it cannot match). */
function headerLeaf(line: Buffer, value: Record<string, unknown> | undefined): Buffer {
  if (!value) return Buffer.from('custodian: not an event', 'utf8');
  try {
    return headerLeafOfLine(line.toString('utf8'), value);
  } catch {
    return Buffer.from('custodian: not an event', 'utf8');
  }
}

function checkLine(line: Buffer, scope: LineScope, window: { from: string; to: string }, index: number): { failure?: LineFailure; type?: unknown; event?: Record<string, unknown>; value?: Record<string, unknown> } {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return { failure: { line: index, kind: 'not-json' } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { failure: { line: index, kind: 'not-json' } };
  const envelope = value as { type?: unknown; occurredAt?: unknown; identity?: { subject?: unknown } | null; payload?: { claimedSubject?: unknown } };
  // Instants, not text: a `to` without a fraction, or with an offset, must not admit other times.
  const at = typeof envelope.occurredAt === 'string' ? instantKey(envelope.occurredAt) : undefined;
  if (at === undefined || at < window.from || at >= window.to) return { failure: { line: index, kind: 'outside-period', occurredAt: String(envelope.occurredAt) }, value: value as Record<string, unknown> };
  // A refused attempt (authentication.failed, no verified identity) belongs to the subject it claimed.
  const subject = envelope.identity?.subject ?? (envelope.type === 'authentication.failed' ? envelope.payload?.claimedSubject : undefined);
  if (scope.identity !== undefined && subject !== scope.identity) return { failure: { line: index, kind: 'other-identity' }, value: value as Record<string, unknown> };
  return { type: envelope.type, event: value as Record<string, unknown>, value: value as Record<string, unknown> };
}

interface LinesRequest {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly scope: LineScope;
}

// As a worker: answer each chunk with its leaf hashes (transferred, not copied).
if (parentPort && (workerData as { role?: unknown } | null)?.role === WORKER_ROLE) {
  const port = parentPort;
  port.on('message', (request: LinesRequest) => {
    const result = checkEventLines(request.bytes, request.scope);
    const leafHashes = result.leafHashes.slice();
    const headerHashes = result.headerHashes?.slice();
    const gapTimes = result.gapTimes?.slice();
    port.postMessage({ id: request.id, ...result, leafHashes, ...(headerHashes ? { headerHashes } : {}), ...(gapTimes ? { gapTimes } : {}) }, [leafHashes.buffer, ...(headerHashes ? [headerHashes.buffer] : []), ...(gapTimes ? [gapTimes.buffer] : [])]);
  });
}

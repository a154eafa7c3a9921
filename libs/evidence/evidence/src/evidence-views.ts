// Evidence views: for each control, what it asks, which events evidence it, how many over a
// period, sample sessions, and findings — computed in one pass over the period's events.
import type { CustodianEvent } from '@custodian/event-contracts';
import { findControl, ruleMatches, type Control, type ControlCatalogue } from './controls/control-catalogue.js';
import { CHECKPOINT_GAP, CheckpointGapScan, countsForCheckpointGap, instantMicros, maxDelayMicros } from './checkpoint-gaps.js';
import { deterministicUuid } from './deterministic-uuid.js';
import { EvidenceError } from './errors.js';
import { eventAttributes } from './event-attributes.js';

/** What an evidence view or pack covers: [from, to) by occurredAt, optionally one identity, connection or control. */
export interface EvidenceScope {
  readonly from: string;
  readonly to: string;
  readonly identity?: string;
  readonly connection?: string;
  readonly control?: string;
}

export interface EvidenceEvent {
  readonly event: CustodianEvent;
  readonly leafIndex: number;
}

export interface CheckpointTiming {
  readonly treeSize: number;
  /** When it was signed (RFC 3339). */
  readonly signedAt: string;
}

export interface Finding {
  /** Deterministic UUID (same finding, same id). */
  readonly id: string;
  readonly kind: string;
  readonly title: string;
  readonly severity: 'low' | 'moderate' | 'high';
  readonly controls: readonly string[];
  readonly description: string;
  readonly occurredAt: string;
  readonly subject: string | null;
  readonly connection: string | null;
  readonly sessionId: string | null;
  /** Events that show it (may be empty, e.g. a masking rule that never fired). */
  readonly eventIds: readonly string[];
  readonly leafIndices: readonly number[];
}

export interface ControlEvidence {
  readonly id: string;
  readonly oscalId: string;
  readonly catalogue: string;
  readonly title: string;
  readonly asks: string;
  /** `not-assessed`: a filtered scope (identity, connection, control) holds no evidence and no finding for it. */
  readonly status: 'satisfied' | 'not-satisfied' | 'not-assessed';
  readonly statusReason: string;
  /** Events in scope that evidence the control. */
  readonly count: number;
  readonly byRule: readonly { readonly rule: string; readonly event: string; readonly description: string; readonly count: number }[];
  /** Up to N sessions (earliest first) with evidencing events. */
  readonly sampleSessions: readonly string[];
  readonly findings: readonly string[];
}

export interface EvidenceReport {
  readonly scope: EvidenceScope;
  readonly totals: { readonly events: number; readonly sessions: number; readonly findings: number };
  readonly controls: readonly ControlEvidence[];
  readonly findings: readonly Finding[];
}

export interface EvidenceViewOptions {
  readonly catalogue: ControlCatalogue;
  readonly scope: EvidenceScope;
  /** The log's checkpoints (all of them), for the checkpoint-gap finding. */
  readonly checkpoints?: readonly CheckpointTiming[];
  /** A checkpoint later than this after an event is a gap. Default 300 s. */
  readonly maxCheckpointDelaySeconds?: number;
  /** Masking rules in force: each that never fired in the period is a finding. */
  readonly maskingRules?: readonly string[];
  /** Log origin (informative: no checkpoint.signed event needs a checkpoint within the delay, whatever its origin). */
  readonly origin?: string;
  /** "Now" for events not yet covered by any checkpoint (default: the scope's end). */
  readonly now?: string;
  readonly samplesPerControl?: number;
  /** A command recorded this long before the period's end without a decision is a finding. Default 60 s. */
  readonly decisionGraceSeconds?: number;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

/** Normalizes a scope time to the envelope format (UTC, microseconds) so it compares as text. */
export function normalizeScopeTime(name: string, value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !RFC3339.test(value.replace(/[+-]00:00$/, 'Z'))) throw new EvidenceError('EVIDENCE_SCOPE_INVALID', `${name} must be an RFC 3339 UTC time, e.g. 2026-03-01T00:00:00Z`);
  const fraction = /\.(\d{1,6})Z$/.exec(value.replace(/[+-]00:00$/, 'Z'))?.[1] ?? '';
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}.${fraction.padEnd(6, '0')}Z`;
}

export function checkScope(scope: EvidenceScope, catalogue: ControlCatalogue): EvidenceScope {
  const from = normalizeScopeTime('from', scope.from);
  const to = normalizeScopeTime('to', scope.to);
  if (from >= to) throw new EvidenceError('EVIDENCE_SCOPE_INVALID', 'from must be before to');
  let control: string | undefined;
  if (scope.control !== undefined) {
    const found = findControl(catalogue, scope.control);
    if (!found) throw new EvidenceError('EVIDENCE_SCOPE_INVALID', `unknown control ${JSON.stringify(scope.control)}; known: ${catalogue.controls.map((c) => c.id).join(', ')}`);
    control = found.id;
  }
  return { from, to, ...(scope.identity !== undefined ? { identity: scope.identity } : {}), ...(scope.connection !== undefined ? { connection: scope.connection } : {}), ...(control ? { control } : {}) };
}

interface CommandState {
  readonly issued?: EvidenceEvent;
  privileged: boolean;
  executed?: EvidenceEvent;
  decided: boolean;
  approved: boolean;
  refused: boolean;
  /** The command's events, as references: a period's commands are many, their events large. */
  readonly events: EventRef[];
}

/** What a finding keeps of an event. */
interface EventRef {
  readonly id: string;
  readonly leafIndex: number;
}

const refOf = (item: EvidenceEvent): EventRef => ({ id: item.event.id, leafIndex: item.leafIndex });

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


/**
 * Accumulates a period's events (all of them, in leaf order: findings join events across
 * identities, e.g. an approval by someone else) and reports evidence for the scope.
 */
export class EvidenceAccumulator {
  readonly scope: EvidenceScope;
  readonly #o: EvidenceViewOptions;
  readonly #controls: readonly Control[];
  readonly #counts = new Map<string, Map<string, number>>();
  readonly #samples = new Map<string, string[]>();
  readonly #sessionConnection = new Map<string, string>();
  readonly #approvalConnection = new Map<string, string>();
  readonly #commands = new Map<string, CommandState>();
  readonly #approvals = new Map<string, string>();
  readonly #firedRules = new Set<string>();
  readonly #findings: Finding[] = [];
  readonly #sessions = new Set<string>();
  readonly #allTimes: { leafIndex: number; occurredAt: string; micros: number }[] = [];
  #events = 0;

  constructor(options: EvidenceViewOptions) {
    this.#o = options;
    this.scope = checkScope(options.scope, options.catalogue);
    this.#controls = this.scope.control ? options.catalogue.controls.filter((c) => c.id === this.scope.control) : options.catalogue.controls;
  }

  /** Adds the next event (in leaf order); true when it is in scope, i.e. one a pack exports. */
  add(item: EvidenceEvent): boolean {
    const { event } = item;
    if (event.occurredAt < this.scope.from || event.occurredAt >= this.scope.to) return false;
    const attributes = eventAttributes(event);
    if (event.type === 'session.opened' && attributes.connection) this.#sessionConnection.set(event.payload.sessionId, attributes.connection);
    // Decisions on an approval name only its id: they belong to the connection its request named.
    if (event.type === 'approval.requested') this.#approvalConnection.set(event.payload.approvalId, event.payload.connection.name);
    // A checkpoint.signed event does not wait for a checkpoint (it would call for the next one, forever).
    if (countsForCheckpointGap(event.type)) this.#allTimes.push({ leafIndex: item.leafIndex, occurredAt: event.occurredAt, micros: instantMicros(event.occurredAt) ?? Number.NaN });
    this.#track(item);
    if (!this.#matchesScope(event)) return false;
    const rules = this.#o.catalogue.rules.filter((r) => ruleMatches(r, event));
    if (this.scope.control && !rules.some((r) => r.controls.includes(this.scope.control!))) return false;
    this.#events += 1;
    if (attributes.sessionId) this.#sessions.add(attributes.sessionId);
    for (const rule of rules) {
      for (const control of rule.controls) {
        const byRule = this.#counts.get(control) ?? new Map<string, number>();
        byRule.set(rule.id, (byRule.get(rule.id) ?? 0) + 1);
        this.#counts.set(control, byRule);
        const samples = this.#samples.get(control) ?? [];
        if (attributes.sessionId && samples.length < (this.#o.samplesPerControl ?? 5) && !samples.includes(attributes.sessionId)) samples.push(attributes.sessionId);
        this.#samples.set(control, samples);
      }
    }
    return true;
  }

  /** Whether an event (not added) is one this scope would select: in the window, the identity, connection and control. */
  selects(event: CustodianEvent): boolean {
    if (event.occurredAt < this.scope.from || event.occurredAt >= this.scope.to) return false;
    if (event.type === 'session.opened' && event.payload.connection) this.#sessionConnection.set(event.payload.sessionId, event.payload.connection.name);
    if (event.type === 'approval.requested') this.#approvalConnection.set(event.payload.approvalId, event.payload.connection.name);
    if (!this.#matchesScope(event)) return false;
    return !this.scope.control || this.#o.catalogue.rules.some((r) => r.controls.includes(this.scope.control!) && ruleMatches(r, event));
  }

  #connectionOf(event: CustodianEvent): string | null {
    const a = eventAttributes(event);
    const approvalId = (event.payload as { approvalId?: unknown }).approvalId;
    return a.connection ?? (a.sessionId ? (this.#sessionConnection.get(a.sessionId) ?? null) : typeof approvalId === 'string' ? (this.#approvalConnection.get(approvalId) ?? null) : null);
  }

  #matchesScope(event: CustodianEvent): boolean {
    // A refused attempt has no verified identity: it is selected by the subject it claimed.
    const subject = event.identity?.subject ?? (event.type === 'authentication.failed' ? event.payload.claimedSubject : undefined);
    if (this.scope.identity !== undefined && subject !== this.scope.identity) return false;
    if (this.scope.connection !== undefined && this.#connectionOf(event) !== this.scope.connection) return false;
    return true;
  }

  #command(sessionId: string, commandId: string): CommandState {
    const key = `${sessionId}/${commandId}`;
    let state = this.#commands.get(key);
    if (!state) {
      state = { privileged: false, decided: false, approved: false, refused: false, events: [] };
      this.#commands.set(key, state);
    }
    return state;
  }

  #track(item: EvidenceEvent): void {
    const { event } = item;
    switch (event.type) {
      case 'command.issued': {
        const flags = new Set<string>();
        collectFlags(event.payload.classification, flags);
        const existing = this.#command(event.payload.sessionId, event.payload.commandId);
        const state: CommandState = { ...existing, issued: item, privileged: existing.privileged || this.#o.catalogue.privilegedFlags.some((f) => flags.has(f)), events: [...existing.events, refOf(item)] };
        this.#commands.set(`${event.payload.sessionId}/${event.payload.commandId}`, state);
        break;
      }
      case 'policy.decided': {
        const state = this.#command(event.payload.sessionId, event.payload.commandId);
        state.decided = true;
        state.events.push(refOf(item));
        if (event.payload.decision === 'require-approval') state.privileged = true;
        if (event.payload.decision === 'allow' || event.payload.decision === 'mask') state.executed ??= item;
        break;
      }
      case 'approval.requested':
        this.#approvals.set(event.payload.approvalId, `${event.payload.sessionId}/${event.payload.commandId}`);
        this.#commands.get(`${event.payload.sessionId}/${event.payload.commandId}`)?.events.push(refOf(item));
        break;
      case 'approval.granted': {
        const key = this.#approvals.get(event.payload.approvalId);
        const state = key ? this.#commands.get(key) : undefined;
        if (state && event.payload.final) state.approved = true;
        state?.events.push(refOf(item));
        break;
      }
      case 'command.refused':
        if (event.payload.sessionId && event.payload.commandId) this.#command(event.payload.sessionId, event.payload.commandId).refused = true;
        break;
      case 'data.masked':
        for (const m of event.payload.maskings) this.#firedRules.add(m.rule);
        break;
      case 'custody.attested':
        // A leak the gateway stated about itself: raised, never hidden. (The offline verifier checks the statement's signature.)
        if (event.payload.exposed) {
          const { detections } = event.payload;
          this.#finding(
            'credential-exposed',
            item,
            `session ${event.payload.sessionId}: the injected credential ${event.payload.credentialRef} was found ${detections.total} time(s) (${detections.clientBytes} in client-bound bytes, ${detections.events} in events; encodings: ${detections.encodings.join(', ') || 'unknown'})`,
            [refOf(item)],
          );
        }
        break;
      case 'session.opened':
        if (event.identity === null) this.#finding('session-without-identity', item, `session ${event.payload.sessionId} on ${event.payload.connection.name} was opened without a verified identity`, [refOf(item)]);
        if (event.payload.client.tls === false) this.#finding('session-without-tls', item, `session ${event.payload.sessionId} on ${event.payload.connection.name} used an unencrypted client connection`, [refOf(item)]);
        break;
      default:
        break;
    }
  }

  #finding(kind: string, at: EvidenceEvent | undefined, description: string, events: readonly EventRef[], extra: string[] = []): void {
    const definition = this.#o.catalogue.findings[kind];
    if (!definition) return;
    const event = at?.event;
    if (event && !this.#matchesScope(event)) return;
    if (this.scope.control && !definition.controls.includes(this.scope.control)) return;
    const attributes = event ? eventAttributes(event) : { subject: null, connection: null, sessionId: null };
    this.#findings.push({
      id: deterministicUuid('finding', kind, ...events.map((e) => e.id), ...extra),
      kind,
      title: definition.title,
      severity: definition.severity,
      controls: definition.controls,
      description,
      occurredAt: event?.occurredAt ?? this.scope.to,
      subject: attributes.subject,
      connection: event ? this.#connectionOf(event) : null,
      sessionId: attributes.sessionId,
      eventIds: events.map((e) => e.id),
      leafIndices: events.map((e) => e.leafIndex),
    });
  }

  /** The report for everything added. */
  finish(): EvidenceReport {
    const graceEnd = new Date(Date.parse(this.scope.to) - (this.#o.decisionGraceSeconds ?? 60) * 1000).toISOString();
    for (const state of this.#commands.values()) {
      if (!state.issued) continue;
      const { event } = state.issued;
      if (event.type !== 'command.issued') continue;
      if (state.privileged && state.executed && !state.approved) {
        this.#finding('privileged-command-without-approval', state.issued, `privileged command ${event.payload.commandId} (${event.payload.kind}: ${event.payload.text.slice(0, 80)}) in session ${event.payload.sessionId} was executed without an approval`, state.events);
      }
      if (!state.decided && !state.refused && event.occurredAt < graceEnd) {
        this.#finding('command-without-decision', state.issued, `command ${event.payload.commandId} in session ${event.payload.sessionId} has no policy decision`, state.events);
      }
    }
    for (const rule of this.#o.maskingRules ?? []) {
      if (!this.#firedRules.has(rule)) this.#finding('masking-rule-never-fired', undefined, `masking rule ${rule} did not mask anything between ${this.scope.from} and ${this.scope.to}`, [], [rule, this.scope.from, this.scope.to]);
    }
    this.#checkpointGaps();
    const findingsByControl = new Map<string, string[]>();
    for (const f of this.#findings) for (const c of f.controls) findingsByControl.set(c, [...(findingsByControl.get(c) ?? []), f.id]);
    const filtered = this.scope.identity !== undefined || this.scope.connection !== undefined || this.scope.control !== undefined;
    const controls = this.#controls.map((control): ControlEvidence => {
      const byRule = [...(this.#counts.get(control.id) ?? new Map<string, number>()).entries()].map(([ruleId, count]) => {
        const rule = this.#o.catalogue.rules.find((r) => r.id === ruleId)!;
        return { rule: rule.id, event: rule.event, description: rule.description, count };
      });
      const count = byRule.reduce((n, r) => n + r.count, 0);
      const findings = findingsByControl.get(control.id) ?? [];
      // A filtered scope sees only part of the period: no evidence there says nothing about the control.
      const status = findings.length > 0 ? 'not-satisfied' : count > 0 ? 'satisfied' : filtered ? 'not-assessed' : 'not-satisfied';
      const statusReason =
        findings.length > 0 ? `${findings.length} finding(s) in the period` : count > 0 ? `${count} evidencing event(s), no finding` : filtered ? 'not assessed: no evidencing event in this filtered scope' : 'no evidencing event in the period';
      return { id: control.id, oscalId: control.oscalId, catalogue: control.catalogue, title: control.title, asks: control.asks, status, statusReason, count, byRule, sampleSessions: this.#samples.get(control.id) ?? [], findings };
    });
    return { scope: this.scope, totals: { events: this.#events, sessions: this.#sessions.size, findings: this.#findings.length }, controls, findings: this.#findings };
  }

  /**
   * Each checkpoint must be signed within the allowed delay after the earliest event it newly covers
   * (docs/evidence-pack-format.md §6; the pack verifier recomputes this from the signed times).
   */
  #checkpointGaps(): void {
    const limit = maxDelayMicros(this.#o.maxCheckpointDelaySeconds ?? 300);
    const scan = new CheckpointGapScan((this.#o.checkpoints ?? []).map((c) => ({ treeSize: c.treeSize, signedAt: c.signedAt })));
    for (const t of [...this.#allTimes].sort((a, b) => a.leafIndex - b.leafIndex)) scan.add(t.leafIndex, t.occurredAt, t.micros);
    const { candidates, uncovered } = scan.finish();
    const report = (leafIndex: number, occurredAt: string, delay: number, upTo: number, what: string): void => {
      if (delay <= limit) return;
      this.#findingWithoutEvents(CHECKPOINT_GAP, occurredAt, `leaves ${leafIndex}..${upTo - 1}: the event at leaf ${leafIndex} (${occurredAt}) ${what} ${Math.round(delay / 1_000_000)} s later (allowed: ${limit / 1_000_000} s)`, [String(leafIndex), String(upTo)]);
    };
    for (const c of candidates) if (c.delayMicros !== undefined) report(c.leafIndex, c.occurredAt, c.delayMicros, c.upTo, 'was first covered by a checkpoint signed');
    const now = instantMicros(this.#o.now ?? this.scope.to);
    if (uncovered && now !== undefined) report(uncovered.leafIndex, uncovered.occurredAt, now - uncovered.micros, uncovered.lastIndex + 1, 'was still not covered by any checkpoint');
  }

  #findingWithoutEvents(kind: string, occurredAt: string, description: string, extra: string[]): void {
    const definition = this.#o.catalogue.findings[kind];
    if (!definition) return;
    if (this.scope.control && !definition.controls.includes(this.scope.control)) return;
    this.#findings.push({ id: deterministicUuid('finding', kind, ...extra), kind, title: definition.title, severity: definition.severity, controls: definition.controls, description, occurredAt, subject: null, connection: null, sessionId: null, eventIds: [], leafIndices: [] });
  }
}

/** Evidence for a scope from a period's events (in leaf order). */
export function computeEvidence(events: Iterable<EvidenceEvent>, options: EvidenceViewOptions): EvidenceReport {
  const accumulator = new EvidenceAccumulator(options);
  for (const e of events) accumulator.add(e);
  return accumulator.finish();
}

// The approvals read model: pending approvals (the approver queue), their outcomes, and active
// window grants (what gateways consult before holding a command). A projection of the approval
// streams in one SQLite database, with its checkpoint in the same database, so the position and
// the rows it covers are saved together. Applying an event twice is a no-op (at-least-once delivery).
import { join } from 'node:path';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { parseRfc3339Micros, type ConnectionRef, type EventSource, type GrantScope, type Identity } from '@custodian/event-contracts';
import { formatPosition, parsePosition, type CheckpointStore, type GlobalPosition, type RecordedEvent } from '@custodian/event-store';
import type { ActiveGrant, ApprovalPolicyRef } from '@custodian/session-pipeline';
import { isApprovalEvent, type ApprovalLanguage, type ApprovalStatus } from './approval.js';

/** One approval as the read model holds it (the aggregate in its stream stays the authority for decisions). */
export interface ApprovalSummary {
  readonly approvalId: string;
  readonly status: ApprovalStatus;
  readonly sessionId: string;
  readonly commandId: string;
  /** The full command as approvers see it (literal values; masked where a detector or column rule said so). */
  readonly command: string;
  readonly language: ApprovalLanguage;
  /** Bound values, masked likewise. */
  readonly parameters?: readonly (string | null)[];
  /** The policy version whose rule held the command (absent on requests recorded before v2). */
  readonly policy?: ApprovalPolicyRef;
  /** What the approval is bound to (`approvalBindingDigest`); absent on requests recorded before v2. */
  readonly commandDigest?: string;
  readonly connection: ConnectionRef;
  readonly ruleId: string;
  readonly requester: Identity;
  readonly requestedAt: string;
  readonly requestedBy: EventSource;
  readonly expiresAt: string;
  readonly approverGroups: readonly string[];
  readonly required: number;
  /** Approvals so far. */
  readonly approvals: number;
  readonly grantScope: GrantScope;
  /** When it was granted, denied, expired or cancelled. */
  readonly resolvedAt?: string;
  /** Revision of the last event applied. */
  readonly revision: number;
}

export interface ListApprovalsOptions {
  /** Default `pending` (which leaves out approvals past their deadline). */
  readonly status?: ApprovalStatus | 'all';
  /** Newest first; default 100, at most 1000. */
  readonly limit?: number;
  readonly nowMs?: number;
}

interface ApprovalRow {
  approval_id: string;
  status: ApprovalStatus;
  session_id: string;
  command_id: string;
  command: string;
  language: ApprovalLanguage;
  parameters: string | null;
  policy: string | null;
  command_digest: string | null;
  connection_name: string;
  protocol: ConnectionRef['protocol'];
  rule_id: string;
  requester: string;
  requested_at: string;
  requested_by: string;
  expires_at: string;
  approver_groups: string;
  required: number;
  approvals: number;
  grant_scope: string;
  resolved_at: string | null;
  revision: number;
}

interface GrantRow {
  grant_id: string;
  approval_id: string;
  subject: string;
  issuer: string;
  connection_name: string;
  protocol: ConnectionRef['protocol'];
  rule_id: string;
  policy_name: string;
  policy_version: number;
  policy_digest: string;
  expires_at: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approvals (
  approval_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  session_id TEXT NOT NULL,
  command_id TEXT NOT NULL,
  command TEXT NOT NULL,
  language TEXT NOT NULL,
  parameters TEXT,
  policy TEXT,
  command_digest TEXT,
  connection_name TEXT NOT NULL,
  protocol TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  requester TEXT NOT NULL,
  requester_subject TEXT NOT NULL,
  requester_issuer TEXT NOT NULL,
  requested_at TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_by_service TEXT NOT NULL,
  requested_by_instance TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  approver_groups TEXT NOT NULL,
  required INTEGER NOT NULL,
  approvals INTEGER NOT NULL,
  grant_scope TEXT NOT NULL,
  resolved_at TEXT,
  revision INTEGER NOT NULL,
  position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (status, position);
CREATE INDEX IF NOT EXISTS approvals_by_instance ON approvals (requested_by_service, requested_by_instance, status);
CREATE TABLE IF NOT EXISTS grants (
  grant_id TEXT PRIMARY KEY,
  approval_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  connection_name TEXT NOT NULL,
  protocol TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  policy_name TEXT NOT NULL,
  policy_version INTEGER NOT NULL,
  policy_digest TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS grants_lookup ON grants (subject, issuer, connection_name, rule_id, policy_name, policy_version, expires_at_ms);
CREATE TABLE IF NOT EXISTS checkpoints (
  subscription_id TEXT PRIMARY KEY,
  position TEXT NOT NULL
);
`;

/**
 * Version of the tables above. A read model file of another version is dropped and rebuilt from
 * the start of the log (it is a projection: the event store is the source of truth).
 */
const READ_MODEL_VERSION = 2;

function microsToMs(timestamp: string): number {
  return Number(parseRfc3339Micros(timestamp) / 1000n);
}

export class ApprovalReadModel implements CheckpointStore {
  private readonly db: Database;
  private closed = false;

  /** `path` is a file (created when missing), or `:memory:` for a model rebuilt from the start of the log at every start. */
  constructor(readonly path: string) {
    this.db = new BetterSqlite3(path);
    if (path !== ':memory:') {
      this.db.pragma('journal_mode = WAL');
      // NORMAL: no fsync per commit. This runs on the event loop of the process that serves the
      // gateway's sockets, and the model is derived from the event log: after a power loss it
      // loses at most a suffix of commits (rows and checkpoint alike, WAL keeps commit order) and
      // re-applies those events from the log, idempotently.
      this.db.pragma('synchronous = NORMAL');
    }
    if (this.db.pragma('user_version', { simple: true }) !== READ_MODEL_VERSION) {
      this.db.transaction(() => {
        this.db.exec('DROP TABLE IF EXISTS approvals; DROP TABLE IF EXISTS grants; DROP TABLE IF EXISTS checkpoints;');
        this.db.exec(SCHEMA);
        this.db.pragma(`user_version = ${READ_MODEL_VERSION}`);
      })();
    }
  }

  /** The connection's durability settings (tests, health checks). */
  settings(): { readonly journalMode: string; readonly synchronous: string } {
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(this.db.pragma('synchronous', { simple: true }))] ?? 'OFF',
    };
  }

  // CheckpointStore: the projection's position lives next to the rows it produced.
  async load(subscriptionId: string): Promise<GlobalPosition | undefined> {
    const row = this.db.prepare<[string], { position: string }>('SELECT position FROM checkpoints WHERE subscription_id = ?').get(subscriptionId);
    return row ? parsePosition(row.position) : undefined;
  }

  async save(subscriptionId: string, position: GlobalPosition): Promise<void> {
    if (this.closed) return;
    this.db
      .prepare('INSERT INTO checkpoints (subscription_id, position) VALUES (?, ?) ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position')
      .run(subscriptionId, formatPosition(position));
  }

  /** Applies one stored event; anything but an approval event is ignored. Idempotent. */
  apply(recorded: RecordedEvent): void {
    const event = recorded.event;
    if (this.closed || !isApprovalEvent(event)) return;
    const id = event.payload.approvalId;
    const revision = recorded.revision;
    switch (event.type) {
      case 'approval.requested': {
        const p = event.payload;
        const requester = event.identity;
        if (requester === null) return;
        this.db
          .prepare(
            `INSERT OR IGNORE INTO approvals (approval_id, status, session_id, command_id, command, language, parameters, policy, command_digest, connection_name, protocol, rule_id, requester,
               requester_subject, requester_issuer, requested_at, requested_by, requested_by_service, requested_by_instance, expires_at, expires_at_ms,
               approver_groups, required, approvals, grant_scope, resolved_at, revision, position)
             VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, ?, ?)`,
          )
          .run(
            id,
            p.sessionId,
            p.commandId,
            p.command,
            p.language,
            p.parameters === undefined ? null : JSON.stringify(p.parameters),
            p.policy === undefined ? null : JSON.stringify(p.policy),
            p.commandDigest ?? null,
            p.connection.name,
            p.connection.protocol,
            p.ruleId,
            JSON.stringify(requester),
            requester.subject,
            requester.issuer,
            event.occurredAt,
            JSON.stringify(event.source),
            event.source.service,
            event.source.instance,
            p.expiresAt,
            microsToMs(p.expiresAt),
            JSON.stringify(p.approverGroups),
            p.required,
            JSON.stringify(p.grantScope),
            revision,
            recorded.position.commit,
          );
        return;
      }
      case 'approval.granted': {
        const p = event.payload;
        const apply = this.db.transaction(() => {
          const changed = this.db
            .prepare(`UPDATE approvals SET approvals = ?, status = CASE WHEN ? THEN 'granted' ELSE status END, resolved_at = CASE WHEN ? THEN ? ELSE resolved_at END, revision = ? WHERE approval_id = ? AND revision < ?`)
            .run(p.approvals, p.final ? 1 : 0, p.final ? 1 : 0, event.occurredAt, revision, id, revision).changes;
          const grant = p.grant;
          // A window grant covers what it names; one that names nothing (recorded before grants
          // named their coverage) covers nothing.
          const covers = grant?.covers;
          if (changed === 0 || !p.final || grant?.scope.kind !== 'window' || grant.expiresAt === undefined || covers === undefined) return;
          this.db
            .prepare(
              `INSERT OR IGNORE INTO grants (grant_id, approval_id, subject, issuer, connection_name, protocol, rule_id, policy_name, policy_version, policy_digest, expires_at, expires_at_ms)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              grant.grantId,
              id,
              covers.identity.subject,
              covers.identity.issuer,
              covers.connection.name,
              covers.connection.protocol,
              covers.ruleId,
              covers.policy.name,
              covers.policy.version,
              covers.policy.digest,
              grant.expiresAt,
              microsToMs(grant.expiresAt),
            );
        });
        apply();
        return;
      }
      case 'approval.denied':
      case 'approval.expired':
      case 'approval.cancelled': {
        const status: ApprovalStatus = event.type === 'approval.denied' ? 'denied' : event.type === 'approval.expired' ? 'expired' : 'cancelled';
        this.db.prepare(`UPDATE approvals SET status = ?, resolved_at = ?, revision = ? WHERE approval_id = ? AND revision < ?`).run(status, event.occurredAt, revision, id, revision);
        return;
      }
    }
  }

  get(approvalId: string): ApprovalSummary | undefined {
    const row = this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE approval_id = ?').get(approvalId);
    return row ? toSummary(row) : undefined;
  }

  list(options: ListApprovalsOptions = {}): ApprovalSummary[] {
    const status = options.status ?? 'pending';
    const limit = Math.max(1, Math.min(options.limit ?? 100, 1000));
    const now = options.nowMs ?? Date.now();
    const rows =
      status === 'all'
        ? this.db.prepare<[number], ApprovalRow>('SELECT * FROM approvals ORDER BY position DESC LIMIT ?').all(limit)
        : status === 'pending'
          ? this.db.prepare<[number, number], ApprovalRow>(`SELECT * FROM approvals WHERE status = 'pending' AND expires_at_ms > ? ORDER BY position DESC LIMIT ?`).all(now, limit)
          : this.db.prepare<[string, number], ApprovalRow>('SELECT * FROM approvals WHERE status = ? ORDER BY position DESC LIMIT ?').all(status, limit);
    return rows.map(toSummary);
  }

  /** Pending approvals requested by one gateway instance (cancelled when that instance restarts). */
  pendingRequestedBy(source: EventSource): string[] {
    return this.db
      .prepare<[string, string], { approval_id: string }>(`SELECT approval_id FROM approvals WHERE requested_by_service = ? AND requested_by_instance = ? AND status = 'pending'`)
      .all(source.service, source.instance)
      .map((row) => row.approval_id);
  }

  /** Pending approvals whose deadline passed more than `graceMs` ago (nobody recorded their expiry). */
  overduePending(nowMs: number, graceMs: number): string[] {
    return this.db
      .prepare<[number], { approval_id: string }>(`SELECT approval_id FROM approvals WHERE status = 'pending' AND expires_at_ms <= ? ORDER BY expires_at_ms LIMIT 100`)
      .all(nowMs - graceMs)
      .map((row) => row.approval_id);
  }

  /**
   * The window grant covering this identity on this connection under this rule and this policy
   * version (name, version and digest) now, if any (the one lasting longest).
   */
  activeGrant(identity: Pick<Identity, 'subject' | 'issuer'>, connection: string, ruleId: string, policy: ApprovalPolicyRef, nowMs: number = Date.now()): ActiveGrant | null {
    const row = this.db
      .prepare<[string, string, string, string, string, number, string, number], GrantRow>(
        `SELECT * FROM grants WHERE subject = ? AND issuer = ? AND connection_name = ? AND rule_id = ? AND policy_name = ? AND policy_version = ? AND policy_digest = ? AND expires_at_ms > ?
         ORDER BY expires_at_ms DESC LIMIT 1`,
      )
      .get(identity.subject, identity.issuer, connection, ruleId, policy.name, policy.version, policy.digest, nowMs);
    if (!row) return null;
    return {
      grantId: row.grant_id,
      approvalId: row.approval_id,
      expiresAt: row.expires_at,
      covers: {
        identity: { issuer: row.issuer, subject: row.subject },
        connection: { name: row.connection_name, protocol: row.protocol },
        ruleId: row.rule_id,
        policy: { name: row.policy_name, version: row.policy_version, digest: row.policy_digest },
      },
    };
  }

  /** Drops grants that ended before `nowMs` (they never match again). */
  pruneGrants(nowMs: number = Date.now()): number {
    return this.db.prepare('DELETE FROM grants WHERE expires_at_ms <= ?').run(nowMs).changes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function toSummary(row: ApprovalRow): ApprovalSummary {
  return {
    approvalId: row.approval_id,
    status: row.status,
    sessionId: row.session_id,
    commandId: row.command_id,
    command: row.command,
    language: row.language,
    ...(row.parameters === null ? {} : { parameters: JSON.parse(row.parameters) as (string | null)[] }),
    ...(row.policy === null ? {} : { policy: JSON.parse(row.policy) as ApprovalPolicyRef }),
    ...(row.command_digest === null ? {} : { commandDigest: row.command_digest }),
    connection: { name: row.connection_name, protocol: row.protocol },
    ruleId: row.rule_id,
    requester: JSON.parse(row.requester) as Identity,
    requestedAt: row.requested_at,
    requestedBy: JSON.parse(row.requested_by) as EventSource,
    expiresAt: row.expires_at,
    approverGroups: JSON.parse(row.approver_groups) as string[],
    required: row.required,
    approvals: row.approvals,
    grantScope: JSON.parse(row.grant_scope) as GrantScope,
    ...(row.resolved_at === null ? {} : { resolvedAt: row.resolved_at }),
    revision: row.revision,
  };
}

/** Where a service keeps its approvals read model: `<dataDir>/approvals-<service>.sqlite`, or `:memory:`. */
export function approvalReadModelPath(dataDir: string, service: string, storage: 'file' | 'memory' = 'file'): string {
  return storage === 'memory' ? ':memory:' : join(dataDir, `approvals-${service}.sqlite`);
}

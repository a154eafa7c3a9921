// The sessions read model: one row per session (who, where, when, how it ended, what happened in
// it) so that the dashboard lists and filters sessions with server-side paging on a log of any
// size, without reading streams. A projection of the session streams (and of approval requests,
// which name their session and approver groups) in one SQLite database, with its checkpoint in the
// same database. Applying an event twice is a no-op: per session only revisions after the last
// applied one count (at-least-once delivery).
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { parseRfc3339Micros, type Identity } from '@custodian/event-contracts';
import { formatPosition, parsePosition, type CheckpointStore, type GlobalPosition, type RecordedEvent } from '@custodian/event-store';

const READ_MODEL_VERSION = 2;

/**
 * A session with no session.closed and no event for this long is shown as `quiet`, not `live`: its
 * gateway may have stopped without closing it (no gateway writes a heartbeat to the log), or it is
 * an idle shell. Either way the page does not claim it is running. Every frame, command and
 * decision is an event, so a session in use stays live.
 */
export const QUIET_AFTER_MS = 15 * 60_000;

const SCHEMA = `
CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY,
  subject TEXT, issuer TEXT, identity_kind TEXT, identity_groups TEXT NOT NULL,
  connection_name TEXT NOT NULL, protocol TEXT NOT NULL, client_address TEXT,
  opened_at TEXT NOT NULL, opened_at_ms INTEGER NOT NULL,
  closed_at TEXT, close_reason TEXT, duration_ms INTEGER, error_code TEXT,
  commands INTEGER NOT NULL DEFAULT 0, allowed INTEGER NOT NULL DEFAULT 0, blocked INTEGER NOT NULL DEFAULT 0,
  held INTEGER NOT NULL DEFAULT 0, masked INTEGER NOT NULL DEFAULT 0,
  credential_ref TEXT, custody_exposed INTEGER,
  last_event_at TEXT NOT NULL, last_event_at_ms INTEGER NOT NULL,
  last_revision INTEGER NOT NULL
);
CREATE INDEX sessions_by_time ON sessions (opened_at_ms DESC, session_id DESC);
CREATE INDEX sessions_by_subject ON sessions (subject, issuer, opened_at_ms DESC);
CREATE TABLE session_approver_groups (session_id TEXT NOT NULL, approval_id TEXT NOT NULL, grp TEXT NOT NULL, PRIMARY KEY (session_id, approval_id, grp));
CREATE INDEX session_approver_groups_by_group ON session_approver_groups (grp, session_id);
CREATE TABLE checkpoints (subscription_id TEXT PRIMARY KEY, position TEXT NOT NULL);
`;

export type SessionState = 'live' | 'quiet' | 'ended';

export type SessionDecisionFilter = 'blocked' | 'held' | 'masked' | 'allowed-only';

export interface SessionSummary {
  readonly sessionId: string;
  readonly identity: Identity | null;
  readonly connection: { readonly name: string; readonly protocol: string };
  readonly clientAddress: string | null;
  readonly openedAt: string;
  readonly closedAt: string | null;
  /** `live`: not closed, an event within QUIET_AFTER_MS; `quiet`: not closed, no event since (idle, or its gateway stopped without closing it); `ended`: closed. */
  readonly state: SessionState;
  /** state === 'live'. */
  readonly live: boolean;
  /** When the session's latest event happened. */
  readonly lastEventAt: string;
  readonly closeReason: string | null;
  readonly durationMs: number | null;
  readonly errorCode: string | null;
  readonly counts: { readonly commands: number; readonly allowed: number; readonly blocked: number; readonly held: number; readonly masked: number };
  readonly credentialRef: string | null;
  /** From the session's custody statement: null until it is signed (at session end). */
  readonly custodyExposed: boolean | null;
}

export interface ListSessionsQuery {
  /** Subject (exact). */
  readonly subject?: string;
  readonly connection?: string;
  readonly protocol?: string;
  /** Opened at or after (ms since the epoch). */
  readonly fromMs?: number;
  /** Opened before (ms since the epoch). */
  readonly toMs?: number;
  readonly decision?: SessionDecisionFilter;
  readonly live?: boolean;
  readonly state?: SessionState;
  /** Only these sessions (e.g. those with findings). */
  readonly sessionIds?: readonly string[];
  /** Keyset cursor: the last row of the previous page. */
  readonly after?: { readonly openedAtMs: number; readonly sessionId: string };
  readonly limit: number;
  /** Undefined: every session (auditors). Otherwise only this identity's sessions and those with an approval its groups may decide. */
  readonly visibleTo?: Identity;
}

interface SessionRow {
  session_id: string;
  subject: string | null;
  issuer: string | null;
  identity_kind: string | null;
  identity_groups: string;
  connection_name: string;
  protocol: string;
  client_address: string | null;
  opened_at: string;
  opened_at_ms: number;
  closed_at: string | null;
  close_reason: string | null;
  duration_ms: number | null;
  error_code: string | null;
  commands: number;
  allowed: number;
  blocked: number;
  held: number;
  masked: number;
  credential_ref: string | null;
  custody_exposed: number | null;
  last_event_at: string;
  last_event_at_ms: number;
}

function toSummary(row: SessionRow, quietBeforeMs: number): SessionSummary {
  const state: SessionState = row.closed_at !== null ? 'ended' : row.last_event_at_ms < quietBeforeMs ? 'quiet' : 'live';
  const identity: Identity | null =
    row.subject === null || row.issuer === null
      ? null
      : { subject: row.subject, issuer: row.issuer, groups: JSON.parse(row.identity_groups) as string[], kind: (row.identity_kind ?? 'agent') as Identity['kind'] };
  return {
    sessionId: row.session_id,
    identity,
    connection: { name: row.connection_name, protocol: row.protocol },
    clientAddress: row.client_address,
    openedAt: row.opened_at,
    closedAt: row.closed_at,
    state,
    live: state === 'live',
    lastEventAt: row.last_event_at,
    closeReason: row.close_reason,
    durationMs: row.duration_ms,
    errorCode: row.error_code,
    counts: { commands: row.commands, allowed: row.allowed, blocked: row.blocked, held: row.held, masked: row.masked },
    credentialRef: row.credential_ref,
    custodyExposed: row.custody_exposed === null ? null : row.custody_exposed === 1,
  };
}

function microsToMs(timestamp: string): number {
  return Number(parseRfc3339Micros(timestamp) / 1000n);
}

const DECISION_COLUMN = { allow: 'allowed', block: 'blocked', 'require-approval': 'held', mask: 'masked' } as const;

export class SessionReadModel implements CheckpointStore {
  private readonly db: Database;
  private closed = false;
  /** Prepared statements by SQL: the projection applies every event of the log, and preparing is most of an update's cost. */
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  private prepared<P extends unknown[] = unknown[], R = unknown>(sql: string): BetterSqlite3.Statement<P, R> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      // Bounded: UPDATE texts vary with the columns an event sets (a few dozen), list filters with the caller.
      if (this.statements.size >= 256) this.statements.clear();
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as BetterSqlite3.Statement<P, R>;
  }

  private readonly quietAfterMs: number;
  private readonly now: () => number;

  /** `path` is a file (created when missing), or `:memory:` for a model rebuilt from the start of the log at every start. */
  constructor(
    readonly path: string,
    options: { readonly quietAfterMs?: number; readonly now?: () => number } = {},
  ) {
    this.quietAfterMs = options.quietAfterMs ?? QUIET_AFTER_MS;
    this.now = options.now ?? Date.now;
    this.db = new BetterSqlite3(path);
    if (path !== ':memory:') this.db.pragma('journal_mode = WAL');
    if (this.db.pragma('user_version', { simple: true }) !== READ_MODEL_VERSION) {
      this.db.transaction(() => {
        this.db.exec('DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS session_approver_groups; DROP TABLE IF EXISTS checkpoints;');
        this.db.exec(SCHEMA);
        this.db.pragma(`user_version = ${READ_MODEL_VERSION}`);
      })();
    }
  }

  async load(subscriptionId: string): Promise<GlobalPosition | undefined> {
    const row = this.prepared<[string], { position: string }>('SELECT position FROM checkpoints WHERE subscription_id = ?').get(subscriptionId);
    return row ? parsePosition(row.position) : undefined;
  }

  async save(subscriptionId: string, position: GlobalPosition): Promise<void> {
    if (this.closed) return;
    this
      .prepared('INSERT INTO checkpoints (subscription_id, position) VALUES (?, ?) ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position')
      .run(subscriptionId, formatPosition(position));
  }

  /** Applies one stored event; events that say nothing about a session are ignored. Idempotent. */
  apply(recorded: RecordedEvent): void {
    if (this.closed) return;
    const event = recorded.event;
    if (event.type === 'approval.requested') {
      const insert = this.prepared('INSERT OR IGNORE INTO session_approver_groups (session_id, approval_id, grp) VALUES (?, ?, ?)');
      for (const group of event.payload.approverGroups) insert.run(event.payload.sessionId, event.payload.approvalId, group);
      return;
    }
    if (!recorded.stream.startsWith('session-')) return;
    const sessionId = recorded.stream.slice('session-'.length);
    if (event.type === 'session.opened') {
      const identity = event.identity;
      this
        .prepared(
          `INSERT OR IGNORE INTO sessions (session_id, subject, issuer, identity_kind, identity_groups, connection_name, protocol, client_address, opened_at, opened_at_ms, last_event_at, last_event_at_ms, last_revision)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          sessionId,
          identity?.subject ?? null,
          identity?.issuer ?? null,
          identity?.kind ?? null,
          JSON.stringify(identity?.groups ?? []),
          event.payload.connection.name,
          event.payload.connection.protocol,
          event.payload.client.address ?? null,
          event.occurredAt,
          microsToMs(event.occurredAt),
          event.occurredAt,
          microsToMs(event.occurredAt),
          recorded.revision,
        );
      return;
    }
    // Only events after the last applied revision of this session change it (redelivery is a no-op).
    const update = (assignments: string, ...values: (string | number | null)[]): void => {
      this
        .prepared(`UPDATE sessions SET ${assignments}, last_event_at = ?, last_event_at_ms = ?, last_revision = ? WHERE session_id = ? AND last_revision < ?`)
        .run(...values, event.occurredAt, microsToMs(event.occurredAt), recorded.revision, sessionId, recorded.revision);
    };
    switch (event.type) {
      case 'command.issued':
        update('commands = commands + 1');
        return;
      case 'policy.decided':
        update(`${DECISION_COLUMN[event.payload.decision]} = ${DECISION_COLUMN[event.payload.decision]} + 1`);
        return;
      case 'credential.injected':
        update('credential_ref = ?', event.payload.credentialRef);
        return;
      case 'custody.attested':
        update('custody_exposed = ?', event.payload.exposed ? 1 : 0);
        return;
      case 'session.closed':
        update('closed_at = ?, close_reason = ?, duration_ms = ?, error_code = ?', event.occurredAt, event.payload.reason, event.payload.durationMs, event.payload.errorCode ?? null);
        return;
      default:
        update('session_id = session_id');
    }
  }

  get(sessionId: string): SessionSummary | undefined {
    const row = this.prepared<[string], SessionRow>('SELECT * FROM sessions WHERE session_id = ?').get(sessionId);
    return row ? toSummary(row, this.now() - this.quietAfterMs) : undefined;
  }

  /** Ids of the approval requests raised in a session. */
  approvalIds(sessionId: string): string[] {
    return this.prepared<[string], { approval_id: string }>('SELECT DISTINCT approval_id FROM session_approver_groups WHERE session_id = ?').all(sessionId).map((r) => r.approval_id);
  }

  /** Whether `caller` may see the session: its own, or one with an approval the caller's groups may decide. */
  visibleTo(session: SessionSummary, caller: Identity): boolean {
    if (session.identity && session.identity.subject === caller.subject && session.identity.issuer === caller.issuer) return true;
    if (caller.groups.length === 0) return false;
    const placeholders = caller.groups.map(() => '?').join(', ');
    return this.prepared(`SELECT 1 FROM session_approver_groups WHERE session_id = ? AND grp IN (${placeholders}) LIMIT 1`).get(session.sessionId, ...caller.groups) !== undefined;
  }

  /** Newest first, keyset-paged (`after`): each page is one indexed range scan, whatever the log's size. */
  list(query: ListSessionsQuery): SessionSummary[] {
    const where: string[] = [];
    const values: (string | number)[] = [];
    const add = (clause: string, ...clauseValues: (string | number)[]): void => {
      where.push(clause);
      values.push(...clauseValues);
    };
    if (query.subject !== undefined) add('subject = ?', query.subject);
    if (query.connection !== undefined) add('connection_name = ?', query.connection);
    if (query.protocol !== undefined) add('protocol = ?', query.protocol);
    if (query.fromMs !== undefined) add('opened_at_ms >= ?', query.fromMs);
    if (query.toMs !== undefined) add('opened_at_ms < ?', query.toMs);
    const quietBeforeMs = this.now() - this.quietAfterMs;
    if (query.live !== undefined) add(query.live ? 'closed_at IS NULL' : 'closed_at IS NOT NULL');
    if (query.state === 'ended') add('closed_at IS NOT NULL');
    if (query.state === 'live') add('closed_at IS NULL AND last_event_at_ms >= ?', quietBeforeMs);
    if (query.state === 'quiet') add('closed_at IS NULL AND last_event_at_ms < ?', quietBeforeMs);
    if (query.sessionIds !== undefined) add('session_id IN (SELECT value FROM json_each(?))', JSON.stringify(query.sessionIds));
    if (query.decision === 'blocked') add('blocked > 0');
    if (query.decision === 'held') add('held > 0');
    if (query.decision === 'masked') add('masked > 0');
    if (query.decision === 'allowed-only') add('blocked = 0 AND held = 0');
    if (query.after) add('(opened_at_ms < ? OR (opened_at_ms = ? AND session_id < ?))', query.after.openedAtMs, query.after.openedAtMs, query.after.sessionId);
    if (query.visibleTo) {
      const caller = query.visibleTo;
      const groups = caller.groups.length > 0 ? caller.groups : [''];
      add(`((subject = ? AND issuer = ?) OR session_id IN (SELECT session_id FROM session_approver_groups WHERE grp IN (${groups.map(() => '?').join(', ')})))`, caller.subject, caller.issuer, ...groups);
    }
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY opened_at_ms DESC, session_id DESC LIMIT ?`;
    return this
      .prepared<(string | number)[], SessionRow>(sql)
      .all(...values, query.limit)
      .map((row) => toSummary(row, quietBeforeMs));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

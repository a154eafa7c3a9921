// The proxy phase of one client session: every client message is decoded and decided before
// anything is forwarded; every upstream message is read, rows are masked, and both directions
// are recorded after masking. Memory stays bounded: each direction holds at most one message
// plus one socket chunk, and a socket is paused while the other side (or the evidence pipeline)
// cannot keep up, so TCP backpressure reaches the producer.
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { TextDecoder } from 'node:util';
import { FlowControl } from '@custodian/gateway-kit';
import { MaskingFindings, type MaskingPolicy, type StreamMasker } from '@custodian/masking';
import {
  BackendType,
  FrontendType,
  MessageFramer,
  SqlState,
  WireProtocolError,
  backendMessageName,
  decodeBind,
  decodeClose,
  decodeCopyResponse,
  decodeDescribe,
  decodeExecute,
  decodeFunctionCall,
  decodeNoticeFields,
  decodeNotification,
  decodeParse,
  decodeQuery,
  decodeReadyForQuery,
  decodeRowDescription,
  encodeBind,
  encodeCopyData,
  encodeCopyFail,
  encodeDescribe,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeNotification,
  encodeParse,
  encodeQuery,
  encodeSync,
  encodeTerminate,
  expectEmpty,
  frontendMessageName,
  parameterFormat,
  type FieldDescription,
  type Frame,
  type TransactionStatus,
} from '@custodian/postgres-wire';
import type { PolicyDecision } from '@custodian/policy';
import { decideSqlSync, sqlClassificationSummary } from '@custodian/policy-languages';
import type { CommandOutcome, CommandRefusalCode, PipelineSession, SessionCloseReason } from '@custodian/session-pipeline';
import { SqlClassificationError, normalizeSqlSync, type SqlClassification, type SqlStatementClassification } from '@custodian/sql-classification';
import type { CatalogResolver, RoutineReferences, TableColumns } from './catalog.js';
import type { GatewayLogger, PostgresConnection, PostgresSessionLimits } from './gateway-options.js';
import { ResponseTracker, type Expectation } from './response-tracker.js';
import { OffloadRefusal, type OffloadPool } from './offload/offload-pool.js';
import type { ClassifyResult, PortableClassification } from './offload/offload-protocol.js';
import { VALUE_LIMIT_RULE, VALUE_LIMIT_TEXT, columnRuleFor, inlineValueScanner, maskDataRow, planRows, tablesOf, type RowPlan } from './row-masking.js';
import type { UpstreamConnection } from './upstream-connection.js';

/**
 * How a refusal makes upstream fail at the right place: a Parse of this name with text that is not
 * SQL. It fails whatever the client did (a syntax error; or "already exists" if a client took the
 * name, which it may), creates nothing and changes no statement of the client's.
 */
export const REFUSAL_STATEMENT = '\u0001custodian:refused';
const REFUSAL_QUERY = '\u0001 custodian: refused';
/** Bytes gathered before a write to the other side. */
const FLUSH_BYTES = 64 * 1024;
/** Client bytes read ahead while a command waits (decision, approval): beyond this the socket is paused. */
const CLIENT_READ_AHEAD = 1024 * 1024;

/** Most SQL-level prepared statements (`PREPARE name AS …`) a session may hold (PostgreSQL has no limit; the gateway's memory has). */
const MAX_SQL_PREPARED = 10_000;

/** One statement text as the policy decided it, with what events and approvers see of it. */
interface SqlDecision {
  readonly decision: PolicyDecision;
  readonly classification: SqlClassification;
  /** The statement with its literal values, masked by the policy's detectors (literal-free when it carries a password). */
  readonly text: string;
  /** Literal-free shape (kinds, objects, flags) for command.issued. */
  readonly summary: Record<string, unknown>;
  /** What masking the text found (reported with the command). */
  readonly findings: MaskingFindings;
}

/** A `COPY … FROM STDIN` held for approval: its rows are buffered (bounded) until the client ends them, then approved or refused. */
interface CopyInHold {
  readonly decision: SqlDecision;
  readonly effective: PolicyDecision;
  readonly expectation: Extract<Expectation, { kind: 'query' }>;
  /** The client's CopyData messages as received, sent upstream only once approved. */
  chunks: Buffer[];
  bytes: number;
  lines: number;
  /** The payload's last bytes (to leave the end-of-data line `\\.` out of the count). */
  tail: Buffer;
  /** The payload's beginning, for the approver (masked when shown). */
  sample: string;
  /** Refused (over the limit): the COPY was cancelled upstream; the client's remaining rows are dropped until its CopyDone. */
  refused: boolean;
}

/** Lines of a held COPY payload the approver sees, and at most this many characters of them. */
const COPY_SAMPLE_LINES = 5;
const COPY_SAMPLE_CHARS = 2048;
/** The binary COPY format's signature: such a payload is counted but not shown. */
const BINARY_COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Lines of a held COPY payload; the end-of-data line `\.` some clients send is not a row. */
function copyLines(hold: CopyInHold): number {
  const tail = hold.tail.toString('latin1');
  return tail.endsWith('\n\\.\n') || (hold.bytes === 3 && tail === '\\.\n') ? hold.lines - 1 : hold.lines;
}

interface StatementState {
  readonly decision: PolicyDecision;
  readonly text: string;
  readonly summary: Record<string, unknown>;
}

interface PortalState {
  readonly statement: string;
  readonly parameters: readonly (string | null)[];
  commandId: string | undefined;
  /** Sync points (Sync, Query) the client had sent when it bound this portal: it lives until the transaction ends after them. */
  readonly boundAfter: number;
}

function sqlStateFor(code: CommandRefusalCode): string {
  return code === 'EVIDENCE_UNAVAILABLE' ? '58000' : SqlState.InsufficientPrivilege;
}

/** Catalog relations that quote sampled column values (pg_statistic* need superuser; refused all the same). */
const STATISTICS_RELATIONS: ReadonlySet<string> = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext', 'pg_statistic_ext_data']);

/** Fields of ErrorResponse/NoticeResponse that can quote data (message, detail, hint, context, where). */
const QUOTING_FIELDS = new Set(['M', 'D', 'H', 'W', 'q', 'p', 'P']);

/** Row plans a session keeps by description (cleared when full), and the longest description kept. */
const PLANS_KEPT = 64;
const MAX_PLAN_KEY_BYTES = 8 * 1024;

export interface ProxyContext {
  readonly session: PipelineSession;
  readonly connection: PostgresConnection;
  readonly catalog: CatalogResolver;
  readonly logger: GatewayLogger;
  readonly maxMessageBytes: number;
  readonly limits: PostgresSessionLimits;
  /**
   * The identity's rules allow no writes (the upstream session is read-only too): every function,
   * operator, attribute-notation name and relation a statement reads is resolved through the
   * catalog, and a statement that could run a VOLATILE or unknown routine is refused (issue 19 §2).
   */
  readonly readOnly?: boolean;
  /** The schemas the session's pinned search_path searches for unqualified names (pg_catalog first). */
  readonly searchSchemas?: readonly string[];
  /** Worker threads for statements and values longer than `limits.inlineWorkBytes` (shared by the gateway's sessions). */
  readonly offload: OffloadPool;
  /** Called once when the session has ended (either side, error or shutdown). */
  readonly onEnded: () => void;
  /** Sends a cancel to the upstream backend of this session. */
  readonly cancelUpstream: () => Promise<void>;
}

export class ProxySession {
  private readonly clientFramer: MessageFramer;
  private readonly upstreamFramer: MessageFramer;
  private readonly upstreamSocket: Socket;
  private readonly tracker = new ResponseTracker();
  /** Protocol-level prepared statements (Parse), by name; follows Close. */
  private readonly statements = new Map<string, StatementState>();
  /** SQL-level prepared statements (`PREPARE name AS …`), so `EXECUTE name` is classified as what it runs; follows DEALLOCATE / DISCARD ALL. */
  private readonly sqlPrepared = new Map<string, SqlStatementClassification>();
  /** Portals the client made with Bind, dropped when PostgreSQL drops them (Close, transaction end). */
  private readonly portals = new Map<string, PortalState>();
  private readonly portalPlans = new Map<string, RowPlan>();
  /** Row plans by the RowDescription bytes they were made from (see keptPlan). */
  private readonly plansByDescription = new Map<string, { readonly masking: MaskingPolicy; readonly hasColumnRules: boolean; readonly tables: readonly (readonly [number, TableColumns | null | undefined])[]; readonly plan: RowPlan }>();
  /**
   * Portal names described (by the client or the gateway) since the last message that could have
   * changed what a name refers to (Query, Execute, Sync, Close, Bind of that name). An Execute of a
   * portal not in here gets a fresh Describe first: its rows are masked under the description
   * PostgreSQL gives right then, never under a plan kept from an earlier portal of that name
   * (SQL cursors share the portal namespace: DECLARE, CLOSE, FETCH, COMMIT change it unseen).
   */
  private readonly describedNow = new Set<string>();
  /** Sync points (Sync, simple Query) the client has sent. */
  private syncPoints = 0;
  /** Executes since the client's last Sync: from the second on, the client is pipelining. */
  private executesSinceSync = 0;
  /** Durability of pipelined commands whose bytes wait in toUpstream (see flushUpstream). */
  private readonly undurable: Promise<void>[] = [];
  /** The last upstream write still waiting for its commands' events; writes stay in order behind it. */
  private upstreamWrites: Promise<void> | undefined;
  private currentPlan: RowPlan | undefined;
  private copyOut: { masker: StreamMasker; decoder: TextDecoder } | undefined;
  private copyInMasker: { masker: StreamMasker; decoder: TextDecoder } | undefined;
  private copyInHold: CopyInHold | undefined;
  private skipUntilSync = false;
  private status: TransactionStatus;
  private ended = false;
  /** Why each socket is paused (named reasons; it reads again only when none is left). */
  private readonly flow: { readonly client: FlowControl; readonly upstream: FlowControl };
  private clientBusy = false;
  private upstreamBusy = false;
  /** Bytes arrived while the pump was busy: pump again when it is done (never on a partial message alone, which would spin). */
  private clientArrived = false;
  private upstreamArrived = false;
  private readonly toUpstream: Buffer[] = [];
  private readonly toUpstreamRecorded: Buffer[] = [];
  private readonly toUpstreamLabels: string[] = [];
  private toUpstreamBytes = 0;
  /** Bytes, as received, of the client messages recorded in the next frame. */
  private toUpstreamRecordedOriginal = 0;
  private readonly toClient: Buffer[] = [];
  private toClientBytes = 0;
  private readonly toClientLabels = new Map<string, number>();
  /** Aborted when the client goes away or cancels: a pending approval is cancelled. */
  private commandAbort = new AbortController();
  private idleTimer: NodeJS.Timeout | undefined;
  /** A DDL or utility statement was let through: the connection's routine verdicts are dropped again when its transaction ends. */
  private routinesChanged = false;

  constructor(
    private readonly client: Socket,
    upstream: UpstreamConnection,
    clientLeftover: Buffer,
    private readonly context: ProxyContext,
  ) {
    this.upstreamSocket = upstream.socket;
    this.flow = { client: new FlowControl(client), upstream: new FlowControl(upstream.socket) };
    this.status = upstream.status;
    this.clientFramer = new MessageFramer({ side: 'frontend', startup: false, maxMessageBytes: context.maxMessageBytes });
    this.upstreamFramer = new MessageFramer({ side: 'backend', maxMessageBytes: context.maxMessageBytes });
    this.clientFramer.push(clientLeftover);
    this.upstreamFramer.push(upstream.leftover);
    client.on('data', (chunk: Buffer) => {
      this.touch();
      this.clientFramer.push(chunk);
      this.pumpClient();
    });
    this.upstreamSocket.on('data', (chunk: Buffer) => {
      this.touch();
      this.upstreamFramer.push(chunk);
      this.pumpUpstream();
    });
    this.touch();
    client.on('close', () => void this.end('client-closed'));
    client.on('error', () => void this.end('client-closed'));
    this.upstreamSocket.on('close', () => void this.upstreamLost());
    this.upstreamSocket.on('error', () => void this.upstreamLost());
    this.pumpClient();
    this.pumpUpstream();
  }

  /** Traffic either way: the idle timeout starts again. */
  private touch(): void {
    const timeout = this.context.limits.idleSessionTimeoutMs;
    if (timeout <= 0 || this.ended) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => void this.idleTimeout(), timeout);
    this.idleTimer.unref();
  }

  private async idleTimeout(): Promise<void> {
    // A command waiting (decision, approval) or a result in flight is not idleness.
    if (this.ended) return;
    if (this.tracker.length > 0 || this.clientBusy) {
      this.idleTimer?.refresh();
      return;
    }
    this.context.logger.info({ sessionId: this.session.id }, 'postgres session idle: ended');
    this.sendClient(
      encodeErrorResponse({ severity: 'FATAL', code: SqlState.IdleSessionTimeout, message: `terminating connection due to idle-session timeout (${Math.round(this.context.limits.idleSessionTimeoutMs / 1000)} s without traffic, a Custodian gateway limit)` }),
      'ErrorResponse',
    );
    this.flushClient();
    await this.end('error', 'IDLE_SESSION_TIMEOUT');
  }

  private get session(): PipelineSession {
    return this.context.session;
  }

  private get masking(): MaskingPolicy {
    return this.session.masking;
  }

  /** Column rules are the only reason to look up table names; detectors need none. */
  private get hasColumnRules(): boolean {
    return this.session.hasColumnRules;
  }

  // ---------------------------------------------------------------------------------------------
  // Flow control

  private pause(which: 'client' | 'upstream', reason: string): void {
    this.flow[which].pause(reason);
  }

  private resume(which: 'client' | 'upstream', reason: string): void {
    this.flow[which].resume(reason);
  }

  private waitForRecorder(which: 'client' | 'upstream'): Promise<void> | undefined {
    if (!this.session.recorderSaturated) return undefined;
    this.pause(which, 'recorder');
    return this.session.whenRecorderReady().then(() => this.resume(which, 'recorder'));
  }

  // ---------------------------------------------------------------------------------------------
  // Client → upstream

  private pumpClient(): void {
    if (this.ended) return;
    if (this.clientBusy) {
      this.clientArrived = true;
      if (this.clientFramer.bufferedBytes > CLIENT_READ_AHEAD) this.pause('client', 'read-ahead');
      return;
    }
    this.clientBusy = true;
    this.clientArrived = false;
    this.processClient()
      .catch((error: unknown) => this.fail(error, 'client'))
      .finally(() => {
        this.clientBusy = false;
        this.resume('client', 'read-ahead');
        // Bytes may have arrived after the loop last looked.
        if (!this.ended && this.clientArrived) this.pumpClient();
      });
  }

  private async processClient(): Promise<void> {
    while (!this.ended) {
      const frame = this.clientFramer.next();
      if (!frame) break;
      if (this.tracker.length >= this.context.limits.maxPendingResponses && this.context.limits.maxPendingResponses > 0) {
        throw new SessionLimitError(
          `more than ${this.context.limits.maxPendingResponses} messages await a response from the database (a pipeline without Sync); send Sync and read the results`,
        );
      }
      const pending = this.handleClientFrame(frame);
      if (pending) {
        // What is buffered (a Parse, a Bind) waits with the command: PostgreSQL's statement_timeout
        // runs from a pipeline's first message, so the gateway's decision and recording must not
        // happen while the upstream already holds the first half of it.
        this.pause('client', 'busy');
        try {
          await pending;
        } finally {
          this.resume('client', 'busy');
        }
      }
      if (this.toUpstreamBytes >= FLUSH_BYTES) this.flushUpstream();
      const recorder = this.waitForRecorder('client');
      if (recorder) {
        this.flushUpstream();
        await recorder;
      }
    }
    this.flushUpstream();
  }

  private sendUpstream(raw: Buffer, recorded: Buffer | null, label: string): void {
    this.toUpstream.push(raw);
    this.toUpstreamBytes += raw.length;
    if (recorded) {
      this.toUpstreamRecorded.push(recorded);
      this.toUpstreamLabels.push(label);
      this.toUpstreamRecordedOriginal += raw.length;
    }
  }

  private flushUpstream(): void {
    if (this.toUpstream.length === 0 || this.ended) return;
    const data = this.toUpstream.length === 1 ? this.toUpstream[0]! : Buffer.concat(this.toUpstream, this.toUpstreamBytes);
    this.toUpstream.length = 0;
    this.toUpstreamBytes = 0;
    let frame: { readonly label: string; readonly bytes: Buffer; readonly byteLength: number } | undefined;
    if (this.toUpstreamRecorded.length > 0) {
      frame = { label: summarizeLabels(this.toUpstreamLabels), bytes: Buffer.concat(this.toUpstreamRecorded), byteLength: this.toUpstreamRecordedOriginal };
      this.toUpstreamRecordedOriginal = 0;
      this.toUpstreamRecorded.length = 0;
      this.toUpstreamLabels.length = 0;
    }
    const write = (): void => {
      if (this.ended) return;
      if (frame) this.session.recordFrame('client-to-upstream', frame.label, frame.bytes, { byteLength: frame.byteLength });
      this.flow.client.forward(this.upstreamSocket, data, 'upstream-drain');
    };
    if (this.undurable.length === 0 && this.upstreamWrites === undefined) {
      write();
      return;
    }
    // Pipelined commands among these bytes: they reach the upstream only once their events are
    // durable (strict mode), in order behind earlier writes. Meanwhile the client is read on, so
    // one group commit covers the commands that arrive during an fsync.
    const durable = this.undurable.length > 0 ? Promise.all(this.undurable.splice(0)) : undefined;
    const written = (this.upstreamWrites ?? Promise.resolve()).then(() => durable).then(write);
    this.upstreamWrites = written;
    written.then(
      () => {
        if (this.upstreamWrites === written) this.upstreamWrites = undefined;
      },
      (error: unknown) => this.fail(new PipelinedEvidenceError(error), 'upstream'),
    );
  }

  /** Handles one client message; returns a promise when it has to wait (a decision's evidence, an approval). */
  private handleClientFrame(frame: Frame): Promise<void> | undefined {
    switch (frame.type) {
      case FrontendType.Query:
        if (this.skipUntilSync) return undefined;
        return this.query(frame);
      case FrontendType.Parse:
        if (this.skipUntilSync) return undefined;
        return this.parse(frame);
      case FrontendType.Bind:
        if (this.skipUntilSync) return undefined;
        return this.bind(frame);
      case FrontendType.Describe: {
        if (this.skipUntilSync) return undefined;
        const describe = decodeDescribe(frame);
        if (describe.target === 'P') this.describedNow.add(describe.name);
        this.sendUpstream(frame.raw, frame.raw, 'Describe');
        this.tracker.push({ kind: 'describe', target: describe.target, name: describe.name, swallow: false });
        return undefined;
      }
      case FrontendType.Execute:
        if (this.skipUntilSync) return undefined;
        return this.execute(frame);
      case FrontendType.Close: {
        if (this.skipUntilSync) return undefined;
        const close = decodeClose(frame);
        if (close.target === 'S') this.statements.delete(close.name);
        else this.portals.delete(close.name);
        this.describedNow.clear();
        this.sendUpstream(frame.raw, frame.raw, 'Close');
        this.tracker.push({ kind: 'close' });
        return undefined;
      }
      case FrontendType.Sync:
        expectEmpty(frame);
        this.skipUntilSync = false;
        this.executesSinceSync = 0;
        this.describedNow.clear();
        this.syncPoints += 1;
        this.sendUpstream(frame.raw, frame.raw, 'Sync');
        this.tracker.push({ kind: 'sync', point: this.syncPoints });
        return undefined;
      case FrontendType.Flush:
        expectEmpty(frame);
        this.sendUpstream(frame.raw, frame.raw, 'Flush');
        return undefined;
      case FrontendType.CopyData: {
        if (this.copyInHold) return this.holdCopyData(this.copyInHold, frame);
        this.copyInMasker ??= { masker: this.masking.createStreamMasker('copy-in'), decoder: new TextDecoder('utf-8', { fatal: false }) };
        return this.maskStream(this.copyInMasker, frame.body, (masked) => this.sendUpstream(frame.raw, encodeCopyData(Buffer.from(masked, 'utf8')), 'CopyData'));
      }
      case FrontendType.CopyDone:
      case FrontendType.CopyFail: {
        if (this.copyInHold) return this.endHeldCopy(this.copyInHold, frame);
        const tail = this.copyInMasker ? this.copyInMasker.masker.push(this.copyInMasker.decoder.decode()) + this.copyInMasker.masker.end() : '';
        this.copyInMasker = undefined;
        if (tail !== '') this.session.recordFrame('client-to-upstream', 'CopyData', encodeCopyData(Buffer.from(tail, 'utf8')));
        this.sendUpstream(frame.raw, frame.raw, frontendMessageName(frame.type));
        return undefined;
      }
      case FrontendType.FunctionCall:
        if (this.skipUntilSync) return undefined;
        return this.functionCall(frame);
      case FrontendType.Terminate:
        expectEmpty(frame);
        this.sendUpstream(frame.raw, frame.raw, 'Terminate');
        this.flushUpstream();
        void this.end('client-closed');
        return undefined;
      default:
        throw new WireProtocolError('WIRE_UNKNOWN_MESSAGE', `unexpected ${frontendMessageName(frame.type)} message after authentication`);
    }
  }

  private newCommandSignal(): AbortSignal {
    if (this.commandAbort.signal.aborted) this.commandAbort = new AbortController();
    return this.commandAbort.signal;
  }

  /** Aborts a command waiting for approval (the client sent a CancelRequest). */
  cancelPendingCommand(): void {
    this.commandAbort.abort();
  }

  private async issue(decision: SqlDecision, effective: PolicyDecision, parameters?: readonly (string | null)[]): Promise<CommandOutcome> {
    const outcome = await this.session.issue({
      language: 'sql',
      kind: 'sql',
      text: decision.text,
      summary: decision.summary,
      decision: effective,
      signal: this.newCommandSignal(),
      ...(parameters ? { parameters } : {}),
    });
    this.session.recordMasked(outcome.commandId, decision.findings);
    return outcome;
  }

  /**
   * Decides statement text with the policy's SQL language (the session's SQL-level prepared
   * statements as context). Text bytes that are not valid UTF-8 are refused outright: decoding would
   * replace them, so the gateway would decide another text than the server is sent. `text` holds
   * the message's text fields only (a Parse's binary parameter type OIDs are not text).
   */
  private decide(sql: string, text: Buffer, simpleQuery = false): SqlDecision | Promise<SqlDecision> {
    if (text.length > this.context.limits.maxStatementBytes) return this.oversized(text.length);
    if (text.length > this.context.limits.inlineWorkBytes) return this.decideOffThread(sql, text, simpleQuery);
    // derivedColumns are read only to check column rules (lineageCheck): without any, no lineage walk.
    const decided = decideSqlSync(this.session.policy, this.session.policyContext, sql, { preparedStatements: this.sqlPrepared, columnLineage: this.hasColumnRules });
    const findings = new MaskingFindings();
    return this.decided(decided, text, simpleQuery, this.commandText(sql, decided.classification, findings), findings);
  }

  /**
   * A statement longer than `inlineWorkBytes`: classified, and its text masked for the record, in a
   * worker thread (issue 19 §3: the parser and the detectors cost milliseconds per KiB, which would
   * stall every session of the process). The policy then decides on the event loop (cheap). When
   * the workers are saturated or the work runs past its budget, the statement is refused.
   */
  private async decideOffThread(sql: string, text: Buffer, simpleQuery: boolean): Promise<SqlDecision> {
    let offloaded: ClassifyResult;
    try {
      offloaded = await this.context.offload.classify(
        this.session.id,
        { text: sql, maxLength: this.context.limits.maxStatementBytes, prepared: preparedNamedIn(sql, this.sqlPrepared) },
        this.masking.detection.compiled.length === 0 ? undefined : { masking: this.masking, field: 'statement' },
      );
    } catch (error) {
      if (!(error instanceof OffloadRefusal)) throw error;
      return this.offloadRefused(text.length, error);
    }
    const classification = fromPortable(offloaded.classification);
    const decided = decideSqlSync(this.session.policy, this.session.policyContext, sql, { preparedStatements: this.sqlPrepared, classification });
    const findings = new MaskingFindings();
    for (const finding of offloaded.recorded?.findings ?? []) findings.add(finding.field, finding.rule, finding.detector, finding.count);
    // Without detectors the worker masks nothing: the text is recorded as is (or literal-free, as inline).
    const recorded = offloaded.recorded?.text ?? (classification.ok && classification.flags.includes('password') ? classification.normalized : classification.ok ? sql : `[unclassifiable statement: ${classification.error.code}]`);
    return this.decided(decided, text, simpleQuery, recorded, findings);
  }

  /** The gateway could not classify a large statement in time (workers saturated, budget spent): refused, and recorded as such. */
  private offloadRefused(bytes: number, refusal: OffloadRefusal): SqlDecision {
    const classification: SqlClassification = { ok: false, error: new SqlClassificationError('SQL_INPUT_TOO_LARGE', `statement of ${bytes} bytes not classified: ${refusal.message}`) };
    const busy = refusal.code === 'OFFLOAD_BUSY';
    return {
      classification,
      text: `[statement of ${bytes} bytes, not classified (${refusal.code}): not recorded]`,
      summary: { error: refusal.code, bytes },
      findings: new MaskingFindings(),
      decision: this.session.gatewayBlock(
        'sql',
        'custodian:statement-work-limit',
        `statement of ${bytes} bytes refused: ${refusal.message} (${refusal.code})`,
        busy
          ? `The statement was not run: the Custodian gateway is busy with other large statements or values (${refusal.message}). Retry later, or send smaller statements.`
          : `The statement was not run: the Custodian gateway could not classify it within its limits (${refusal.message}). Send smaller statements.`,
      ),
    };
  }

  private decided(decided: PolicyDecision<SqlClassification>, text: Buffer, simpleQuery: boolean, recordedText: string, findings: MaskingFindings): SqlDecision {
    const classification = decided.classification;
    const base = { classification, text: recordedText, summary: sqlClassificationSummary(classification), findings };
    if (!isUtf8(text)) {
      return { ...base, decision: this.session.gatewayBlock('sql', 'custodian:invalid-utf8', 'the statement is not valid UTF-8 (fail closed)', 'The statement is not valid UTF-8 and was not run.') };
    }
    if (decided.decision === 'block' || !classification.ok) return { ...base, decision: decided };
    if (classification.kind === 'ddl' || classification.kind === 'utility') {
      // Functions, operators or views may change: routine verdicts are dropped now and again when the transaction has ended.
      this.context.catalog.invalidateRoutines();
      this.routinesChanged = true;
    }
    const statistics = this.hasColumnRules ? this.statisticsRead(classification.statements) : undefined;
    if (statistics) return { ...base, decision: statistics };
    if (decided.decision === 'require-approval' && classification.statements.some((statement) => statement.command === 'COPY FROM') && !this.copyInHoldable(classification, simpleQuery)) {
      // The rows of COPY … FROM STDIN arrive after the statement: an approval would cover data nobody
      // saw, unless the gateway holds the rows (a lone COPY in a simple Query, within the limit).
      return {
        ...base,
        decision: this.session.gatewayBlock(
          'sql',
          'custodian:copy-in-approval',
          `COPY FROM held for approval (rule ${decided.ruleId}) refused: an approval cannot cover rows that arrive after it`,
          `COPY … FROM is held for approval by rule ${decided.ruleId}, but an approval cannot cover rows sent after it: use INSERT statements (each approved with its values) or ask for a rule that allows this COPY.`,
        ),
      };
    }
    const limit = this.followSqlPrepared(classification.statements);
    return { ...base, decision: limit ?? decided };
  }

  /**
   * The planner's statistics quote column values (most common values, histogram bounds) under the
   * statistics views' own column names, where no column rule can follow them: with column rules in
   * the policy, reading them is refused.
   */
  private statisticsRead(statements: readonly SqlStatementClassification[]): PolicyDecision | undefined {
    for (const statement of statements) {
      for (const object of statement.objects) {
        const name = object.name.toLowerCase();
        if ((object.schema === undefined || object.schema.toLowerCase() === 'pg_catalog') && STATISTICS_RELATIONS.has(name)) {
          return this.session.gatewayBlock(
            'sql',
            'custodian:column-statistics',
            `read of pg_catalog.${name} refused: the policy masks columns, and the planner's statistics quote column values`,
            `Reading pg_catalog.${name} is not permitted through the Custodian gateway while the policy masks columns: the statistics quote column values.`,
          );
        }
      }
    }
    return undefined;
  }

  /** A statement too long to classify without stalling every session on the event loop: refused unread. */
  private oversized(bytes: number): SqlDecision {
    const limit = this.context.limits.maxStatementBytes;
    const classification: SqlClassification = { ok: false, error: new SqlClassificationError('SQL_INPUT_TOO_LARGE', `statement of ${bytes} bytes; the limit is ${limit}`) };
    return {
      classification,
      text: `[statement of ${bytes} bytes, over the gateway's limit of ${limit}: not recorded]`,
      summary: { error: 'SQL_INPUT_TOO_LARGE', bytes },
      findings: new MaskingFindings(),
      decision: this.session.gatewayBlock(
        'sql',
        'custodian:statement-limit',
        `statement of ${bytes} bytes refused: the limit is ${limit} bytes`,
        `The statement is ${bytes} bytes; the Custodian gateway classifies statements up to ${limit} bytes. Send smaller statements (e.g. batch the rows).`,
      ),
    };
  }

  /**
   * What events record and approvers see of a statement: its text with literal values, masked by
   * the policy's detectors. A statement that sets a password (`ALTER ROLE … PASSWORD '…'`) or
   * cannot be parsed is shown literal-free instead, so a credential never reaches an event.
   */
  private commandText(sql: string, classification: SqlClassification, findings: MaskingFindings): string {
    if (classification.ok) {
      if (classification.flags.includes('password')) return classification.normalized;
      return this.maskText(sql, 'statement', findings);
    }
    const fallback = normalizeSqlSync(sql);
    return fallback.ok ? fallback.normalized : `[unclassifiable statement: ${classification.error.code}]`;
  }

  /**
   * Keeps the SQL-level prepared statements in step with the session (PREPARE adds, DEALLOCATE and
   * DISCARD ALL drop) and bounded: a PREPARE past the limit is refused.
   */
  private followSqlPrepared(statements: readonly SqlStatementClassification[]): PolicyDecision | undefined {
    for (const statement of statements) {
      if (statement.deallocates === '*') this.sqlPrepared.clear();
      else if (statement.deallocates !== undefined) this.sqlPrepared.delete(statement.deallocates);
      if (statement.preparedName === undefined) continue;
      if (!this.sqlPrepared.has(statement.preparedName) && this.sqlPrepared.size >= MAX_SQL_PREPARED) {
        return this.session.gatewayBlock(
          'sql',
          'custodian:prepared-statement-limit',
          `PREPARE refused: the session already holds ${MAX_SQL_PREPARED} prepared statements`,
          `This session already holds ${MAX_SQL_PREPARED} prepared statements; DEALLOCATE some before preparing more.`,
        );
      }
      this.sqlPrepared.set(statement.preparedName, statement);
    }
    return undefined;
  }

  private async query(frame: Frame): Promise<void> {
    // An oversized statement is refused before it is even decoded (decoding 16 MiB costs too).
    const oversized = frame.body.length > this.context.limits.maxStatementBytes;
    const sql = oversized ? '' : decodeQuery(frame);
    const decision = oversized ? this.oversized(frame.body.length) : await this.decide(sql, frame.body, true);
    const effective = await this.catalogChecks(decision);
    if (effective.decision === 'require-approval' && decision.classification.ok && this.copyInHoldable(decision.classification, true)) {
      this.holdCopyIn(frame, decision, effective);
      return;
    }
    const outcome = await this.issue(decision, effective);
    if (this.ended) return;
    // A simple Query runs in the unnamed portal and drops the unnamed statement, as in PostgreSQL.
    this.describedNow.clear();
    this.portals.delete('');
    this.statements.delete('');
    this.syncPoints += 1;
    if (outcome.forward) {
      this.sendUpstream(frame.raw, encodeQuery(decision.text), 'Query');
      this.tracker.push({ kind: 'query', commandId: outcome.commandId, point: this.syncPoints });
    } else {
      this.refuse(outcome, true, syntaxErrorOf(decision, sql, outcome));
    }
  }

  /** A held COPY FROM whose rows the gateway can buffer and show: alone in a simple Query, with a limit configured and an approvals workflow to ask. */
  private copyInHoldable(classification: SqlClassification, simpleQuery: boolean): boolean {
    return (
      simpleQuery &&
      classification.ok &&
      classification.statements.length === 1 &&
      classification.statements[0]?.command === 'COPY FROM' &&
      this.context.limits.maxCopyInApprovalBytes > 0 &&
      this.session.canHoldForApproval
    );
  }

  /**
   * A COPY … FROM STDIN held for approval (issue 19 §4): the statement goes upstream (COPY writes
   * nothing before its data ends), the client's rows are buffered here up to the limit, and the
   * approval is asked for when they have all arrived, showing the row count and a masked sample.
   * Approved: the rows and CopyDone are sent. Refused or over the limit: CopyFail, nothing written.
   */
  private holdCopyIn(frame: Frame, decision: SqlDecision, effective: PolicyDecision): void {
    this.describedNow.clear();
    this.portals.delete('');
    this.statements.delete('');
    this.syncPoints += 1;
    const expectation: Extract<Expectation, { kind: 'query' }> = { kind: 'query', commandId: undefined, point: this.syncPoints };
    this.sendUpstream(frame.raw, encodeQuery(decision.text), 'Query');
    this.tracker.push(expectation);
    this.copyInHold = { decision, effective, expectation, chunks: [], bytes: 0, lines: 0, tail: Buffer.alloc(0), sample: '', refused: false };
  }

  private holdCopyData(hold: CopyInHold, frame: Frame): Promise<void> | undefined {
    if (hold.refused) return undefined;
    hold.bytes += frame.body.length;
    const limit = this.context.limits.maxCopyInApprovalBytes;
    if (hold.bytes > limit) {
      hold.refused = true;
      hold.chunks = [];
      const reason = `COPY FROM payload over ${limit} bytes refused: a held COPY is approved with its rows, which the gateway buffers up to ${limit} bytes`;
      const decision = this.session.gatewayBlock(
        'sql',
        'custodian:copy-in-limit',
        reason,
        `The COPY rows exceed ${limit} bytes, the most the Custodian gateway holds for an approver to see: send them in smaller COPY statements. Nothing was written.`,
      );
      return this.cancelHeldCopy(hold, decision, `${hold.decision.text}\n-- payload over ${limit} bytes: refused, not shown`);
    }
    hold.chunks.push(frame.raw);
    for (const byte of frame.body) if (byte === 0x0a) hold.lines += 1;
    hold.tail = Buffer.concat([hold.tail, frame.body.subarray(-4)]).subarray(-4);
    if (hold.sample.length < COPY_SAMPLE_CHARS) hold.sample += frame.body.subarray(0, COPY_SAMPLE_CHARS - hold.sample.length).toString('utf8');
    // Recorded as it arrives (masked by the detectors), sent upstream only when approved.
    this.copyInMasker ??= { masker: this.masking.createStreamMasker('copy-in'), decoder: new TextDecoder('utf-8', { fatal: false }) };
    return this.maskStream(this.copyInMasker, frame.body, (masked) => {
      this.flushUpstream();
      this.session.recordFrame('client-to-upstream', 'CopyData (held for approval)', encodeCopyData(Buffer.from(masked, 'utf8')), { byteLength: frame.raw.length });
    });
  }

  /**
   * Pushes COPY data through a stream masker. A message longer than `inlineWorkBytes` is pushed in
   * slices of that size with a turn of the event loop between them (issue 19 §3): the detectors'
   * time on one large message is spread out, so other sessions are served in between. The stream
   * masker's output is the same whatever the slicing.
   */
  private maskStream(stream: { readonly masker: StreamMasker; readonly decoder: TextDecoder }, body: Buffer, done: (masked: string) => void): Promise<void> | undefined {
    const slice = Math.max(1024, this.context.limits.inlineWorkBytes);
    if (body.length <= slice || this.masking.detection.compiled.length === 0) {
      done(stream.masker.push(stream.decoder.decode(body, { stream: true })));
      return undefined;
    }
    return (async () => {
      const parts: string[] = [];
      for (let offset = 0; offset < body.length; offset += slice) {
        if (offset > 0) await new Promise((resolve) => setImmediate(resolve));
        if (this.ended) return;
        parts.push(stream.masker.push(stream.decoder.decode(body.subarray(offset, offset + slice), { stream: true })));
      }
      done(parts.join(''));
    })();
  }

  private endHeldCopy(hold: CopyInHold, frame: Frame): Promise<void> | undefined {
    const tail = this.copyInMasker ? this.copyInMasker.masker.push(this.copyInMasker.decoder.decode()) + this.copyInMasker.masker.end() : '';
    this.copyInMasker = undefined;
    if (tail !== '') this.session.recordFrame('client-to-upstream', 'CopyData (held for approval)', encodeCopyData(Buffer.from(tail, 'utf8')));
    if (hold.refused) {
      // The COPY was cancelled upstream already; the client's end of it goes nowhere.
      this.copyInHold = undefined;
      this.session.recordFrame('client-to-upstream', `${frontendMessageName(frame.type)} (dropped: COPY refused)`, frame.raw);
      return undefined;
    }
    if (frame.type === FrontendType.CopyFail) {
      // The client gave up: nothing to approve, nothing was written.
      this.copyInHold = undefined;
      this.sendUpstream(frame.raw, frame.raw, 'CopyFail');
      return undefined;
    }
    return (async () => {
      const findings = new MaskingFindings();
      const text = `${hold.decision.text}\n${this.copyPayloadSummary(hold, findings)}`;
      const outcome = await this.session.issue({
        language: 'sql',
        kind: 'sql',
        text,
        summary: { ...hold.decision.summary, copyIn: { bytes: hold.bytes, lines: copyLines(hold) } },
        decision: hold.effective,
        signal: this.newCommandSignal(),
      });
      findings.merge(hold.decision.findings);
      this.session.recordMasked(outcome.commandId, findings);
      if (this.ended) return;
      this.copyInHold = undefined;
      if (!outcome.forward) {
        hold.expectation.replaceError = this.refusalError(outcome);
        this.sendUpstream(encodeCopyFail('refused by the Custodian gateway'), null, 'CopyFail');
        return;
      }
      hold.expectation.commandId = outcome.commandId;
      for (const chunk of hold.chunks) this.sendUpstream(chunk, null, 'CopyData');
      hold.chunks = [];
      this.sendUpstream(frame.raw, frame.raw, 'CopyDone');
    })();
  }

  /** Refuses a held COPY before its rows end: recorded, CopyFail upstream, the gateway's error instead of the upstream's. */
  private async cancelHeldCopy(hold: CopyInHold, decision: PolicyDecision, text: string): Promise<void> {
    const outcome = await this.session.issue({ language: 'sql', kind: 'sql', text, summary: hold.decision.summary, decision });
    if (this.ended || outcome.forward) return;
    hold.expectation.replaceError = this.refusalError(outcome);
    this.sendUpstream(encodeCopyFail('refused by the Custodian gateway'), null, 'CopyFail');
  }

  /** What the approver sees of a held COPY payload: size, line count and the first lines, masked by the policy's detectors. */
  private copyPayloadSummary(hold: CopyInHold, findings: MaskingFindings): string {
    const size = `-- COPY payload held for approval: ${copyLines(hold)} lines (rows in text/CSV format), ${hold.bytes} bytes`;
    const first = hold.chunks[0];
    if (first && first.subarray(5).subarray(0, BINARY_COPY_SIGNATURE.length).equals(BINARY_COPY_SIGNATURE)) return `${size}; binary format, not shown`;
    const shown = hold.sample.split('\n').slice(0, COPY_SAMPLE_LINES).filter((line) => line !== '' && line !== '\\.');
    if (shown.length === 0) return size;
    const sample = this.maskText(shown.join('\n'), 'COPY payload', findings);
    return `${size}; first ${shown.length} (masked by the policy's detectors):\n${sample}`;
  }

  private refusalError(outcome: Extract<CommandOutcome, { forward: false }>): Buffer {
    return encodeErrorResponse({
      severity: 'ERROR',
      code: sqlStateFor(outcome.code),
      message: outcome.message,
      ...(outcome.ruleId ? { detail: `policy rule: ${outcome.ruleId}` } : {}),
    });
  }

  /**
   * A Parse is decided at once: a blocked statement is refused here. An allowed or held one is
   * forwarded (preparing runs nothing) and each Execute of it is issued with its bound values,
   * so a held statement is approved per execution, with the values the approver sees.
   */
  private parse(frame: Frame): Promise<void> | undefined {
    const parse = decodeParse(frame);
    const limit = this.context.limits.maxPreparedStatements;
    if (parse.statement !== '' && limit > 0 && !this.statements.has(parse.statement) && this.statements.size >= limit) {
      return this.refuseForLimit('custodian:prepared-statement-limit', `Parse refused: the session already holds ${limit} prepared statements`, `This session already holds ${limit} prepared statements; Close some before preparing more.`);
    }
    // Statement name and query: the two C strings before the binary parameter types.
    const textEnd = frame.body.indexOf(0, frame.body.indexOf(0) + 1);
    const decided = this.decide(parse.query, frame.body.subarray(0, textEnd));
    if (decided instanceof Promise) return decided.then((decision) => this.parseDecided(frame, parse, decision));
    return this.parseDecided(frame, parse, decided);
  }

  private parseDecided(frame: Frame, parse: ReturnType<typeof decodeParse>, decision: SqlDecision): Promise<void> | undefined {
    const recorded = encodeParse({ ...parse, query: decision.text });
    const remember = (effective: PolicyDecision): void => {
      this.statements.set(parse.statement, { decision: effective, text: decision.text, summary: decision.summary });
      this.sendUpstream(frame.raw, recorded, 'Parse');
      this.tracker.push({ kind: 'parse' });
    };
    // Held statements wait at Execute; with no approvals workflow to wait on, they are refused here.
    const preparable = (effective: PolicyDecision): boolean => effective.decision === 'allow' || (effective.decision === 'require-approval' && this.session.canHoldForApproval);
    if (preparable(decision.decision) && !this.catalogChecksNeeded(decision)) {
      remember(decision.decision);
      return undefined;
    }
    return (async () => {
      const effective = await this.catalogChecks(decision);
      if (preparable(effective)) {
        remember(effective);
        return;
      }
      const outcome = await this.issue(decision, effective);
      if (this.ended) return;
      if (outcome.forward) remember(effective);
      else this.refuse(outcome, false, syntaxErrorOf(decision, parse.query, outcome));
    })();
  }

  private bind(frame: Frame): Promise<void> | undefined {
    const bind = decodeBind(frame);
    const limit = this.context.limits.maxPortals;
    if (bind.portal !== '' && limit > 0 && !this.portals.has(bind.portal) && this.portals.size >= limit) {
      return this.refuseForLimit('custodian:portal-limit', `Bind refused: the session already holds ${limit} portals`, `This session already holds ${limit} open portals; Close some (or end the transaction) before binding more.`);
    }
    const scratch = new MaskingFindings();
    const { inlineWorkBytes, maxScannedValueBytes } = this.context.limits;
    const offloaded: Promise<void>[] = [];
    // Parameter values as events record them and approvers see them: masked by the detectors (a
    // long one in a worker thread), one too long to scan not recorded at all (fail closed).
    const masked = bind.parameters.map((value, index): string | null => {
      if (value === null) return null;
      if (parameterFormat(bind, index) === 1) return `[binary: ${value.length} bytes]`;
      if (value.length > maxScannedValueBytes) return `[text: ${value.length} bytes, over the gateway's scan limit: not recorded]`;
      if (value.length <= inlineWorkBytes || this.masking.detection.compiled.length === 0) return this.maskText(value.toString('utf8'), `parameter $${index + 1}`, scratch);
      offloaded.push(
        this.context.offload.mask(this.session.id, this.masking, 'text', value.toString('utf8'), `parameter $${index + 1}`).then(
          (result) => {
            masked[index] = result.text;
          },
          (error: unknown) => {
            if (!(error instanceof OffloadRefusal)) throw error;
            masked[index] = `[text: ${value.length} bytes, not scanned (${error.code}): not recorded]`;
          },
        ),
      );
      return null;
    });
    const bound = (): void => {
      this.portals.set(bind.portal, { statement: bind.statement, parameters: masked, commandId: undefined, boundAfter: this.syncPoints });
      this.describedNow.delete(bind.portal);
      const recorded = encodeBind({ ...bind, parameterFormats: [], parameters: masked.map((text) => (text === null ? null : Buffer.from(text, 'utf8'))) });
      this.sendUpstream(frame.raw, recorded, 'Bind');
      this.tracker.push({ kind: 'bind' });
    };
    if (offloaded.length === 0) {
      bound();
      return undefined;
    }
    return Promise.all(offloaded).then(() => {
      if (!this.ended) bound();
    });
  }

  /** A per-session limit reached by an extended-protocol message: refused (and recorded) like a policy block; the batch ends at its Sync. */
  private async refuseForLimit(ruleId: string, reason: string, clientMessage: string): Promise<void> {
    const decision = this.session.gatewayBlock('sql', ruleId, reason, clientMessage);
    const outcome = await this.session.issue({ language: 'sql', kind: 'sql', text: `[${reason}]`, decision });
    if (this.ended || outcome.forward) return;
    this.refuse(outcome, false);
  }

  private execute(frame: Frame): Promise<void> | undefined {
    const { portal: name } = decodeExecute(frame);
    const portal = this.portals.get(name);
    const forward = (): void => {
      if (!this.describedNow.has(name)) {
        // The rows of this Execute are masked under the description PostgreSQL gives now: ask for it, keep the answer from the client.
        this.sendUpstream(encodeDescribe('P', name), null, 'Describe');
        this.tracker.push({ kind: 'describe', target: 'P', name, swallow: true });
      }
      this.sendUpstream(frame.raw, frame.raw, 'Execute');
      this.tracker.push({ kind: 'execute', portal: name, commandId: portal?.commandId });
      // What this Execute runs can DECLARE, CLOSE or FETCH cursors, or end the transaction.
      this.describedNow.clear();
    };
    const statement = portal ? this.statements.get(portal.statement) : undefined;
    if (portal && !statement && portal.commandId === undefined) {
      // A Bind to a statement made by SQL PREPARE: decided as `EXECUTE name` (what it runs), with its values.
      const sql = `EXECUTE ${quoteIdentifier(portal.statement)}`;
      const decided = this.decide(sql, Buffer.from(sql, 'utf8'));
      const asStatement = (decision: SqlDecision): StatementState => ({ decision: decision.decision, text: decision.text, summary: decision.summary });
      if (decided instanceof Promise) return decided.then((decision) => this.executeDecided(portal, asStatement(decision), forward));
      return this.executeDecided(portal, asStatement(decided), forward);
    }
    return this.executeDecided(portal, statement, forward);
  }

  private executeDecided(portal: PortalState | undefined, statement: StatementState | undefined, forward: () => void): Promise<void> | undefined {
    // A portal continued after PortalSuspended, or one made by DECLARE … CURSOR (decided when declared).
    if (!portal || !statement || portal.commandId !== undefined) {
      forward();
      return undefined;
    }
    this.executesSinceSync += 1;
    if (statement.decision.decision === 'allow' && this.executesSinceSync > 1) {
      // The client pipelines (a second Execute before Sync): decide and queue its events now, and
      // let flushUpstream hold its bytes until they are durable, instead of one fsync per Execute.
      // What is queued before it (commands already durable) goes out at once.
      if (this.undurable.length === 0) this.flushUpstream();
      const { commandId, durable } = this.session.issueAllowed({
        language: 'sql',
        kind: 'sql',
        text: statement.text,
        parameters: portal.parameters,
        summary: statement.summary,
        decision: statement.decision,
      });
      this.undurable.push(durable);
      portal.commandId = commandId;
      forward();
      return undefined;
    }
    return (async () => {
      const outcome = await this.session.issue({
        language: 'sql',
        kind: 'sql',
        text: statement.text,
        parameters: portal.parameters,
        summary: statement.summary,
        decision: statement.decision,
        signal: this.newCommandSignal(),
      });
      if (this.ended) return;
      if (!outcome.forward) {
        this.refuse(outcome, false);
        return;
      }
      portal.commandId = outcome.commandId;
      forward();
    })();
  }

  private async functionCall(frame: Frame): Promise<void> {
    const { functionOid } = decodeFunctionCall(frame);
    const decision = this.session.gatewayBlock(
      'sql',
      'custodian:function-call',
      `FunctionCall of function ${functionOid}: the fast-path interface bypasses SQL classification`,
      'The FunctionCall protocol message is not permitted through the Custodian gateway; call the function in a SQL statement.',
    );
    const outcome = await this.session.issue({ language: 'sql', kind: 'sql', text: `[FunctionCall ${functionOid}]`, decision });
    if (this.ended) return;
    if (!outcome.forward) this.refuse(outcome, true);
  }

  /**
   * Refuses a command so that the client and the upstream stay in step: an injected Parse that
   * cannot succeed makes upstream fail exactly where the command was, so an open
   * transaction is aborted and an extended-protocol batch ends at its Sync, as PostgreSQL would for
   * a permission error. The client sees the gateway's error instead of upstream's.
   */
  private refuse(outcome: Extract<CommandOutcome, { forward: false }>, simple: boolean, syntax?: SyntaxErrorFields): void {
    const error = encodeErrorResponse({
      severity: 'ERROR',
      code: syntax ? SqlState.SyntaxError : sqlStateFor(outcome.code),
      message: outcome.message,
      ...(outcome.ruleId ? { detail: `policy rule: ${outcome.ruleId}` } : {}),
      ...(syntax ? { position: syntax.position } : {}),
    });
    this.sendUpstream(encodeParse({ statement: REFUSAL_STATEMENT, query: REFUSAL_QUERY, parameterTypes: [] }), null, 'Parse');
    this.tracker.push({ kind: 'refusal', error });
    if (simple) {
      this.sendUpstream(encodeSync(), null, 'Sync');
      this.tracker.push({ kind: 'sync' });
    } else {
      this.skipUntilSync = true;
    }
  }

  /** Whether deciding needs the upstream catalog (COPY TO of a masked table, a derivation from a masked column, a routine of a read-only session not cached as harmless). */
  private catalogChecksNeeded(decision: SqlDecision): boolean {
    return this.copyCheckNeeded(decision) || this.lineageCheckNeeded(decision) || this.routineCheckNeeded(decision);
  }

  private async catalogChecks(decision: SqlDecision): Promise<PolicyDecision> {
    const routines = await this.routineCheck(decision);
    if (routines !== decision.decision) return routines;
    const copy = await this.copyCheck(decision);
    if (copy !== decision.decision) return copy;
    return this.lineageCheck(decision);
  }

  /** What a read-only session's statement may call, for the catalog; undefined when there is nothing to check. */
  private routineReferences(decision: SqlDecision): RoutineReferences | undefined {
    if (!this.context.readOnly || decision.decision.decision === 'block' || !decision.classification.ok) return undefined;
    const statements = decision.classification.statements;
    return {
      functions: statements.flatMap((statement) => statement.functions),
      operators: statements.flatMap((statement) => statement.operators ?? []),
      attributeNames: statements.flatMap((statement) => statement.attributeNames ?? []),
      typeNames: statements.flatMap((statement) => statement.typeNames ?? []),
      relations: statements.flatMap((statement) => statement.objects),
    };
  }

  private routineCheckNeeded(decision: SqlDecision): boolean {
    const references = this.routineReferences(decision);
    if (references === undefined) return false;
    const risks = this.context.catalog.routineRisks(references, this.searchSchemas);
    return risks === undefined || risks.length > 0;
  }

  /**
   * A write hidden behind a read (issue 19 §2): for an identity whose rules allow no writes, the
   * functions, operators, attribute-notation names and relations of the statement are resolved
   * through the catalog (every candidate on the pinned search_path, never trusted by name); a
   * VOLATILE or unknown one is refused here, before the read-only upstream session would fail it.
   */
  private async routineCheck(decision: SqlDecision): Promise<PolicyDecision> {
    const references = this.routineReferences(decision);
    if (references === undefined) return decision.decision;
    let risks = this.context.catalog.routineRisks(references, this.searchSchemas);
    if (risks === undefined) {
      try {
        await this.context.catalog.loadRoutines(references, this.searchSchemas);
        risks = this.context.catalog.routineRisks(references, this.searchSchemas);
      } catch {
        risks = undefined;
      }
      if (risks === undefined) {
        return this.session.gatewayBlock(
          'sql',
          'custodian:volatile-routine',
          'statement refused: the functions and operators it calls could not be checked (catalog unavailable)',
          'The statement is refused: the gateway cannot check the functions and operators it calls right now.',
        );
      }
    }
    const risk = risks[0];
    if (risk === undefined) return decision.decision;
    return this.session.gatewayBlock(
      'sql',
      'custodian:volatile-routine',
      `statement refused: ${risk.reference}: ${risk.reason}, and the identity may only read`,
      `The statement is refused: ${risk.reference} resolves to a routine that can write (${risk.reason}); this identity may only read. Functions and operators are resolved through the catalog on the session's search_path.`,
    );
  }

  private get searchSchemas(): readonly string[] {
    return this.context.searchSchemas ?? ['pg_catalog', 'public'];
  }

  private lineageCheckNeeded(decision: SqlDecision): boolean {
    return (
      this.hasColumnRules &&
      decision.decision.decision !== 'block' &&
      decision.classification.ok &&
      decision.classification.statements.some((statement) => (statement.derivedColumns !== undefined || statement.derivedColumnsUnknown === true) && statement.objects.length > 0)
    );
  }

  /**
   * A value derived from a masked column (through a function, operator, cast, aggregate, set
   * operation, subquery or whole-row reference) reaches the client as an anonymous column no
   * column rule can recognise: such a statement is refused (issue 19 §1). The relations it reads
   * are looked up in the catalog (views and inheritance included, as for result columns).
   */
  private async lineageCheck(decision: SqlDecision): Promise<PolicyDecision> {
    if (!this.lineageCheckNeeded(decision) || !decision.classification.ok) return decision.decision;
    for (const statement of decision.classification.statements) {
      if (statement.derivedColumns === undefined && statement.derivedColumnsUnknown !== true) continue;
      // Classified without the lineage walk (before the policy had column rules): any column may be derived.
      const derived = new Set(statement.derivedColumnsUnknown === true ? ['*'] : statement.derivedColumns);
      for (const object of statement.objects) {
        let columns;
        try {
          columns = await this.context.catalog.relationColumns(object.schema, object.name);
        } catch {
          return this.session.gatewayBlock(
            'sql',
            'custodian:masked-column-derivation',
            'statement refused: whether it derives values from masked columns could not be checked (catalog unavailable)',
            'The statement is refused: the gateway cannot check it for values derived from masked columns right now.',
          );
        }
        if (!columns) continue;
        for (const column of columns.columns.values()) {
          if (!derived.has('*') && !derived.has(column)) continue;
          const rule = columnRuleFor(this.masking, columns, column);
          if (!rule) continue;
          const where = `${columns.schema}.${columns.table}.${column}`;
          return this.session.gatewayBlock(
            'sql',
            'custodian:masked-column-derivation',
            `statement refused: it derives a value from ${where}, masked by rule ${rule.id}`,
            `Column ${where} is masked (rule ${rule.id}): select it plainly (it is masked) or filter on it with =, IN or IS NULL; expressions, casts, aggregates, set operations, subqueries and whole-row references over it are refused.`,
          );
        }
      }
    }
    return decision.decision;
  }

  private copyCheckNeeded(decision: SqlDecision): boolean {
    return decision.decision.decision !== 'block' && decision.classification.ok && decision.classification.statements.some((statement) => statement.command === 'COPY TO');
  }

  /**
   * COPY … TO STDOUT sends rows without a RowDescription, so column rules cannot be applied to
   * them: a COPY out of a relation with a masked column is refused (SELECT masks it instead).
   */
  private async copyCheck(decision: SqlDecision): Promise<PolicyDecision> {
    if (!this.copyCheckNeeded(decision) || !this.hasColumnRules || !decision.classification.ok) return decision.decision;
    for (const statement of decision.classification.statements) {
      if (statement.command !== 'COPY TO') continue;
      for (const object of statement.objects) {
        let columns;
        try {
          columns = await this.context.catalog.relationColumns(object.schema, object.name);
        } catch {
          return this.session.gatewayBlock('sql', 'custodian:copy-masked-columns', 'COPY TO refused: masked columns could not be checked (catalog unavailable)', 'COPY TO is refused: the gateway cannot check it for masked columns right now.');
        }
        if (!columns) continue;
        for (const column of columns.columns.values()) {
          const rule = columnRuleFor(this.masking, columns, column);
          if (rule) {
            const where = `${columns.schema}.${columns.table}.${column}`;
            return this.session.gatewayBlock(
              'sql',
              'custodian:copy-masked-columns',
              `COPY TO of ${columns.schema}.${columns.table} refused: column ${where} is masked by rule ${rule.id}`,
              `COPY TO is refused for ${columns.schema}.${columns.table}: column ${column} is masked (rule ${rule.id}); use SELECT, which masks it.`,
            );
          }
        }
      }
    }
    return decision.decision;
  }

  private maskText(text: string, field: string, findings: MaskingFindings): string {
    return this.masking.detection.compiled.length === 0 ? text : this.masking.maskText(text, field, findings);
  }

  // ---------------------------------------------------------------------------------------------
  // Upstream → client

  private pumpUpstream(): void {
    if (this.ended) return;
    if (this.upstreamBusy) {
      this.upstreamArrived = true;
      return;
    }
    this.upstreamBusy = true;
    this.upstreamArrived = false;
    this.processUpstream()
      .catch((error: unknown) => this.fail(error, 'upstream'))
      .finally(() => {
        this.upstreamBusy = false;
        if (!this.ended && this.upstreamArrived) this.pumpUpstream();
      });
  }

  private async processUpstream(): Promise<void> {
    while (!this.ended) {
      const frame = this.upstreamFramer.next();
      if (!frame) break;
      const pending = this.handleUpstreamFrame(frame);
      if (pending) {
        this.flushClient();
        this.pause('upstream', 'busy');
        try {
          await pending;
        } finally {
          this.resume('upstream', 'busy');
        }
      }
      if (this.toClientBytes >= FLUSH_BYTES) {
        this.flushClient();
        const recorder = this.waitForRecorder('upstream');
        if (recorder) await recorder;
      }
    }
    this.flushClient();
  }

  private sendClient(data: Buffer, label: string): void {
    this.toClient.push(data);
    this.toClientBytes += data.length;
    this.toClientLabels.set(label, (this.toClientLabels.get(label) ?? 0) + 1);
  }

  private flushClient(): void {
    if (this.toClient.length === 0 || this.ended) return;
    const data = this.toClient.length === 1 ? this.toClient[0]! : Buffer.concat(this.toClient, this.toClientBytes);
    this.toClient.length = 0;
    this.toClientBytes = 0;
    const label = [...this.toClientLabels].map(([name, count]) => (count > 1 ? `${name}*${count}` : name)).join(',');
    this.toClientLabels.clear();
    this.session.recordFrame('upstream-to-client', label, data);
    this.flow.upstream.forward(this.client, data, 'client-drain');
  }

  private findingsOf(entry: Expectation | undefined): MaskingFindings | undefined {
    if (!entry || (entry.kind !== 'query' && entry.kind !== 'execute')) return undefined;
    entry.findings ??= new MaskingFindings();
    return entry.findings;
  }

  private completed(entry: Expectation | undefined): void {
    if (entry && (entry.kind === 'query' || entry.kind === 'execute') && entry.findings) {
      this.session.recordMasked(entry.commandId, entry.findings);
      entry.findings = undefined;
    }
  }

  /** After an error upstream skips to the next Sync: so do the expectations. */
  private dropUntilSync(): void {
    for (let head = this.tracker.peek(); head && head.kind !== 'sync'; head = this.tracker.peek()) this.completed(this.tracker.shift());
  }

  private handleUpstreamFrame(frame: Frame): Promise<void> | undefined {
    const head = this.tracker.peek();
    switch (frame.type) {
      case BackendType.DataRow: {
        const plan = head?.kind === 'execute' ? this.portalPlans.get(head.portal) : head?.kind === 'query' ? this.currentPlan : undefined;
        if (!plan) throw new WireProtocolError('WIRE_MALFORMED', 'DataRow without a row description: refusing to forward unmasked rows');
        if (frame.body.length > this.context.limits.inlineWorkBytes && !plan.passthrough) return this.maskLongRow(frame, plan, this.findingsOf(head)!);
        this.sendClient(maskDataRow(frame, plan, this.masking, this.findingsOf(head)!, this.context.limits), 'DataRow');
        return undefined;
      }
      case BackendType.RowDescription:
        return this.rowDescription(frame, head);
      case BackendType.CommandComplete:
        this.currentPlan = undefined;
        if (head?.kind === 'execute') this.completed(this.tracker.shift());
        this.sendClient(frame.raw, 'CommandComplete');
        return undefined;
      case BackendType.ReadyForQuery: {
        this.status = decodeReadyForQuery(frame);
        // A held COPY that ended upstream before its rows did (the statement failed): nothing left to hold.
        if (this.copyInHold && !this.copyInHold.refused && head === this.copyInHold.expectation) this.copyInHold = undefined;
        if (this.routinesChanged && this.status === 'I') {
          this.routinesChanged = false;
          this.context.catalog.invalidateRoutines();
        }
        for (let entry = this.tracker.shift(); entry; entry = this.tracker.shift()) {
          this.completed(entry);
          if (entry.kind === 'sync' || entry.kind === 'query') {
            // Out of a transaction, PostgreSQL has dropped every portal bound before this sync point.
            if (this.status === 'I' && entry.point !== undefined) this.dropPortalsBefore(entry.point);
            break;
          }
        }
        this.currentPlan = undefined;
        this.sendClient(frame.raw, 'ReadyForQuery');
        return undefined;
      }
      case BackendType.ErrorResponse: {
        this.copyOut = undefined;
        if (head?.kind === 'refusal') {
          this.tracker.shift();
          this.sendClient(head.error, 'ErrorResponse');
          this.dropUntilSync();
          return undefined;
        }
        if (head?.kind === 'query' && head.replaceError) {
          // The upstream's answer to the gateway's CopyFail: the client sees why the gateway refused.
          this.sendClient(head.replaceError, 'ErrorResponse');
          head.replaceError = undefined;
          return undefined;
        }
        const fields = decodeNoticeFields(frame);
        const checking = this.detailQuotesMaskedColumns(fields);
        if (checking) return checking.then((withhold) => this.errorResponse(frame, fields, head, withhold));
        return this.errorResponse(frame, fields, head, false);
      }
      case BackendType.ParseComplete:
      case BackendType.BindComplete:
      case BackendType.CloseComplete:
        this.tracker.shift();
        this.sendClient(frame.raw, backendMessageName(frame.type));
        return undefined;
      case BackendType.ParameterDescription:
        if (!(head?.kind === 'describe' && head.swallow)) this.sendClient(frame.raw, 'ParameterDescription');
        return undefined;
      case BackendType.NoData:
        if (head?.kind === 'describe') {
          this.tracker.shift();
          if (head.target === 'P') this.portalPlans.set(head.name, { passthrough: true, actions: [] });
          if (head.swallow) return undefined;
        }
        this.sendClient(frame.raw, 'NoData');
        return undefined;
      case BackendType.EmptyQueryResponse:
      case BackendType.PortalSuspended:
        if (head?.kind === 'execute') this.completed(this.tracker.shift());
        this.sendClient(frame.raw, backendMessageName(frame.type));
        return undefined;
      case BackendType.NoticeResponse: {
        const masked = this.maskNotice(frame, BackendType.NoticeResponse);
        if (masked instanceof Promise) return masked.then((raw) => this.sendClient(raw, 'NoticeResponse'));
        this.sendClient(masked, 'NoticeResponse');
        return undefined;
      }
      case BackendType.NotificationResponse: {
        const note = decodeNotification(frame);
        const payload = this.maskText(note.payload, `notification ${note.channel}`, this.findingsOf(head) ?? new MaskingFindings());
        this.sendClient(payload === note.payload ? frame.raw : encodeNotification(note.processId, note.channel, payload), 'NotificationResponse');
        return undefined;
      }
      case BackendType.ParameterStatus:
        this.sendClient(frame.raw, 'ParameterStatus');
        return undefined;
      case BackendType.CopyInResponse:
        this.sendClient(frame.raw, 'CopyInResponse');
        return undefined;
      case BackendType.CopyOutResponse: {
        const copy = decodeCopyResponse(frame);
        // Binary COPY data cannot be scanned or masked: never forward it.
        if (copy.format !== 0) throw new WireProtocolError('WIRE_MALFORMED', 'binary COPY TO STDOUT cannot be masked and is not supported through the gateway');
        this.copyOut = { masker: this.masking.createStreamMasker('copy-out', this.findingsOf(head) ?? new MaskingFindings()), decoder: new TextDecoder('utf-8', { fatal: false }) };
        this.sendClient(frame.raw, 'CopyOutResponse');
        return undefined;
      }
      case BackendType.CopyData: {
        const copy = this.copyOut;
        if (!copy) throw new WireProtocolError('WIRE_MALFORMED', 'CopyData outside COPY OUT');
        if (this.masking.detection.compiled.length === 0) {
          this.sendClient(frame.raw, 'CopyData');
          return undefined;
        }
        return this.maskStream(copy, frame.body, (out) => {
          if (out !== '') this.sendClient(encodeCopyData(Buffer.from(out, 'utf8')), 'CopyData');
        });
      }
      case BackendType.CopyDone: {
        const copy = this.copyOut;
        this.copyOut = undefined;
        if (copy && this.masking.detection.compiled.length > 0) {
          const out = copy.masker.push(copy.decoder.decode()) + copy.masker.end();
          if (out !== '') this.sendClient(encodeCopyData(Buffer.from(out, 'utf8')), 'CopyData');
        }
        this.sendClient(frame.raw, 'CopyDone');
        return undefined;
      }
      default:
        throw new WireProtocolError('WIRE_UNKNOWN_MESSAGE', `unexpected ${backendMessageName(frame.type)} from upstream during a session`);
    }
  }

  /**
   * A row longer than `inlineWorkBytes`: masked here, except its values longer than that, which are
   * scanned in worker threads (issue 19 §3). A first pass masks the short values and collects the
   * long texts in the order the masking reads them; without any, its result is the row (no second
   * pass, no promise). Otherwise the long texts go to the workers and the row is masked again with
   * their results in that order. A value the workers could not scan (saturated, over budget) is
   * replaced, as an oversized one is.
   */
  private maskLongRow(frame: Frame, plan: RowPlan, findings: MaskingFindings): Promise<void> | undefined {
    const inline = this.context.limits.inlineWorkBytes;
    const masking = this.masking;
    const inlineScanner = inlineValueScanner(masking);
    const long: { readonly as: 'text' | 'json'; readonly text: string; readonly field: string }[] = [];
    const collect = (as: 'text' | 'json') => (text: string, field: string, into: MaskingFindings): string => {
      if (text.length <= inline) return inlineScanner[as](text, field, into);
      long.push({ as, text, field });
      return text;
    };
    const firstFindings = new MaskingFindings();
    const first = maskDataRow(frame, plan, masking, firstFindings, this.context.limits, { text: collect('text'), json: collect('json') });
    if (long.length === 0) {
      findings.merge(firstFindings);
      this.sendClient(first, 'DataRow');
      return undefined;
    }
    return (async () => {
      const results = await Promise.all(
        long.map(({ as, text, field }) =>
          this.context.offload.mask(this.session.id, masking, as, text, field).catch((error: unknown) => {
            if (error instanceof OffloadRefusal) return error;
            throw error;
          }),
        ),
      );
      if (this.ended) return;
      let next = 0;
      const take = (as: 'text' | 'json') => (text: string, field: string, into: MaskingFindings): string => {
        if (text.length <= inline) return inlineScanner[as](text, field, into);
        const result = results[next++];
        if (result === undefined || result instanceof OffloadRefusal) {
          into.add(field, VALUE_LIMIT_RULE);
          return as === 'json' ? JSON.stringify(VALUE_LIMIT_TEXT) : VALUE_LIMIT_TEXT;
        }
        for (const finding of result.findings) into.add(finding.field, finding.rule, finding.detector, finding.count);
        return result.text;
      };
      this.sendClient(maskDataRow(frame, plan, masking, findings, this.context.limits, { text: take('text'), json: take('json') }), 'DataRow');
    })();
  }

  private errorResponse(frame: Frame, fields: Map<string, string>, head: Expectation | undefined, withholdDetail: boolean): Promise<void> | undefined {
    const masked = this.maskNotice(frame, BackendType.ErrorResponse, withholdDetail);
    if (masked instanceof Promise) return masked.then((raw) => this.errorResponseMasked(raw, fields, head));
    this.errorResponseMasked(masked, fields, head);
    return undefined;
  }

  private errorResponseMasked(masked: Buffer, fields: Map<string, string>, head: Expectation | undefined): void {
    this.sendClient(masked, 'ErrorResponse');
    const severity = fields.get('V') ?? fields.get('S');
    if (severity === 'FATAL' || severity === 'PANIC') {
      // The upstream ends the session itself (pg_terminate_backend, shutdown): its error is the
      // client's last message, with no second one from the gateway.
      this.flushClient();
      void this.end('upstream-closed');
      return;
    }
    if (head && head.kind !== 'query' && head.kind !== 'sync') {
      this.completed(this.tracker.shift());
      this.dropUntilSync();
    }
  }

  /**
   * An integrity error's DETAIL quotes column values ("Key (email)=(…) already exists", "Failing
   * row contains (…)"); when its table has a column the policy masks, the detail is withheld.
   * Undefined when no catalog lookup is needed.
   */
  private detailQuotesMaskedColumns(fields: ReadonlyMap<string, string>): Promise<boolean> | undefined {
    const table = fields.get('t');
    if (!this.hasColumnRules || !fields.has('D') || table === undefined || !(fields.get('C') ?? '').startsWith('23')) return undefined;
    return this.context.catalog.relationColumns(fields.get('s'), table).then(
      (columns) => columns !== undefined && [...columns.columns.values()].some((column) => columnRuleFor(this.masking, columns, column) !== undefined),
      // Fail closed: without the catalog the detail cannot be shown safely.
      () => true,
    );
  }

  private dropPortalsBefore(point: number): void {
    for (const [name, portal] of this.portals) if (portal.boundAfter < point) this.portals.delete(name);
  }

  /**
   * The plan kept for these exact RowDescription bytes, if it still holds: same masking policy and
   * the same catalog entries for every table it names (a plan is a function of these alone).
   */
  private keptPlan(key: string | undefined): RowPlan | undefined {
    const kept = key === undefined ? undefined : this.plansByDescription.get(key);
    if (!kept || kept.masking !== this.masking || kept.hasColumnRules !== this.hasColumnRules) return undefined;
    for (const [oid, entry] of kept.tables) if (this.context.catalog.cached(oid) !== entry) return undefined;
    return kept.plan;
  }

  private keepPlan(key: string | undefined, fields: readonly FieldDescription[], plan: RowPlan): void {
    if (key === undefined) return;
    if (this.plansByDescription.size >= PLANS_KEPT) this.plansByDescription.clear();
    const tables = [...new Set(tablesOf(fields))].map((oid) => [oid, this.context.catalog.cached(oid)] as const);
    this.plansByDescription.set(key, { masking: this.masking, hasColumnRules: this.hasColumnRules, tables, plan });
  }

  private rowDescription(frame: Frame, head: Expectation | undefined): Promise<void> | undefined {
    // The same statement is described again and again (each Execute of it): its plan is kept by the description's bytes.
    const key = frame.body.length <= MAX_PLAN_KEY_BYTES ? frame.body.toString('latin1') : undefined;
    const kept = this.keptPlan(key);
    if (kept) {
      this.applyRowDescription(frame, head, kept);
      return undefined;
    }
    const fields = decodeRowDescription(frame);
    const apply = (): void => {
      const plan = planRows(fields, this.masking, this.context.catalog, this.hasColumnRules);
      this.keepPlan(key, fields, plan);
      this.applyRowDescription(frame, head, plan);
    };
    const missing = this.hasColumnRules ? tablesOf(fields).filter((oid) => this.context.catalog.cached(oid) === undefined) : [];
    if (missing.length === 0) {
      apply();
      return undefined;
    }
    // Column names come from the catalog; without them a masked column could not be recognised (fail closed).
    return this.context.catalog.load(missing).then(apply);
  }

  private applyRowDescription(frame: Frame, head: Expectation | undefined, plan: RowPlan): void {
    if (head?.kind === 'describe') {
      this.tracker.shift();
      if (head.target === 'P') this.portalPlans.set(head.name, plan);
      if (head.swallow) return;
    } else {
      this.currentPlan = plan;
    }
    this.sendClient(frame.raw, 'RowDescription');
  }

  /**
   * An upstream error or notice with the fields that can quote values masked by the detectors. A
   * field longer than `inlineWorkBytes` (an error can quote a whole value: `'…'::int`) is scanned in a
   * worker thread; one the workers could not scan is withheld.
   */
  private maskNotice(frame: Frame, type: number, withholdDetail = false): Buffer | Promise<Buffer> {
    const detecting = this.masking.detection.compiled.length > 0;
    if (!detecting && !withholdDetail) return frame.raw;
    const fields = decodeNoticeFields(frame);
    let changed = false;
    if (withholdDetail) {
      fields.set('D', 'detail withheld by the Custodian gateway: it quotes values of a table whose columns the policy masks');
      changed = true;
    }
    const scratch = new MaskingFindings();
    const long: (readonly [string, string])[] = [];
    for (const [code, value] of fields) {
      if (!detecting || !QUOTING_FIELDS.has(code)) continue;
      if (value.length > this.context.limits.inlineWorkBytes) {
        long.push([code, value]);
        continue;
      }
      const masked = this.masking.maskText(value, `error field ${code}`, scratch);
      if (masked !== value) {
        fields.set(code, masked);
        changed = true;
      }
    }
    const encoded = (): Buffer => {
      if (!changed) return frame.raw;
      return type === BackendType.ErrorResponse ? encodeErrorResponse(fields) : encodeNoticeResponse(fields);
    };
    if (long.length === 0) return encoded();
    const masking = this.masking;
    return (async () => {
      for (const [code, value] of long) {
        let masked: string;
        try {
          masked = (await this.context.offload.mask(this.session.id, masking, 'text', value, `error field ${code}`)).text;
        } catch (error) {
          if (!(error instanceof OffloadRefusal)) throw error;
          masked = `[withheld by the Custodian gateway: ${value.length} characters not scanned (${error.code})]`;
        }
        if (masked !== value) {
          fields.set(code, masked);
          changed = true;
        }
      }
      return encoded();
    })();
  }

  // ---------------------------------------------------------------------------------------------
  // Ending

  private fail(error: unknown, side: 'client' | 'upstream'): void {
    if (this.ended) return;
    const protocol = error instanceof WireProtocolError;
    const code = protocol ? error.code : ((error as { code?: string }).code ?? 'GATEWAY_INTERNAL_ERROR');
    const message = error instanceof Error ? error.message : String(error);
    this.context.logger.warn({ sessionId: this.session.id, side, code }, `postgres session failed: ${message}`);
    const limit = error instanceof SessionLimitError;
    const evidence = error instanceof PipelinedEvidenceError;
    const sqlState = limit ? SqlState.ProgramLimitExceeded : evidence ? sqlStateFor('EVIDENCE_UNAVAILABLE') : side === 'client' && protocol ? SqlState.ProtocolViolation : SqlState.ConnectionFailure;
    const text = limit ? `session limit: ${message}` : evidence ? message : side === 'client' ? `protocol violation: ${message}` : `the gateway ended the session: ${message}`;
    this.toClient.length = 0;
    this.toClientBytes = 0;
    this.toClientLabels.clear();
    this.sendClient(encodeErrorResponse({ severity: 'FATAL', code: sqlState, message: text }), 'ErrorResponse');
    this.flushClient();
    void this.end('error', code);
  }

  private async upstreamLost(): Promise<void> {
    if (this.ended) return;
    this.flushClient();
    this.sendClient(encodeErrorResponse({ severity: 'FATAL', code: SqlState.ConnectionFailure, message: 'the connection to the upstream database was lost' }), 'ErrorResponse');
    this.flushClient();
    await this.end('upstream-closed');
  }

  /** The session's access token expired (plus the allowed clock skew): tell the client why and end. */
  async tokenExpired(expiredAt: Date): Promise<void> {
    if (this.ended) return;
    this.flushClient();
    this.sendClient(
      encodeErrorResponse({ severity: 'FATAL', code: SqlState.InvalidAuthorizationSpecification, message: `the access token of this session expired at ${expiredAt.toISOString()}: reconnect with a fresh token` }),
      'ErrorResponse',
    );
    this.flushClient();
    await this.end('error', 'TOKEN_EXPIRED');
  }

  /**
   * Token introspection says the session's token is no longer active (revoked at the issuer), or
   * the issuer could not be asked (fail closed): the session ends as it does at the token's expiry.
   */
  async tokenInactive(error: { readonly code: string }): Promise<void> {
    if (this.ended) return;
    const unavailable = error.code === 'IDP_UNAVAILABLE';
    const message = unavailable
      ? 'the issuer could not confirm that the access token of this session is still active (introspection failed): reconnect with a fresh token'
      : `the access token of this session is no longer active (${error.code === 'TOKEN_INACTIVE' ? 'revoked at the issuer' : error.code}): reconnect with a fresh token`;
    this.context.logger.info({ sessionId: this.session.id, code: error.code }, 'postgres session ended: token no longer active');
    this.flushClient();
    this.sendClient(encodeErrorResponse({ severity: 'FATAL', code: SqlState.InvalidAuthorizationSpecification, message }), 'ErrorResponse');
    this.flushClient();
    await this.end('error', unavailable ? 'TOKEN_INTROSPECTION_UNAVAILABLE' : error.code === 'TOKEN_INACTIVE' ? 'TOKEN_INACTIVE' : error.code);
  }

  /** The gateway is shutting down: tell the client and end. */
  async shutdown(): Promise<void> {
    if (this.ended) return;
    this.flushClient();
    this.sendClient(encodeErrorResponse({ severity: 'FATAL', code: SqlState.AdminShutdown, message: 'the Custodian gateway is shutting down' }), 'ErrorResponse');
    this.flushClient();
    await this.end('shutdown');
  }

  private async end(reason: SessionCloseReason, errorCode?: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.idleTimer);
    this.flow.client.stop();
    this.flow.upstream.stop();
    this.commandAbort.abort();
    const queryRunning = this.tracker.length > 0;
    this.client.end();
    this.client.destroySoon();
    if (reason === 'client-closed' && queryRunning) {
      // A client gone mid-result: stop the query upstream rather than let it run to completion.
      await this.context.cancelUpstream().catch(() => undefined);
    }
    if (!this.upstreamSocket.destroyed) {
      this.upstreamSocket.end(encodeTerminate());
      this.upstreamSocket.destroySoon();
    }
    this.context.onEnded();
    await this.session.close(reason, errorCode);
  }

  /** Bytes this session holds right now (socket queues and partial messages): what bounded memory is about. */
  get bufferedBytes(): { clientWrite: number; clientRead: number; upstreamWrite: number; upstreamRead: number; pending: number } {
    return {
      clientWrite: this.client.writableLength,
      clientRead: this.client.readableLength + this.clientFramer.bufferedBytes,
      upstreamWrite: this.upstreamSocket.writableLength,
      upstreamRead: this.upstreamSocket.readableLength + this.upstreamFramer.bufferedBytes,
      pending: this.toClientBytes + this.toUpstreamBytes,
    };
  }

  /** For diagnostics and tests: the last transaction status upstream reported. */
  get transactionStatus(): TransactionStatus {
    return this.status;
  }
}

/** Unquoted identifiers (folded to lower case, as PostgreSQL does) and the contents of quoted ones. */
const IDENTIFIER_TOKENS = /"((?:[^"]|"")*)"|([\p{L}_][\p{L}\p{N}_$]*)/gu;

/**
 * The session's SQL prepared statements a text can name in `EXECUTE name` (sent to a worker with
 * the text, not the whole map). A name spelled some other way (Unicode escapes) is not found, and
 * `EXECUTE` of an unknown name is classified `utility` with a guarded flag: fail closed.
 */
function preparedNamedIn(sql: string, prepared: ReadonlyMap<string, SqlStatementClassification>): [string, SqlStatementClassification][] {
  if (prepared.size === 0 || !/execute/i.test(sql)) return [];
  const names = new Set<string>();
  for (const match of sql.matchAll(IDENTIFIER_TOKENS)) names.add(match[1] !== undefined ? match[1].replaceAll('""', '"') : match[2]!.toLowerCase());
  return [...prepared].filter(([name]) => names.has(name));
}

/** A classification made in a worker, as the event loop's classifier returns it. */
function fromPortable(portable: PortableClassification): SqlClassification {
  if (portable.ok) return portable;
  const { code, message, position } = portable.error;
  return { ok: false, error: new SqlClassificationError(code, message, position) };
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Events of a pipelined command could not be recorded: it cannot be refused in its place any more, so the session ends (nothing after it was sent). */
class PipelinedEvidenceError extends Error {
  override readonly name = 'PipelinedEvidenceError';
  readonly code = 'EVIDENCE_UNAVAILABLE';
  constructor(cause: unknown) {
    super(`command refused: the event store cannot record events (${cause instanceof Error ? cause.message : String(cause)}); this pipelined command and those after it were not run, and the session is closed`, { cause });
  }
}

/** A per-session limit that ends the session (54000): what was sent cannot be refused message by message. */
class SessionLimitError extends Error {
  override readonly name = 'SessionLimitError';
  readonly code = 'SESSION_LIMIT_EXCEEDED';
}

interface SyntaxErrorFields {
  /** 1-based character position, as PostgreSQL's ErrorResponse `P` field. */
  readonly position: string;
}

/**
 * A statement refused because the parser could not read it: PostgreSQL's SQLSTATE class (42601)
 * and the parser's position, so drivers and tools report it as the syntax error it is. The policy's
 * message stays (the parser's own could quote the input into the record).
 */
function syntaxErrorOf(decision: SqlDecision, sql: string, outcome: Extract<CommandOutcome, { forward: false }>): SyntaxErrorFields | undefined {
  const classification = decision.classification;
  if (classification.ok || classification.error.code !== 'SQL_PARSE_ERROR' || outcome.code !== 'POLICY_BLOCKED' || outcome.ruleId !== null) return undefined;
  const offset = classification.error.position;
  if (offset === undefined) return undefined;
  // The classifier counts UTF-16 units; PostgreSQL counts characters from 1.
  return { position: String([...sql.slice(0, offset)].length + 1) };
}

function summarizeLabels(labels: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  return [...counts].map(([name, count]) => (count > 1 ? `${name}*${count}` : name)).join(',');
}

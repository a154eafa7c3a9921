// The protocol-neutral session pipeline. A protocol adapter owns its wire (framing, TLS, the
// upstream login); this owns who the client is, whether each command may run, holding it for
// approval, and the session's evidence:
//
//   authenticate → openSession → (decide → issue → forward | refuse)* → frames / maskings → close
//
// Every adapter (PostgreSQL now; SSH, HTTP, Anthropic, MCP later) calls the same methods, so
// decisions, approvals, strict mode and the event stream look the same whatever the protocol.
// It knows no protocol and no command language: the adapter classifies and decides a command
// with a policy language plugin and hands the pipeline the command and its decision.
import {
  EventFactory,
  SystemClock,
  UuidV7Generator,
  streamName,
  eventJson,
  type Clock,
  type ConnectionRef,
  type CustodianEvent,
  type EventPayloads,
  type EventSource,
  type EventType,
  type Identity,
  type Protocol,
  type SessionClosed,
  type AuthenticationFailed,
  type CredentialInjected,
  type FrameRecorded,
} from '@custodian/event-contracts';
import { CredentialExposureScanner, attestCustody, type CustodySigningKey } from '@custodian/custody';
import { CommandEvidenceGate, PipelineRefusedError, type EvidencePipeline } from '@custodian/evidence-pipeline';
import {
  IdentityError,
  authenticationFailedPayload,
  authenticationSucceededPayload,
  type AccessTokenVerifier,
  type CredentialPresentation,
  type VerifiedIdentity,
} from '@custodian/identity';
import type { MaskingFindings, MaskingPolicy } from '@custodian/masking';
import { toPolicyDecidedPayload, type CompiledPolicy, type PolicyContext, type PolicyDecision, type PolicyLanguageName } from '@custodian/policy';
import { approvalBindingDigest, type ApprovalGate, type ApprovalOutcome } from './approval-gate.js';
import { PolicyMasking } from './masking-configuration.js';
import { SessionRefusal, type CommandRefusalCode } from './session-errors.js';
import { SessionRecorder } from './session-recorder.js';

/** Where the active policy comes from (a PolicyWatcher, a PolicyStore, or a fixed policy). */
/** Longest tool input kept in a `tool-use.emitted` event (the schema's limit). */
const MAX_TOOL_USE_INPUT_CHARS = 65_536;

export interface PolicySource {
  readonly policy: CompiledPolicy;
}

/** Where authentication failures go: rate-limited, one stream each (service-host's AuthenticationEventRecorder fits). */
export interface AuthenticationFailureSink {
  failed(payload: AuthenticationFailed, clientKey: string): Promise<void>;
}

export interface SessionPipelineOptions {
  /** Undefined when no issuer is configured: every login is refused (fail closed). */
  readonly verifier: AccessTokenVerifier | undefined;
  readonly policy: PolicySource;
  readonly evidence: EvidencePipeline;
  /** Strict mode (default true): a command is forwarded only once its command.issued and policy.decided are durable. */
  readonly strict?: boolean;
  /** The approvals workflow; without it, commands that need approval are refused. */
  readonly approvals?: ApprovalGate;
  /** Longest a client waits for an approval (the policy's timeout applies when shorter). Default 300 s. */
  readonly approvalWaitSeconds?: number;
  readonly authenticationFailures?: AuthenticationFailureSink;
  readonly source: EventSource;
  /** Key for `hmac` masking strategies (≥ 16 bytes). */
  readonly maskingKey: Uint8Array;
  readonly clock?: Clock;
  /** Token audiences accepted by this gateway (narrower than the issuer's, optional). */
  readonly audiences?: readonly string[];
  /** Most bytes of one frame kept in its frame.recorded event (default 64 KiB, at most 1 MiB); `truncated` marks the rest. */
  readonly maxFrameBytes?: number;
  /** Events waiting per session above which adapters stop reading (default 8 MiB). */
  readonly maxBacklogBytes?: number;
  /**
   * The gateway's Ed25519 key for custody statements: at the end of every session that injected
   * a credential, a signed statement of whether that credential appeared in any client-bound
   * byte or event of the session (custody.attested). Without it no statement is made.
   */
  readonly custodyKey?: CustodySigningKey;
}

export interface AuthenticationRequest {
  readonly protocol: Protocol;
  /** How the adapter received the token: as the protocol's password, a bearer header, … */
  readonly presentedAs: CredentialPresentation;
  /** The connection the client asked for (e.g. the PostgreSQL `database`). */
  readonly connection: string;
  /** Whether the adapter has a connection of that name configured. */
  readonly connectionExists: boolean;
  readonly token: string;
  readonly clientAddress: string;
  /** The client's unverified hint (e.g. the PostgreSQL startup `user`). */
  readonly claimedSubject?: string;
  readonly signal?: AbortSignal;
}

/** A client that proved an identity and may use the connection. */
export interface AuthorizedClient {
  readonly verified: VerifiedIdentity;
  readonly identity: Identity;
  readonly connection: ConnectionRef;
  readonly clientAddress: string;
  readonly presentedAs: CredentialPresentation;
  /**
   * For a token accepted by introspection (opaque): asks the issuer again whether it is still
   * active (see watchTokenActivity). Holds the token in memory for the session's life.
   */
  readonly tokenActivity?: TokenActivityCheck;
}

export interface TokenActivityCheck {
  readonly intervalMs: number;
  /** Resolves while the token is active; throws IdentityError (TOKEN_INACTIVE, IDP_UNAVAILABLE, …) otherwise. */
  stillActive(): Promise<void>;
}

export interface TokenActivityWatch {
  stop(): void;
}

/**
 * Asks the issuer every `tokenActivity.intervalMs` whether the session's token is still active and
 * calls `ended` once, with the IdentityError, when it is not (revoked) or when the issuer cannot be
 * asked (fail closed). The adapter then ends the session as it does at the token's expiry. Nothing
 * to watch (a JWT): a watch that does nothing.
 */
export function watchTokenActivity(authorized: AuthorizedClient, ended: (error: IdentityError) => void): TokenActivityWatch {
  const check = authorized.tokenActivity;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  if (!check) return { stop: () => undefined };
  const schedule = (): void => {
    timer = setTimeout(() => void run(), check.intervalMs);
    timer.unref();
  };
  const run = async (): Promise<void> => {
    try {
      await check.stillActive();
    } catch (error) {
      if (stopped) return;
      stopped = true;
      ended(error instanceof IdentityError ? error : new IdentityError('IDENTITY_INTERNAL_ERROR', 'the token could not be checked again'));
      return;
    }
    if (!stopped) schedule();
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export interface SessionClient {
  readonly address: string;
  readonly application?: string;
  readonly tls?: boolean;
}

export type CommandKind = EventPayloads['command.issued']['kind'];

/** One command of a session, classified and decided by the adapter with a policy language. */
export interface SessionCommand {
  /** The policy language that decided it (`sql`, `shell`, `http`, `mcp`, `llm`). */
  readonly language: PolicyLanguageName;
  readonly kind: CommandKind;
  /**
   * The full command as events record it and approvers see it: literal values kept, masked only
   * where a detector or a column rule says so (and credentials, e.g. `PASSWORD '…'`, removed).
   */
  readonly text: string;
  /** Bound values (e.g. PostgreSQL Bind), masked like the text. */
  readonly parameters?: readonly (string | null)[];
  /** The language's literal-free shape of the command (kinds, objects, flags) for command.issued. */
  readonly summary?: Record<string, unknown>;
  readonly decision: PolicyDecision;
  /** Aborted when the client goes away (cancels a pending approval). */
  readonly signal?: AbortSignal;
}

export interface FrameOptions {
  /** Channel of a multiplexed protocol (SSH channel, Kubernetes stream, HTTP/2 stream). */
  readonly channel?: number;
  /** The frame's length as received, when `data` is what was forwarded after masking. */
  readonly byteLength?: number;
  /**
   * Protocol metadata the adapter describes rather than forwards byte for byte (an SSH exit status,
   * a terminal size): recorded for replay, but not part of the client-bound bytes the custody
   * statement digests (the event itself is still scanned for the credential like every event).
   */
  readonly control?: boolean;
}

export type CommandOutcome =
  | { readonly forward: true; readonly commandId: string; readonly via: 'policy' | 'approval' | 'grant'; /** The approval that granted it (via 'approval'). */ readonly approvalId?: string }
  | { readonly forward: false; readonly commandId: string; readonly code: CommandRefusalCode; readonly message: string; readonly ruleId: string | null };

export type FrameDirection = FrameRecorded['direction'];
export type SessionCloseReason = SessionClosed['reason'];

const MAX_TEXT = 65_536;
const FRAME_LIMIT_CAP = 1024 * 1024;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export class SessionPipeline {
  readonly strict: boolean;
  private readonly factory: EventFactory;
  private readonly clock: Clock;
  private readonly ids: UuidV7Generator;
  private readonly masking: PolicyMasking;
  private readonly approvalWaitSeconds: number;
  readonly maxFrameBytes: number;

  constructor(private readonly options: SessionPipelineOptions) {
    this.strict = options.strict ?? true;
    this.clock = options.clock ?? new SystemClock();
    this.factory = new EventFactory(options.source, this.clock);
    this.ids = new UuidV7Generator(this.clock);
    this.masking = new PolicyMasking(options.maskingKey);
    this.approvalWaitSeconds = options.approvalWaitSeconds ?? 300;
    this.maxFrameBytes = Math.min(options.maxFrameBytes ?? 64 * 1024, FRAME_LIMIT_CAP);
  }

  get policy(): CompiledPolicy {
    return this.options.policy.policy;
  }

  /** The masking rules of the active policy. */
  get maskingPolicy(): MaskingPolicy {
    return this.masking.for(this.policy);
  }

  /**
   * Verifies the token and checks that the identity may use the connection. Refusals are
   * recorded (authentication.failed) and thrown as SessionRefusal; the token is never recorded.
   */
  async authenticate(request: AuthenticationRequest): Promise<AuthorizedClient> {
    // The connection as asked for (clipped to the schema's 200 characters; it may not exist): a connection's evidence selects the attempt by it.
    const asked: ConnectionRef | undefined = request.connection.length > 0 ? { name: request.connection.slice(0, 200), protocol: request.protocol } : undefined;
    const attempt = {
      method: 'oidc-access-token' as const,
      presentedAs: request.presentedAs,
      clientAddress: request.clientAddress,
      protocol: request.protocol,
      ...(asked ? { connection: asked } : {}),
      ...(request.claimedSubject === undefined ? {} : { claimedSubject: request.claimedSubject }),
    };
    const { verifier } = this.options;
    let verified: VerifiedIdentity;
    try {
      if (!verifier) throw new IdentityError('IDP_UNAVAILABLE', 'no identity issuer is configured: every login is refused');
      verified = await verifier.verify(request.token, { ...(this.options.audiences ? { audiences: this.options.audiences } : {}), ...(request.signal ? { signal: request.signal } : {}) });
    } catch (error) {
      const payload = authenticationFailedPayload(error, attempt);
      await this.recordAuthenticationFailure(payload);
      throw new SessionRefusal('AUTHENTICATION_FAILED', `authentication failed: ${payload.reason} (${payload.reasonCode})`, payload.reasonCode, { cause: error });
    }
    const identity = verified.identity;
    const connection: ConnectionRef = { name: request.connection, protocol: request.protocol };
    const authorization = request.connectionExists
      ? this.policy.authorizeConnection({ identity, connection: request.connection, protocol: request.protocol })
      : { permitted: false, reason: `no connection named ${JSON.stringify(request.connection.slice(0, 100))} is configured` };
    if (!authorization.permitted) {
      await this.recordAuthenticationFailure({
        method: verified.method,
        presentedAs: request.presentedAs,
        protocol: request.protocol,
        ...(asked ? { connection: asked } : {}),
        clientAddress: request.clientAddress,
        reasonCode: 'CONNECTION_NOT_PERMITTED',
        reason: clip(authorization.reason, 500),
        claimedSubject: identity.subject.slice(0, 256),
      });
      // One message for "no such connection" and "not yours": a client cannot probe which exist.
      throw new SessionRefusal('CONNECTION_NOT_PERMITTED', `identity ${identity.subject} may not use connection ${JSON.stringify(request.connection.slice(0, 100))} (or it does not exist)`);
    }
    const token = request.token;
    const recheck = verified.recheckIntervalMs;
    const stillActive = verifier?.stillActive?.bind(verifier);
    const audiences = this.options.audiences;
    const tokenActivity: TokenActivityCheck | undefined =
      recheck !== undefined && stillActive ? { intervalMs: recheck, stillActive: () => stillActive(token, audiences ? { audiences } : {}) } : undefined;
    return { verified, identity, connection, clientAddress: request.clientAddress, presentedAs: request.presentedAs, ...(tokenActivity ? { tokenActivity } : {}) };
  }

  /** Records a client that broke the protocol before (or while) authenticating. */
  async recordProtocolViolation(protocol: Protocol, clientAddress: string, reasonCode: string, reason: string, claimedSubject?: string): Promise<void> {
    await this.recordAuthenticationFailure({
      method: 'oidc-access-token',
      protocol,
      clientAddress,
      reasonCode,
      reason: clip(reason, 500),
      ...(claimedSubject ? { claimedSubject: claimedSubject.slice(0, 256) } : {}),
    });
  }

  private async recordAuthenticationFailure(payload: AuthenticationFailed): Promise<void> {
    const sink = this.options.authenticationFailures;
    if (!sink) return;
    const clientKey = payload.clientAddress.replace(/:\d+$/, '');
    await sink.failed(payload, clientKey).catch(() => undefined);
  }

  /**
   * Opens the session: authentication.succeeded and session.opened start its stream. In strict
   * mode they must be durable first (else SessionRefusal EVIDENCE_UNAVAILABLE).
   */
  async openSession(client: AuthorizedClient, details: SessionClient): Promise<PipelineSession> {
    const sessionId = this.ids.next();
    const recorder = new SessionRecorder({ evidence: this.options.evidence, ...(this.options.maxBacklogBytes ? { maxBacklogBytes: this.options.maxBacklogBytes } : {}) });
    const session = new PipelineSession(this, {
      sessionId,
      client,
      recorder,
      factory: this.factory,
      clock: this.clock,
      ids: this.ids,
      approvals: this.options.approvals,
      approvalWaitSeconds: this.approvalWaitSeconds,
      custodyKey: this.options.custodyKey,
      instance: this.options.source.instance,
      // Strict: the command waits, so its events go at once; relaxed: they may share an append with later ones.
      gate: new CommandEvidenceGate(recorder.asPipeline({ urgent: this.strict }), { strict: this.strict }),
    });
    const opened = session.start(details);
    if (!this.strict) {
      // Relaxed: the session goes on while the pipeline refuses; the recorder keeps the events and
      // retries them, and the pipeline's refusal ledger records the refusal. Never an unhandled rejection.
      opened.catch(() => undefined);
      return session;
    }
    try {
      await opened;
    } catch (error) {
      recorder.abandon();
      throw new SessionRefusal('EVIDENCE_UNAVAILABLE', `session refused: its events cannot be recorded (${error instanceof Error ? error.message : String(error)})`, undefined, { cause: error });
    }
    return session;
  }
}

interface SessionParts {
  readonly sessionId: string;
  readonly client: AuthorizedClient;
  readonly recorder: SessionRecorder;
  readonly factory: EventFactory;
  readonly clock: Clock;
  readonly ids: UuidV7Generator;
  readonly approvals: ApprovalGate | undefined;
  readonly approvalWaitSeconds: number;
  readonly gate: CommandEvidenceGate;
  readonly custodyKey: CustodySigningKey | undefined;
  readonly instance: string;
}

/** Most events / client bytes kept from before the credential was injected, to scan them then. */
const PRE_INJECTION_EVENTS = 64;
const PRE_INJECTION_CLIENT_BYTES = 1024 * 1024;

/** The custody scan of one session: from the credential's injection to the session's end. */
interface CustodyWatch {
  readonly scanner: CredentialExposureScanner;
  readonly credentialRef: string;
  readonly method: CredentialInjected['method'];
}

/** One client session bound to an identity and a connection; the adapter drives it. */
export class PipelineSession {
  readonly id: string;
  readonly identity: Identity;
  readonly connection: ConnectionRef;
  readonly stream: string;
  private sequence = 0;
  private readonly openedAtMicros: bigint;
  private readonly openedAtMs = Date.now();
  private readonly counters = { frames: { clientToUpstream: 0, upstreamToClient: 0 }, bytes: { clientToUpstream: 0, upstreamToClient: 0 } };
  private closed = false;
  private readonly openedAt = new Date();
  private custody: CustodyWatch | undefined;
  /** Until a credential is injected: what a scan must cover then (bounded; see credentialInjected). */
  private preInjection: { events: string[]; clientBytes: Buffer[]; clientByteCount: number; overflow: boolean } | undefined = { events: [], clientBytes: [], clientByteCount: 0, overflow: false };

  constructor(
    private readonly pipeline: SessionPipeline,
    private readonly parts: SessionParts,
  ) {
    this.id = parts.sessionId;
    this.identity = parts.client.identity;
    this.connection = parts.client.connection;
    this.stream = streamName('session', this.id);
    this.openedAtMicros = parts.clock.nowMicros();
  }

  /** Whether a held command can wait for approval here (an approvals workflow is configured). */
  get canHoldForApproval(): boolean {
    return this.parts.approvals !== undefined;
  }

  /** The active policy (it follows reloads); adapters decide commands with it. */
  get policy(): CompiledPolicy {
    return this.pipeline.policy;
  }

  get policyContext(): PolicyContext {
    return { identity: this.identity, connection: this.connection.name, protocol: this.connection.protocol };
  }

  /** The masking rules in force now (they follow policy reloads). */
  get masking(): MaskingPolicy {
    return this.pipeline.maskingPolicy;
  }

  get maxFrameBytes(): number {
    return this.pipeline.maxFrameBytes;
  }

  /** Whether the active policy masks any column by name (adapters then resolve column names). */
  get hasColumnRules(): boolean {
    return this.pipeline.policy.masking.some((rule) => (rule.columns?.length ?? 0) > 0);
  }

  /** True while the session's events wait for the pipeline: adapters stop reading until `whenRecorderReady()`. */
  get recorderSaturated(): boolean {
    return this.parts.recorder.saturated;
  }

  whenRecorderReady(): Promise<void> {
    return this.parts.recorder.whenBelowLimit();
  }

  /**
   * Resolves true once every event the session recorded so far is durable (false after
   * `timeoutMs`). For adapters whose client can ask for the evidence as soon as it has an answer
   * (a request/response protocol answering a refusal): answer after this in strict mode.
   */
  whenRecorded(timeoutMs = 5_000): Promise<boolean> {
    return this.parts.recorder.idle(timeoutMs);
  }

  private draft<T extends EventType>(type: T, payload: EventPayloads[T], causationId?: string, base64?: { readonly field: string; readonly bytes: Uint8Array }): CustodianEvent {
    const event = this.parts.factory.create({
      type,
      stream: this.stream,
      sequence: this.sequence++,
      identity: this.identity,
      payload,
      correlationId: this.id,
      ...(causationId === undefined ? {} : { causationId }),
      ...(base64 === undefined ? {} : { base64 }),
    }) as CustodianEvent;
    if (type !== 'custody.attested') this.watchEvent(event);
    return event;
  }

  /** Every event of the stream (but the statement itself) is scanned for the injected credential. */
  private watchEvent(event: CustodianEvent): void {
    if (!this.custody && !this.preInjection) return;
    const serialized = scannedForm(event);
    if (this.custody) this.custody.scanner.scanEvent(serialized);
    else if (this.preInjection) {
      if (this.preInjection.events.length < PRE_INJECTION_EVENTS) this.preInjection.events.push(serialized);
      else this.preInjection.overflow = true;
    }
  }

  private watchClientBytes(data: Uint8Array): void {
    if (this.custody) this.custody.scanner.scanClientBytes(data);
    else if (this.preInjection) {
      if (this.preInjection.clientByteCount + data.length <= PRE_INJECTION_CLIENT_BYTES) {
        this.preInjection.clientBytes.push(Buffer.from(data));
        this.preInjection.clientByteCount += data.length;
      } else this.preInjection.overflow = true;
    }
  }

  /** Events nobody waits for (frames, maskings) linger briefly to share an append; `urgent` sends at once. */
  private record<T extends EventType>(type: T, payload: EventPayloads[T], options: { causationId?: string; urgent?: boolean; base64?: { readonly field: string; readonly bytes: Uint8Array } } = {}): Promise<void> {
    return this.parts.recorder.enqueue([this.draft(type, payload, options.causationId, options.base64)], { urgent: options.urgent ?? false });
  }

  /** @internal Called by SessionPipeline.openSession. */
  start(details: SessionClient): Promise<void> {
    const { client } = this.parts;
    const succeeded = this.draft(
      'authentication.succeeded',
      authenticationSucceededPayload(client.verified, { clientAddress: client.clientAddress, protocol: this.connection.protocol, connection: this.connection, sessionId: this.id, presentedAs: client.presentedAs }),
    );
    const opened = this.draft(
      'session.opened',
      {
        sessionId: this.id,
        connection: this.connection,
        client: {
          address: details.address,
          ...(details.application ? { application: details.application.slice(0, 256) } : {}),
          ...(details.tls === undefined ? {} : { tls: details.tls }),
        },
      },
      succeeded.id,
    );
    return this.parts.recorder.enqueue([succeeded, opened]);
  }

  /** A block the gateway decides itself (a protocol feature that bypasses classification, bytes it cannot decode), recorded like a policy decision. */
  gatewayBlock(language: PolicyLanguageName, ruleId: string, reason: string, clientMessage: string): PolicyDecision {
    return this.pipeline.policy.gatewayBlock(language, ruleId, reason, clientMessage);
  }

  /**
   * Records the command (command.issued, policy.decided) and resolves whether to forward it:
   * allowed commands after their events are durable (strict mode); held ones once approved;
   * blocked, denied, expired ones never, with a message for the client naming the rule.
   */
  async issue(command: SessionCommand): Promise<CommandOutcome> {
    const { commandId, issued, decided } = this.draftCommand(command);
    const { decision } = command;
    const refuse = (code: CommandRefusalCode, message: string): CommandOutcome => ({ forward: false, commandId, code, message, ruleId: decision.ruleId });

    if (decision.decision === 'block') {
      // Nothing is forwarded, so nothing waits for durability; the events still go in order.
      void this.parts.recorder.enqueue([issued, decided]).catch(() => undefined);
      const rule = decision.ruleId === null ? 'the default deny' : `rule ${decision.ruleId}`;
      return refuse('POLICY_BLOCKED', `${decision.clientMessage ?? 'Blocked by policy.'} (${rule})`);
    }
    try {
      await this.parts.gate.beforeForward([issued, decided]);
    } catch (error) {
      return refuse('EVIDENCE_UNAVAILABLE', evidenceMessage(error));
    }
    if (decision.decision === 'allow') return { forward: true, commandId, via: 'policy' };
    return this.holdForApproval(command, commandId, decision, refuse);
  }

  /**
   * An allowed command of a client that pipelines (sends the next commands before this one's
   * result): its events are queued now, and `durable` resolves when the command may reach the
   * target (strict: its events are durable; relaxed: at once). The adapter keeps reading and
   * deciding the next commands meanwhile, so that one group commit covers many of them, and
   * writes this command to the target only after `durable` resolved. When `durable` rejects, the
   * command can no longer be refused in its place: the adapter ends the session (fail closed).
   */
  issueAllowed(command: SessionCommand): { readonly commandId: string; readonly durable: Promise<void> } {
    if (command.decision.decision !== 'allow') throw new TypeError(`issueAllowed takes allowed commands only (got ${command.decision.decision})`);
    const { commandId, issued, decided } = this.draftCommand(command);
    const durable = this.parts.gate.beforeForward([issued, decided]);
    // The adapter awaits it later; a rejection before then is not unhandled.
    durable.catch(() => undefined);
    return { commandId, durable };
  }

  private draftCommand(command: SessionCommand): { readonly commandId: string; readonly issued: CustodianEvent; readonly decided: CustodianEvent } {
    const commandId = this.parts.ids.next();
    const { decision } = command;
    const issued = this.draft('command.issued', {
      sessionId: this.id,
      commandId,
      kind: command.kind,
      text: clip(command.text, MAX_TEXT),
      ...(command.parameters ? { parameters: boundParameters(command.parameters) } : {}),
      ...(command.summary ? { classification: { language: command.language, ...command.summary } } : { classification: { language: command.language } }),
    });
    const decided = this.draft('policy.decided', toPolicyDecidedPayload(decision, { sessionId: this.id, commandId }), issued.id);
    return { commandId, issued, decided };
  }

  private async holdForApproval(
    command: SessionCommand,
    commandId: string,
    decision: PolicyDecision,
    refuse: (code: CommandRefusalCode, message: string) => CommandOutcome,
  ): Promise<CommandOutcome> {
    const { approvals } = this.parts;
    const requirement = decision.approval;
    const ruleId = decision.ruleId ?? 'custodian:approval';
    if (!approvals || !requirement) {
      return refuse('APPROVAL_UNAVAILABLE', `This command needs approval (rule ${ruleId}), but no approval workflow is configured on this gateway; it was not run.`);
    }
    try {
      const grant = await approvals.activeGrant(this.identity, this.connection.name, ruleId, decision.policy);
      if (grant) return { forward: true, commandId, via: 'grant' };
    } catch {
      return refuse('APPROVAL_UNAVAILABLE', `This command needs approval (rule ${ruleId}), but the approval workflow is unavailable; it was not run.`);
    }
    // Approvers see (and the digest binds) the full masked text and parameters, never a clipped copy:
    // a request too large to show is refused by the workflow, so the command is not run.
    const timeoutSeconds = Math.max(1, Math.min(requirement.timeoutSeconds, this.parts.approvalWaitSeconds));
    const controller = new AbortController();
    let timedOut = false;
    const onClientGone = (): void => controller.abort();
    command.signal?.addEventListener('abort', onClientGone, { once: true });
    // A safety net in case the workflow never answers: the client is never held past the timeout (+2 s grace).
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, (timeoutSeconds + 2) * 1000);
    let outcome: ApprovalOutcome;
    // Approvers see the whole command, never a clipped one (the workflow refuses what it cannot show in full).
    const commandDigest = approvalBindingDigest({
      identity: this.identity,
      connection: this.connection,
      language: command.language,
      command: command.text,
      ...(command.parameters ? { parameters: command.parameters } : {}),
      policy: decision.policy,
    });
    const approvalId = this.parts.ids.next();
    try {
      outcome = await approvals.request(
        {
          approvalId,
          sessionId: this.id,
          commandId,
          requester: this.identity,
          connection: this.connection,
          command: command.text,
          language: command.language,
          ...(command.parameters ? { parameters: command.parameters } : {}),
          policy: decision.policy,
          commandDigest,
          ruleId,
          approverGroups: requirement.approverGroups,
          required: requirement.required,
          timeoutSeconds,
          grantScope: requirement.grant === 'window' && requirement.windowSeconds !== undefined ? { kind: 'window', windowSeconds: requirement.windowSeconds } : { kind: 'once' },
        },
        controller.signal,
      );
    } catch {
      return refuse('APPROVAL_UNAVAILABLE', `This command needs approval (rule ${ruleId}), but the request could not be recorded; it was not run.`);
    } finally {
      clearTimeout(timer);
      command.signal?.removeEventListener('abort', onClientGone);
    }
    switch (outcome.outcome) {
      case 'granted':
        // The approvers approved exactly this identity, connection, text, parameters and policy version.
        if (outcome.commandDigest !== commandDigest) return refuse('APPROVAL_DENIED', `The approval granted (rule ${ruleId}) is for a different command than this one; it was not run.`);
        return { forward: true, commandId, via: 'approval', approvalId };
      case 'denied':
        return refuse('APPROVAL_DENIED', `Approval denied by ${outcome.approver.subject} (rule ${ruleId}): ${clip(outcome.justification, 500)}`);
      case 'expired':
        return refuse('APPROVAL_EXPIRED', `Approval was not granted within ${timeoutSeconds} s (rule ${ruleId}); the command was not run.`);
      case 'cancelled':
        if (timedOut) return refuse('APPROVAL_EXPIRED', `Approval was not granted within ${timeoutSeconds} s (rule ${ruleId}); the command was not run.`);
        return refuse('APPROVAL_CANCELLED', `The approval request was cancelled (${outcome.reason}); the command was not run.`);
    }
  }

  /**
   * Records bytes that crossed the gateway, as forwarded after masking (`data`; beyond maxFrameBytes
   * it is cut and marked truncated). `byteLength` is the frame's length as received.
   */
  recordFrame(direction: FrameDirection, messageType: string, data: Uint8Array, options: FrameOptions = {}): void {
    if (this.closed) return;
    const byteLength = options.byteLength ?? data.length;
    const key = direction === 'client-to-upstream' ? 'clientToUpstream' : 'upstreamToClient';
    // The whole frame, as the client got it: the custody scan and digest cover every client-bound byte.
    if (direction === 'upstream-to-client' && options.control !== true) this.watchClientBytes(data);
    this.counters.frames[key] += 1;
    this.counters.bytes[key] += byteLength;
    const limit = this.maxFrameBytes;
    const kept = data.length > limit ? data.subarray(0, limit) : data;
    void this.record(
      'frame.recorded',
      {
        sessionId: this.id,
        direction,
        offsetMicros: Number(this.parts.clock.nowMicros() - this.openedAtMicros),
        messageType: messageType.slice(0, 64),
        ...(options.channel === undefined ? {} : { channel: options.channel }),
        // The factory encodes `kept` here (and writes it into the event's JSON without an escape scan).
        data: '',
        byteLength,
        ...(data.length > limit ? { truncated: true } : {}),
      },
      { base64: { field: 'data', bytes: kept } },
    ).catch(() => undefined);
  }

  /**
   * Records a tool call a model made in its answer to `commandId` (an action the agent runs
   * elsewhere): the tool's name and its input as the client received it, after masking (cut at
   * 65,536 characters). Adapters of model APIs call it once per call, after the call's bytes went out.
   */
  recordToolUse(commandId: string | undefined, call: { readonly id: string; readonly name: string; readonly maskedInput: string }): void {
    if (this.closed) return;
    const cut = call.maskedInput.length > MAX_TOOL_USE_INPUT_CHARS;
    void this.record('tool-use.emitted', {
      sessionId: this.id,
      ...(commandId ? { commandId } : {}),
      toolUseId: (call.id || 'unknown').slice(0, 200),
      name: (call.name || 'unknown').slice(0, 200),
      input: cut ? call.maskedInput.slice(0, MAX_TOOL_USE_INPUT_CHARS) : call.maskedInput,
      ...(cut ? { truncated: true } : {}),
    }).catch(() => undefined);
  }

  /** Records what was masked for a command (nothing when nothing was). */
  recordMasked(commandId: string | undefined, findings: MaskingFindings): void {
    const maskings = findings.toDataMaskedMaskings();
    if (!maskings || this.closed) return;
    void this.record('data.masked', { sessionId: this.id, ...(commandId ? { commandId } : {}), maskings }).catch(() => undefined);
  }

  /**
   * The adapter logged in upstream with the credential it holds (`credentialRef` names it, never
   * the value). With `secret` (the value used, dropped by the adapter right after), every
   * client-bound byte and every event of the session is scanned for it from now on, and for what
   * came before (adapters inject before their first client-bound frame; what an adapter sends
   * earlier is kept up to 1 MiB / 64 events to scan here, and beyond that the statement cannot
   * be made). At close a signed custody statement says whether it was ever exposed.
   */
  credentialInjected(credentialRef: string, method: CredentialInjected['method'], secret?: Uint8Array | string): void {
    const pending = this.preInjection;
    this.preInjection = undefined;
    if (secret !== undefined && this.parts.custodyKey && !this.custody && pending && !pending.overflow && !this.closed) {
      const value = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
      if (value.length > 0) {
        const scanner = new CredentialExposureScanner([value]);
        for (const chunk of pending.clientBytes) scanner.scanClientBytes(chunk);
        for (const event of pending.events) scanner.scanEvent(event);
        this.custody = { scanner, credentialRef: credentialRef.slice(0, 500), method };
      }
    }
    void this.record('credential.injected', { sessionId: this.id, connection: this.connection, credentialRef: credentialRef.slice(0, 500), method }).catch(() => undefined);
  }

  /** The signed custody statement, last in the stream (after session.closed, whose bytes it covers). */
  private attestCustody(): void {
    const { custody } = this;
    const key = this.parts.custodyKey;
    if (!custody || !key) return;
    this.custody = undefined;
    try {
      const { payload } = attestCustody(
        {
          sessionId: this.id,
          identity: this.identity,
          connection: this.connection,
          credentialRef: custody.credentialRef,
          method: custody.method,
          scan: custody.scanner.finish(),
          window: { openedAt: this.openedAt.toISOString(), closedAt: new Date().toISOString() },
          gateway: { instance: this.parts.instance },
        },
        key,
      );
      void this.record('custody.attested', payload, { urgent: true }).catch(() => undefined);
    } catch {
      // No statement (e.g. a credential reference the statement format cannot name): the stream
      // then shows credential.injected without custody.attested, which evidence treats as a gap.
    }
  }

  /** Ends the session: session.closed, then waits (bounded) for its events to be durable. Idempotent. */
  async close(reason: SessionCloseReason, errorCode?: string): Promise<void> {
    if (this.closed) return;
    this.preInjection = undefined;
    void this.record(
      'session.closed',
      {
      sessionId: this.id,
      reason,
      durationMs: Math.max(0, Date.now() - this.openedAtMs),
      frames: { ...this.counters.frames },
      bytes: { ...this.counters.bytes },
        ...(errorCode ? { errorCode } : {}),
      },
      { urgent: true },
    ).catch(() => undefined);
    this.attestCustody();
    this.closed = true;
    const drained = await this.parts.recorder.idle(10_000);
    if (!drained) this.parts.recorder.abandon();
  }
}

/**
 * An event as the custody scan reads it: its JSON, except that a client-bound frame's `data` is
 * left out. Those bytes are the ones scanClientBytes already read whole (before clipping), and
 * their base64 in the event holds the credential exactly when they do, so reading them twice
 * would only cost (a large result is every byte twice over).
 */
function scannedForm(event: CustodianEvent): string {
  if (event.type === 'frame.recorded' && event.payload.direction === 'upstream-to-client') return JSON.stringify({ ...event, payload: { ...event.payload, data: '' } });
  return eventJson(event);
}

/** Bound values as events and approvers get them: at most 65,535 (the PostgreSQL maximum), each clipped. */
function boundParameters(parameters: readonly (string | null)[]): (string | null)[] {
  return parameters.slice(0, 65_535).map((p) => (p === null ? null : clip(p, 4096)));
}

function evidenceMessage(error: unknown): string {
  if (error instanceof PipelineRefusedError) return `${error.message} (${error.code}); the command was not run.`;
  return `Command refused: its events could not be recorded (${error instanceof Error ? error.message : String(error)}); the command was not run.`;
}

// What a protocol adapter supplies to run the conformance suite: protocol things only. Everything
// else (event store, evidence pipeline, approvals, identity provider, policy document, secrets,
// checks) is the suite's, so that every protocol is held to the same observations.
import type { CustodySigningKey } from '@custodian/custody';
import type { EventSource, Protocol } from '@custodian/event-contracts';
import type { EvidencePipeline } from '@custodian/evidence-pipeline';
import type { ApprovalGate } from '@custodian/session-pipeline';

/** A rule's `match` mapping in the policy file (in the protocol's language), e.g. `{ sql: { kinds: [ddl] } }`. */
export type PolicyMatch = Readonly<Record<string, unknown>>;

/**
 * The protocol's half of the suite's policy. The suite writes the rules around these matches
 * (ids, decisions, messages, approval settings, masking) in the order blocked, held, allowed,
 * behind a default deny.
 */
export interface ConformancePolicyFragment {
  /** Must match `commands.allowed(…)` and `commands.pii()` (and no blocked or held command). */
  readonly allowed: PolicyMatch;
  /** Must match `commands.blocked(…)`. */
  readonly blocked: PolicyMatch;
  /** Must match `commands.held(…)`. */
  readonly held: PolicyMatch;
}

/**
 * Commands in the protocol's own form. `marker` is `[a-z0-9_]{6,40}` (fits an identifier, a
 * path segment, a shell word); it must appear in the command as the upstream receives it, so that
 * `reachedUpstream(marker)` can tell whether it got there. Each call must make a command that the
 * upstream can run more than once (several tests use the same shape with new markers).
 */
export interface ConformanceCommands {
  /** Allowed by policy; succeeds upstream. */
  allowed(marker: string): string;
  /** Blocked by policy; would succeed upstream if it got there. */
  blocked(marker: string): string;
  /** Needs approval; succeeds upstream once approved. */
  held(marker: string): string;
  /** Allowed; its result contains the PII value the upstream was seeded with (`ConformanceUpstreamSetup.piiValue`). */
  pii(): string;
}

/** What the suite hands the fixture to set the upstream up with (once per suite run). */
export interface ConformanceUpstreamSetup {
  /** The secret the gateway must hold for the upstream login (the upstream must accept it, and only the gateway may know it). */
  readonly credential: string;
  /** An e-mail address the upstream must return in the result of `commands.pii()`. */
  readonly piiValue: string;
}

/** Where the gateway writes its log lines (the suite keeps them and scans them for secrets). */
export interface ConformanceLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What the suite gives each gateway it asks the fixture to start. */
export interface ConformanceEnvironment {
  /** The whole policy document (YAML): the fixture loads it as the gateway's policy. */
  readonly policyYaml: string;
  /** Strict mode (commands wait for their evidence) or relaxed. */
  readonly strict: boolean;
  /** The evidence pipeline: a StoreEvidencePipeline over the suite's SQLite event store, which the suite can make refuse. */
  readonly evidence: EvidencePipeline;
  /** The approvals workflow (EventSourcedApprovalGate over the same store). */
  readonly approvals: ApprovalGate;
  /** Longest approval wait the gateway allows (also in the policy's held rule). */
  readonly approvalWaitSeconds: number;
  /** The OpenID issuer whose access tokens clients present, and the audience they carry. */
  readonly issuer: { readonly issuer: string; readonly audience: string };
  readonly logger: ConformanceLogger;
  /** `source` of the gateway's events. */
  readonly source: EventSource;
  /** Where the held credential comes from, as events may name it (e.g. `env:CONFORMANCE_UPSTREAM_SECRET`). */
  readonly credentialRef: string;
  /** The gateway's Ed25519 key for custody statements; the suite trusts only this key. */
  readonly custodyKey: CustodySigningKey;
}

/** What the client saw for one command. */
export interface ConformanceReply {
  /** The command succeeded as far as the client can tell. */
  readonly ok: boolean;
  /** What the client shows: results, or the error (message and codes). */
  readonly output: string;
}

/** A real client of the protocol, with one session open through the gateway. */
export interface ConformanceClient {
  /** Runs one command and resolves with what the client saw; never rejects (a lost connection is `ok: false`). */
  run(command: string): Promise<ConformanceReply>;
  /** Every byte the gateway sent to this client so far (as on the wire). */
  clientBound(): Buffer;
  /** Ends the session the protocol's normal way. */
  close(): Promise<void>;
  /** Vanishes without a goodbye (reset), e.g. while a command is held. */
  disconnect(): void;
}

export interface ConformanceGateway {
  /** Opens a session with the OIDC access token; rejects when the gateway refuses it. */
  connect(token: string): Promise<ConformanceClient>;
  stop(): Promise<void>;
}

export interface GatewayConformanceFixture {
  readonly protocol: Protocol;
  /** OCSF class its `command.issued` events map to: 6005 Datastore, 4007 SSH, 4002 HTTP, 6003 API Activity. */
  readonly ocsfClassUid: number;
  /**
   * Commands the adapter issues for a session before the client's first `run()` (default 0).
   * Kubernetes: the exec that starts the shell whose stdin lines are then decided one by one.
   */
  readonly sessionCommands?: number;
  readonly policy: ConformancePolicyFragment;
  readonly commands: ConformanceCommands;
  /** Starts the real upstream (once): it accepts `setup.credential` and returns `setup.piiValue` for `commands.pii()`. */
  startUpstream(setup: ConformanceUpstreamSetup): Promise<void>;
  /** Starts a gateway in front of the upstream (the suite runs a strict and a relaxed one side by side). */
  startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway>;
  /**
   * Whether a command carrying `marker` reached the upstream, observed at the upstream (its
   * statement log, request log, command history). Must account for everything the upstream
   * received before the call.
   */
  reachedUpstream(marker: string): Promise<boolean>;
  /** Stops the upstream and removes what startUpstream created. */
  stop(): Promise<void>;
}

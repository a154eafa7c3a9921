// The gateway core: what every protocol listener shares, composed once at start-up from the shared
// `gateways.*` settings. One policy (hot-reloaded, each activation recorded as `policy.activated`),
// one approval gate, one evidence pipeline, one authentication-failure recorder, one masking key
// and one custody signing key. Listeners (PostgreSQL now; SSH, HTTP, MCP … later) get the core and
// add only their protocol.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { EventFactory, type EventSource } from '@custodian/event-contracts';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import type { EventStore } from '@custodian/event-store';
import type { EvidencePipeline } from '@custodian/evidence-pipeline';
import type { AccessTokenVerifier } from '@custodian/identity';
import type { Logger } from '@custodian/observability';
import { PolicyWatcher, parsePolicy, policyStream, toPolicyActivatedPayload, type PolicyActivation } from '@custodian/policy';
import { ALL_POLICY_LANGUAGES } from '@custodian/policy-languages';
import { ConfigError, type GatewaysConfig, type LoadedConfig } from '@custodian/runtime-config';
import { AuthenticationEventRecorder, configuredIdentity } from '@custodian/service-host';
import type { ApprovalGate, PolicySource } from '@custodian/session-pipeline';
import { loadCustodySigner, loadMaskingKey, type CustodySigner } from './gateway-keys.js';

/** A policy that lets nobody in: what runs when no policy file is configured (default deny). */
const DENY_ALL_POLICY = 'name: deny-all\ndefaults:\n  decision: block\n  message: No policy is configured on this gateway.\nrules: []\n';

/** The evidence pipeline the core records into, and whether commands wait for durability. */
export interface GatewayEvidenceChannel {
  readonly pipeline: EvidencePipeline;
  /** Strict mode (config `pipeline.strict`). */
  readonly strict: boolean;
}

export interface GatewayCore {
  readonly loaded: LoadedConfig;
  /** The shared settings (`gateways.*` without the listener sections' own keys). */
  readonly settings: GatewaysConfig;
  readonly logger: Logger;
  /** This gateway's name, stable across restarts (`gateways.instance`, default gateway@<host name>). */
  readonly instance: string;
  /** `source` of every event the gateway writes. */
  readonly source: EventSource;
  /** The service's event store (listeners that keep state in the log, e.g. MCP tool pins). */
  readonly eventStore: EventStore;
  /** Undefined when no issuer is configured: every login is refused (fail closed). */
  readonly verifier: AccessTokenVerifier | undefined;
  /** The active policy (the one watcher's current version, or the built-in deny-all). */
  readonly policy: PolicySource;
  readonly evidence: GatewayEvidenceChannel;
  /** The host's approvals workflow, else the event-sourced gate the core runs. */
  readonly approvals: ApprovalGate;
  readonly authenticationFailures: AuthenticationEventRecorder;
  /** Key for `hmac` masking strategies, the same for every listener and across restarts. */
  readonly maskingKey: Uint8Array;
  /** Signs custody statements (Ed25519, kept in the data directory). */
  readonly custodySigner: CustodySigner;
  /** Audiences a listener accepts: its own, else the gateway's, else undefined (the issuers'). */
  audiencesFor(listener: { readonly audiences?: readonly string[] }): readonly string[] | undefined;
  /** Stops the policy watcher, the approval gate (if the core made it) and the recorder. Listeners close first. */
  close(): Promise<void>;
}

export interface GatewayCoreDependencies {
  readonly loaded: LoadedConfig;
  readonly eventStore: EventStore;
  readonly logger: Logger;
  readonly evidence: GatewayEvidenceChannel;
  /** The approvals workflow; by default the event-sourced gate over the service's event store. */
  readonly approvals?: ApprovalGate;
}

/** The stream of one activation record: the policy's stream name plus a fresh id (see recordActivation). */
function activationStream(policyName: string): string {
  const base = policyStream(policyName).slice(0, 160).replace(/-+$/, '');
  return `${base}-${randomUUID()}`;
}

/** Builds the core. Throws ConfigError (file, key) on unusable shared settings. */
export async function openGatewayCore(deps: GatewayCoreDependencies): Promise<GatewayCore> {
  const { loaded, logger } = deps;
  const settings = loaded.config.gateways;
  const instance = settings.instance ?? `gateway@${hostname()}`;
  const source: EventSource = { service: 'gateway', instance };
  const events = new EventFactory(source);
  const identity = configuredIdentity(loaded, { logger });
  for (const notice of identity.notices) logger.warn({}, `gateway: ${notice}`);

  // One stream per activation record (sequence 0, like authentication events): gateways and
  // restarts that activate a policy never need to agree on a stream revision.
  const recordActivation = (activation: PolicyActivation): void => {
    const event = events.create({ type: 'policy.activated', stream: activationStream(activation.name), sequence: 0, identity: null, payload: toPolicyActivatedPayload(activation) });
    void deps.evidence.pipeline.accept([event]).then(
      () => logger.info({ policy: activation.name, version: activation.version, digest: activation.digest }, 'gateway: policy activated'),
      (error: unknown) =>
        logger.error({ policy: activation.name, version: activation.version, err: error instanceof Error ? error.message : String(error) }, 'gateway: policy activated but its policy.activated event could not be recorded'),
    );
  };

  let watcher: PolicyWatcher | undefined;
  let policy: PolicySource;
  if (settings.policyFile) {
    const file = isAbsolute(settings.policyFile) ? settings.policyFile : resolve(loaded.baseDir, settings.policyFile);
    try {
      watcher = PolicyWatcher.start(file, {
        // Every language's criteria are compiled at activation: a policy a language cannot use is refused then, not at a session's first command.
        languages: ALL_POLICY_LANGUAGES,
        onActivated: recordActivation,
        onRejected: (error) => logger.warn({ code: error.code, issues: error.issues }, 'gateway: policy change not activated'),
        onError: (error) => logger.error({ err: error instanceof Error ? error.message : String(error) }, 'gateway: policy watch failed'),
      });
    } catch (error) {
      throw new ConfigError('CONFIG_INVALID', `gateways.policyFile: ${error instanceof Error ? error.message : String(error)}`);
    }
    policy = watcher;
  } else {
    logger.warn({}, 'gateway: no policyFile configured (gateways.policyFile): every session is refused (default deny)');
    policy = { policy: parsePolicy(DENY_ALL_POLICY, 'built-in deny-all') };
  }

  const closers: (() => Promise<void> | void)[] = [() => watcher?.close()];
  const close = async (): Promise<void> => {
    for (const step of closers.splice(0).reverse()) await step();
  };
  try {
    const maskingKey = (await loadMaskingKey(loaded, logger)).key;
    const custodySigner = await loadCustodySigner(loaded, logger);
    const authenticationFailures = new AuthenticationEventRecorder({ eventStore: deps.eventStore, source, logger });
    closers.push(() => authenticationFailures.close());
    let approvals = deps.approvals;
    if (!approvals) {
      // The instance name must stay the same across restarts: approvals left pending by it are cancelled at start.
      const gate = new EventSourcedApprovalGate({ eventStore: deps.eventStore, instance });
      closers.push(() => gate.close());
      await gate.start();
      approvals = gate;
    }
    return {
      loaded,
      settings,
      logger,
      instance,
      source,
      eventStore: deps.eventStore,
      verifier: identity.verifier,
      policy,
      evidence: deps.evidence,
      approvals,
      authenticationFailures,
      maskingKey,
      custodySigner,
      audiencesFor: (listener) => listener.audiences ?? settings.audiences,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

// Custodian events → OCSF 1.5.0 event objects (docs/siem-ocsf.md is the human-readable table).
// One OCSF object per Custodian event; `metadata.uid` is the Custodian event id, so a SIEM
// deduplicates redeliveries on it. Frame bytes, command parameters and secrets never leave:
// only what the evidence already holds in masked form (command text) and counts.
import { parseRfc3339Micros, type CustodianEvent, type EventType, type Identity } from '@custodian/event-contracts';

export const OCSF_VERSION = '1.5.0';

export const OCSF_CLASSES = {
  complianceFinding: { uid: 2003, category: 2 },
  authentication: { uid: 3002, category: 3 },
  authorizeSession: { uid: 3003, category: 3 },
  httpActivity: { uid: 4002, category: 4 },
  sshActivity: { uid: 4007, category: 4 },
  apiActivity: { uid: 6003, category: 6 },
  datastoreActivity: { uid: 6005, category: 6 },
} as const;

type OcsfClass = (typeof OCSF_CLASSES)[keyof typeof OCSF_CLASSES];
type EventOf<T extends EventType> = Extract<CustodianEvent, { type: T }>;

export const SEVERITY = { informational: 1, low: 2, medium: 3, high: 4, critical: 5 } as const;
const STATUS = { success: 1, failure: 2 } as const;

export type OcsfObject = { readonly [key: string]: unknown };

/** An OCSF event as published: the fields every class has, plus the class's own. */
export interface OcsfEvent extends OcsfObject {
  readonly class_uid: number;
  readonly category_uid: number;
  readonly activity_id: number;
  readonly type_uid: number;
  readonly severity_id: number;
  readonly time: number;
  readonly metadata: OcsfObject;
}

export interface OcsfContext {
  /** Store commit time of the event (RFC 3339), → metadata.logged_time. */
  readonly recordedAt?: string;
  /** Product version in metadata.product. */
  readonly productVersion?: string;
}

const millis = (rfc3339: string): number => Number(parseRfc3339Micros(rfc3339) / 1000n);

const USER_TYPE: Record<Identity['kind'], number> = { human: 1, agent: 99, service: 3 };

function user(identity: Identity | null | undefined, fallbackName = 'unknown'): OcsfObject {
  if (!identity) return { name: fallbackName, type_id: 0 };
  return {
    uid: identity.subject,
    name: identity.subject,
    type_id: USER_TYPE[identity.kind],
    ...(identity.kind === 'agent' ? { type: 'AI agent' } : {}),
    groups: identity.groups.map((name) => ({ name })),
    domain: identity.issuer,
  };
}

function actor(event: CustodianEvent, sessionId?: string): OcsfObject {
  return {
    user: user(event.identity),
    ...(event.identity ? { idp: { name: event.identity.issuer, issuer: event.identity.issuer } } : {}),
    ...(sessionId ? { session: { uid: sessionId } } : {}),
    app_name: `custodian-${event.source.service}`,
    app_uid: event.source.instance,
  };
}

/** `host:port`, `[v6]:port` or a bare address → an OCSF network endpoint. */
export function endpoint(address: string | undefined): OcsfObject {
  if (!address) return {};
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address);
  const v4 = /^([^:]+):(\d{1,5})$/.exec(address);
  const [host, port] = v6 ? [v6[1]!, Number(v6[2])] : v4 ? [v4[1]!, Number(v4[2])] : [address, undefined];
  const isIp = /^[0-9.]+$/.test(host) || host.includes(':');
  return { ...(isIp ? { ip: host } : { hostname: host }), ...(port !== undefined ? { port } : {}) };
}

function connectionEndpoint(connection: { name: string; protocol: string }): OcsfObject {
  return { name: connection.name, svc_name: connection.protocol };
}

interface ClassFields {
  readonly cls: OcsfClass;
  readonly activity: number;
  readonly severity: number;
  readonly status?: number;
  readonly statusDetail?: string;
  readonly message: string;
  readonly fields: OcsfObject;
}

const HTTP_METHODS: Record<string, number> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8 };

/** Datastore activity from the SQL classification's statement kinds, when present. */
function sqlActivity(classification: Record<string, unknown> | undefined): number {
  const kinds = JSON.stringify(classification ?? {}).toLowerCase();
  if (/"(insert|copy_from)"/.test(kinds)) return 5;
  if (/"(update)"/.test(kinds)) return 2;
  if (/"(delete|truncate|drop)"/.test(kinds)) return 7;
  if (/"(create)"/.test(kinds)) return 6;
  return 4; // Query
}

/** Where a Kubernetes exec runs, as the gateway's classification says (`classification.kubernetes`). */
function kubernetesTarget(classification: Record<string, unknown> | undefined): { namespace?: string; pod?: string; container?: string; stdinLine: boolean } {
  const target = classification?.['kubernetes'];
  if (typeof target !== 'object' || target === null) return { stdinLine: false };
  const field = (name: string): string | undefined => {
    const value = (target as Record<string, unknown>)[name];
    return typeof value === 'string' ? value : undefined;
  };
  const namespace = field('namespace');
  const pod = field('pod');
  const container = field('container');
  return { ...(namespace ? { namespace } : {}), ...(pod ? { pod } : {}), ...(container ? { container } : {}), stdinLine: (target as Record<string, unknown>)['stdinLine'] === true };
}

/**
 * A Kubernetes exec, as Kubernetes audit logs map to OCSF: API Activity on the `pods/exec`
 * subresource, Create (the RBAC verb of an exec). A line typed into an exec'd shell (decided
 * on its own) is Other, operation `exec-stdin-line`, on the same pod.
 */
function kubernetesExec(event: EventOf<'command.issued'>, actorObject: OcsfObject): ClassFields {
  const { text, commandId, classification } = event.payload;
  const target = kubernetesTarget(classification);
  const where = `${target.namespace ?? '?'}/${target.pod ?? '?'}${target.container ? ` (${target.container})` : ''}`;
  return {
    cls: OCSF_CLASSES.apiActivity,
    activity: target.stdinLine ? 99 : 1,
    severity: SEVERITY.informational,
    message: target.stdinLine ? `shell line in a Kubernetes exec on ${where}` : `Kubernetes exec on ${where}`,
    fields: {
      actor: actorObject,
      api: { operation: target.stdinLine ? 'exec-stdin-line' : 'create', service: { name: 'kubernetes' }, version: 'v1', request: { uid: commandId } },
      src_endpoint: {},
      resources: [
        {
          type: 'pods/exec',
          ...(target.pod ? { name: target.pod } : {}),
          ...(target.namespace ? { namespace: target.namespace } : {}),
          data: { command: text.slice(0, 2048), ...(target.container ? { container: target.container } : {}) },
        },
      ],
    },
  };
}

function sessionIdOf(event: CustodianEvent): string | undefined {
  const payload = event.payload as { sessionId?: unknown };
  return typeof payload.sessionId === 'string' ? payload.sessionId : undefined;
}

function classify(event: CustodianEvent): ClassFields {
  switch (event.type) {
    case 'authentication.succeeded':
      return {
        cls: OCSF_CLASSES.authentication,
        activity: 1,
        severity: SEVERITY.informational,
        status: STATUS.success,
        message: `${event.identity?.subject ?? 'unknown'} authenticated (${event.payload.method})`,
        fields: {
          user: user(event.identity),
          auth_protocol_id: 4,
          auth_protocol: 'OpenID',
          src_endpoint: endpoint(event.payload.clientAddress),
          ...(event.payload.protocol ? { service: { name: event.payload.protocol } } : {}),
          ...(event.payload.sessionId ? { session: { uid: event.payload.sessionId, expiration_time: millis(event.payload.tokenExpiresAt) } } : {}),
          is_remote: true,
        },
      };
    case 'authentication.failed':
      return {
        cls: OCSF_CLASSES.authentication,
        activity: 1,
        severity: SEVERITY.medium,
        status: STATUS.failure,
        statusDetail: event.payload.reasonCode,
        message: `authentication failed: ${event.payload.reason}`,
        fields: {
          user: event.payload.claimedSubject ? { name: event.payload.claimedSubject, type_id: 0 } : user(null),
          auth_protocol_id: 4,
          auth_protocol: 'OpenID',
          src_endpoint: endpoint(event.payload.clientAddress),
          ...(event.payload.protocol ? { service: { name: event.payload.protocol } } : {}),
          ...(event.payload.sessionId ? { session: { uid: event.payload.sessionId } } : {}),
          is_remote: true,
        },
      };
    case 'session.opened':
      return {
        cls: OCSF_CLASSES.authorizeSession,
        activity: 1,
        severity: SEVERITY.informational,
        status: STATUS.success,
        message: `session opened on ${event.payload.connection.name} (${event.payload.connection.protocol})`,
        fields: {
          user: user(event.identity),
          session: { uid: event.payload.sessionId, created_time: millis(event.occurredAt), is_remote: true },
          privileges: [`connect:${event.payload.connection.name}`],
          src_endpoint: endpoint(event.payload.client.address),
          dst_endpoint: connectionEndpoint(event.payload.connection),
        },
      };
    case 'session.closed':
      return {
        cls: OCSF_CLASSES.authentication,
        activity: 2,
        severity: event.payload.reason === 'error' ? SEVERITY.low : SEVERITY.informational,
        status: event.payload.reason === 'error' ? STATUS.failure : STATUS.success,
        ...(event.payload.errorCode ? { statusDetail: event.payload.errorCode } : {}),
        message: `session closed (${event.payload.reason}) after ${event.payload.durationMs} ms`,
        fields: { user: user(event.identity), session: { uid: event.payload.sessionId }, duration: event.payload.durationMs },
      };
    case 'command.issued': {
      const { kind, text, sessionId, commandId } = event.payload;
      if (kind === 'sql') {
        return {
          cls: OCSF_CLASSES.datastoreActivity,
          activity: sqlActivity(event.payload.classification),
          severity: SEVERITY.informational,
          message: `SQL command issued`,
          fields: { actor: actor(event, sessionId), src_endpoint: {}, query_info: { uid: commandId, query_string: text }, type_id: 1 },
        };
      }
      if (kind === 'http') {
        const method = /^([A-Z]+)\s/.exec(text)?.[1] ?? '';
        return {
          cls: OCSF_CLASSES.httpActivity,
          activity: HTTP_METHODS[method] ?? 99,
          severity: SEVERITY.informational,
          message: `HTTP request issued`,
          fields: { src_endpoint: { owner: user(event.identity), uid: sessionId }, http_request: { uid: commandId, url: { url_string: text.replace(/^[A-Z]+\s+/, '').slice(0, 2048) } } },
        };
      }
      if (kind === 'kubernetes-exec') return kubernetesExec(event, actor(event, sessionId));
      if (kind === 'shell') {
        // The SSH gateway's exec commands, pty lines and refused channel requests. SSH Activity has
        // no attribute for a command line, so the masked text travels in `unmapped` (free-form).
        return {
          cls: OCSF_CLASSES.sshActivity,
          activity: 6, // Traffic
          severity: SEVERITY.informational,
          message: `SSH command issued`,
          fields: { src_endpoint: { owner: user(event.identity), uid: sessionId }, app_name: `custodian-${event.source.service}`, unmapped: { command_uid: commandId, command_line: text.slice(0, 2048) } },
        };
      }
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 99,
        severity: SEVERITY.informational,
        message: `${kind} command issued`,
        fields: { actor: actor(event, sessionId), api: { operation: kind, request: { uid: commandId } }, src_endpoint: {}, resources: [{ name: text.slice(0, 2048), type: kind }] },
      };
    }
    case 'policy.decided': {
      const { decision, policy, ruleId, reason, commandId, sessionId } = event.payload;
      const fail = decision === 'block';
      return {
        cls: OCSF_CLASSES.complianceFinding,
        activity: 1,
        severity: fail ? SEVERITY.medium : decision === 'require-approval' ? SEVERITY.low : SEVERITY.informational,
        message: `policy ${policy.name} v${policy.version}: ${decision} (${reason})`,
        fields: {
          finding_info: { uid: commandId, title: `command ${decision}`, desc: reason, types: ['policy-decision'] },
          compliance: { control: ruleId ?? 'default-deny', standards: [`custodian-policy:${policy.name}@${policy.version}`], status_id: fail ? 3 : decision === 'require-approval' ? 2 : 1, status_detail: decision },
          // Findings have no actor of their own: who did what is the evidence.
          evidences: [{ actor: { ...actor(event, sessionId), authorizations: [{ decision, policy: { name: policy.name, uid: policy.digest, version: String(policy.version) } }] } }],
        },
      };
    }
    case 'approval.requested':
      return {
        cls: OCSF_CLASSES.authorizeSession,
        activity: 99,
        severity: SEVERITY.low,
        message: `approval requested for a command on ${event.payload.connection.name} (${event.payload.required} of ${event.payload.approverGroups.join(', ')})`,
        fields: { user: user(event.identity), session: { uid: event.payload.sessionId }, privileges: [`command:${event.payload.commandId}`], dst_endpoint: connectionEndpoint(event.payload.connection) },
      };
    case 'approval.granted':
      return {
        cls: OCSF_CLASSES.authorizeSession,
        activity: 1,
        severity: SEVERITY.informational,
        status: STATUS.success,
        message: `approval granted (${event.payload.approvals}/${event.payload.required}${event.payload.final ? ', final' : ''}): ${event.payload.justification}`,
        fields: { user: { uid: event.payload.approver.subject, name: event.payload.approver.subject, domain: event.payload.approver.issuer, groups: event.payload.approver.groups.map((name) => ({ name })) }, privileges: [`approval:${event.payload.approvalId}`] },
      };
    case 'approval.denied':
      return {
        cls: OCSF_CLASSES.authorizeSession,
        activity: 1,
        severity: SEVERITY.low,
        status: STATUS.failure,
        statusDetail: 'denied',
        message: `approval denied: ${event.payload.justification}`,
        fields: { user: { uid: event.payload.approver.subject, name: event.payload.approver.subject, domain: event.payload.approver.issuer }, privileges: [`approval:${event.payload.approvalId}`] },
      };
    case 'approval.expired':
    case 'approval.cancelled':
      return {
        cls: OCSF_CLASSES.authorizeSession,
        activity: 99,
        severity: SEVERITY.low,
        status: STATUS.failure,
        statusDetail: event.type === 'approval.expired' ? 'expired' : 'cancelled',
        message: event.type === 'approval.expired' ? 'approval expired' : `approval cancelled: ${event.payload.reason}`,
        fields: { user: user(event.identity, 'custodian'), privileges: [`approval:${event.payload.approvalId}`] },
      };
    case 'credential.injected':
      return {
        cls: OCSF_CLASSES.authentication,
        activity: 1,
        severity: SEVERITY.informational,
        status: STATUS.success,
        message: `gateway authenticated upstream to ${event.payload.connection.name} with ${event.payload.credentialRef} (${event.payload.method})`,
        fields: {
          user: { name: event.payload.credentialRef, type_id: 3 },
          actor: actor(event, event.payload.sessionId),
          dst_endpoint: connectionEndpoint(event.payload.connection),
          session: { uid: event.payload.sessionId },
          auth_protocol_id: 99,
          auth_protocol: event.payload.method,
        },
      };
    case 'data.masked': {
      const total = event.payload.maskings.reduce((n, m) => n + m.count, 0);
      return {
        cls: OCSF_CLASSES.complianceFinding,
        activity: 1,
        severity: SEVERITY.informational,
        message: `${total} sensitive value(s) masked in ${event.payload.maskings.length} field(s)`,
        fields: {
          finding_info: { uid: event.id, title: 'sensitive data masked', types: ['data-masking'] },
          compliance: { control: [...new Set(event.payload.maskings.map((m) => m.rule))].join(','), status_id: 1, status_detail: 'masked' },
          evidences: [{ actor: actor(event, event.payload.sessionId) }],
        },
      };
    }
    case 'custody.attested': {
      // The gateway's signed statement that the injected credential stayed out of every client byte
      // and event (Pass), or that it did not (Fail, high). The envelope itself stays in the evidence.
      const { exposed, credentialRef, detections, sessionId, keyId } = event.payload;
      return {
        cls: OCSF_CLASSES.complianceFinding,
        activity: 1,
        severity: exposed ? SEVERITY.high : SEVERITY.informational,
        message: exposed
          ? `credential ${credentialRef} EXPOSED in session ${sessionId}: ${detections.total} detection(s) (${detections.clientBytes} in client-bound bytes, ${detections.events} in events; ${detections.encodings.join(', ')})`
          : `credential ${credentialRef} never exposed in session ${sessionId} (signed custody statement, key ${keyId})`,
        fields: {
          finding_info: { uid: event.id, title: exposed ? 'injected credential exposed' : 'injected credential never exposed', types: ['credential-custody'] },
          compliance: { control: 'credential-custody', standards: ['NIST SP 800-53 IA-5', 'ISO/IEC 27001:2022 A.5.17'], status_id: exposed ? 3 : 1, status_detail: exposed ? 'exposed' : 'not-exposed' },
          evidences: [{ actor: actor(event, sessionId) }],
        },
      };
    }
    case 'frame.recorded':
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 99,
        severity: SEVERITY.informational,
        message: `${event.payload.byteLength} bytes ${event.payload.direction}`,
        fields: { actor: actor(event, event.payload.sessionId), api: { operation: `frame:${event.payload.direction}` }, src_endpoint: { name: event.payload.direction === 'client-to-upstream' ? 'client' : 'upstream' } },
      };
    case 'tool-use.emitted':
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 99,
        severity: SEVERITY.low,
        message: `model called tool ${event.payload.name} (${event.payload.toolUseId})`,
        fields: { actor: actor(event, event.payload.sessionId), api: { operation: `tool_use:${event.payload.name}` }, src_endpoint: { name: 'upstream' }, resources: [{ name: event.payload.name, uid: event.payload.toolUseId, type: 'tool-call' }] },
      };
    case 'policy.activated':
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 3,
        severity: SEVERITY.low,
        status: STATUS.success,
        message: `policy ${event.payload.policyName} v${event.payload.version} activated (${event.payload.rules} rules)`,
        fields: { actor: actor(event), api: { operation: 'policy.activate' }, src_endpoint: {}, resources: [{ name: event.payload.policyName, uid: event.payload.digest, version: String(event.payload.version), type: 'policy' }] },
      };
    case 'checkpoint.signed':
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 1,
        severity: SEVERITY.informational,
        status: STATUS.success,
        message: `evidence log checkpoint signed at tree size ${event.payload.treeSize}`,
        fields: { actor: actor(event), api: { operation: 'checkpoint.sign' }, src_endpoint: {}, resources: [{ name: event.payload.origin, uid: event.payload.rootHash, type: 'merkle-checkpoint' }] },
      };
    case 'evidence-pack.exported':
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 2,
        severity: SEVERITY.low,
        status: STATUS.success,
        message: `evidence pack exported (${event.payload.eventCount} events)`,
        fields: { actor: actor(event), api: { operation: 'evidence-pack.export' }, src_endpoint: {}, resources: [{ uid: event.payload.packId, name: event.payload.digest, type: 'evidence-pack' }] },
      };
    case 'command.refused':
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 99,
        severity: SEVERITY.high,
        status: STATUS.failure,
        statusDetail: event.payload.reasonCode,
        message: `${event.payload.count} command(s) refused (fail closed): ${event.payload.reason}`,
        fields: { actor: actor(event, event.payload.sessionId), api: { operation: 'command.refuse' }, src_endpoint: {}, count: event.payload.count, start_time: millis(event.payload.firstRefusedAt), end_time: millis(event.payload.lastRefusedAt) },
      };
    case 'tool-definition.pinned':
    case 'tool-definition.changed':
    case 'tool-definition.accepted': {
      // Tool-definition pinning (MCP "rug pull" defence): one finding per definition, opened when a
      // change blocks the tool (Fail, high) and closed when a human accepts it; first pins pass.
      const { connection, tool, fingerprint } = event.payload;
      const sessionId = 'sessionId' in event.payload ? event.payload.sessionId : undefined;
      const changed = event.type === 'tool-definition.changed';
      const accepted = event.type === 'tool-definition.accepted';
      return {
        cls: OCSF_CLASSES.complianceFinding,
        activity: accepted ? 3 : 1,
        severity: changed ? SEVERITY.high : SEVERITY.informational,
        message: changed
          ? `MCP tool ${tool} on ${connection.name} changed its definition (${event.payload.previousFingerprint.slice(0, 12)} -> ${fingerprint.slice(0, 12)}); blocked until a human accepts it`
          : accepted
            ? `MCP tool ${tool} on ${connection.name}: new definition ${fingerprint.slice(0, 12)} accepted by ${event.identity?.subject ?? 'unknown'}: ${event.payload.justification}`
            : `MCP tool ${tool} on ${connection.name} pinned at ${fingerprint.slice(0, 12)}`,
        fields: {
          finding_info: { uid: `${connection.name}/${tool}/${fingerprint}`, title: changed ? 'MCP tool definition changed' : accepted ? 'MCP tool definition accepted' : 'MCP tool definition pinned', types: ['mcp-tool-pinning'] },
          compliance: { control: 'mcp-tool-pinning', status_id: changed ? 3 : 1, status_detail: changed ? 'changed' : accepted ? 'accepted' : 'pinned' },
          resources: [{ name: tool, uid: fingerprint, type: 'mcp-tool' }],
          evidences: [{ actor: actor(event, sessionId), dst_endpoint: connectionEndpoint(connection) }],
        },
      };
    }
    default:
      // A type added after this mapping was written: still published (every event reaches the
      // SIEM), as a generic API activity named after the event type, until it gets its own row.
      return {
        cls: OCSF_CLASSES.apiActivity,
        activity: 99,
        severity: SEVERITY.informational,
        message: (event as CustodianEvent).type,
        fields: { actor: actor(event as CustodianEvent, sessionIdOf(event as CustodianEvent)), api: { operation: (event as CustodianEvent).type }, src_endpoint: {} },
      };
  }
}

/** The OCSF event for a Custodian event. */
export function toOcsf(event: CustodianEvent, context: OcsfContext = {}): OcsfEvent {
  const c = classify(event);
  return {
    ...c.fields,
    class_uid: c.cls.uid,
    category_uid: c.cls.category,
    activity_id: c.activity,
    type_uid: c.cls.uid * 100 + c.activity,
    severity_id: c.severity,
    ...(c.status !== undefined ? { status_id: c.status } : {}),
    ...(c.statusDetail !== undefined ? { status_detail: c.statusDetail } : {}),
    time: millis(event.occurredAt),
    message: c.message.slice(0, 4096),
    metadata: {
      version: OCSF_VERSION,
      product: { name: 'Custodian', vendor_name: 'Custodian', ...(context.productVersion ? { version: context.productVersion } : {}) },
      uid: event.id,
      correlation_uid: event.correlationId,
      event_code: event.type,
      log_name: event.stream,
      sequence: event.sequence,
      original_time: event.occurredAt,
      ...(context.recordedAt ? { logged_time: millis(context.recordedAt) } : {}),
    },
    unmapped: { ...(c.fields['unmapped'] as OcsfObject | undefined), custodian_schema_version: event.schemaVersion, custodian_source: `${event.source.service}/${event.source.instance}` },
  };
}

/** SIEM topic key: the session when the event has one, else its stream (each session stays in order). */
export function siemKey(event: CustodianEvent): string {
  return sessionIdOf(event) ?? event.stream;
}

/** Which OCSF class each event type maps to (command.issued: by kind), for docs and tests. */
export const CLASS_BY_EVENT_TYPE: Readonly<Partial<Record<EventType, readonly number[]>>> = {
  'authentication.succeeded': [3002],
  'authentication.failed': [3002],
  'session.opened': [3003],
  'session.closed': [3002],
  'command.issued': [6005, 4002, 4007, 6003],
  'policy.decided': [2003],
  'approval.requested': [3003],
  'approval.granted': [3003],
  'approval.denied': [3003],
  'approval.expired': [3003],
  'approval.cancelled': [3003],
  'credential.injected': [3002],
  'data.masked': [2003],
  'custody.attested': [2003],
  'frame.recorded': [6003],
  'tool-use.emitted': [6003],
  'policy.activated': [6003],
  'checkpoint.signed': [6003],
  'evidence-pack.exported': [6003],
  'command.refused': [6003],
  'tool-definition.pinned': [2003],
  'tool-definition.changed': [2003],
  'tool-definition.accepted': [2003],
};

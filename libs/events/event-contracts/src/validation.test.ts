import { describe, expect, it } from 'vitest';
import { ManualClock, formatRfc3339Micros, parseRfc3339Micros } from './clock.js';
import { EventFactory } from './create-event.js';
import { EventContractError } from './errors.js';
import { EVENT_TYPES, LATEST_SCHEMA_VERSIONS } from './generated/types.js';
import { payloadSchemas } from './generated/schemas.js';
import { MAX_EVENT_JSON_BYTES, assertValidEvent, parseEvent, parseEventJson } from './validation.js';

const agent = { subject: 'agent-7', issuer: 'https://idp.example', groups: ['analysts'], kind: 'agent' as const };
const sessionId = '0190c8e2-1111-7aaa-8bbb-0123456789ab';

function factory() {
  return new EventFactory({ service: 'gateway', instance: 'gw-1' }, new ManualClock(new Date('2026-11-21T18:00:00Z')));
}

function sessionOpened() {
  return factory().create({
    type: 'session.opened',
    stream: `session-${sessionId}`,
    sequence: 0,
    identity: agent,
    payload: { sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '127.0.0.1:5555' } },
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof EventContractError ? err.code : `not a contract error: ${String(err)}`;
  }
  return undefined;
}

describe('event contracts', () => {
  it('every event type named by the foundation issue has a schema', () => {
    expect([...EVENT_TYPES].sort()).toEqual(
      [
        'approval.cancelled', 'approval.denied', 'approval.expired', 'approval.granted', 'approval.requested',
        'authentication.failed', 'authentication.succeeded', 'checkpoint.signed', 'command.issued', 'command.refused',
        'credential.injected', 'data.masked', 'evidence-pack.exported', 'frame.recorded', 'policy.activated',
        'policy.decided', 'session.closed', 'session.opened',
        // Just-in-time approvals: each webhook delivery attempt is an event.
        'notification.delivered', 'notification.failed',
        // Signed custody statement at session end (issue 21).
        'custody.attested',
        // A model's tool call, on the record with its masked input (issue 14).
        'tool-use.emitted',
        // MCP tool-definition pins: first seen, changed (a rug pull), accepted by a human (issue 15).
        'tool-definition.pinned', 'tool-definition.changed', 'tool-definition.accepted',
        // MCP input_required continuations of an approved call, shared by every gateway replica (issue 15).
        'mcp-continuation.offered', 'mcp-continuation.used',
      ].sort(),
    );
    for (const t of EVENT_TYPES) expect(payloadSchemas.some((s) => s.type === t && s.version === LATEST_SCHEMA_VERSIONS[t])).toBe(true);
  });

  it('the factory stamps a UUIDv7 id, microsecond time, latest version and source', () => {
    const e = sessionOpened();
    expect(e.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(e.occurredAt).toBe('2026-11-21T18:00:00.000000Z');
    expect(e.schemaVersion).toBe(2);
    expect(e.correlationId).toBe(e.id);
    expect(e.causationId).toBeNull();
    expect(e.source).toEqual({ service: 'gateway', instance: 'gw-1' });
    expect(() => assertValidEvent(e)).not.toThrow();
  });

  it('the factory refuses an invalid payload, naming the path', () => {
    const f = factory();
    let err: unknown;
    try {
      f.create({
        type: 'session.opened',
        stream: `session-${sessionId}`,
        sequence: 0,
        identity: agent,
        // @ts-expect-error protocol is not one of the enum values
        payload: { sessionId, connection: { name: 'x', protocol: 'telnet' }, client: { address: 'a' } },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EventContractError);
    expect((err as EventContractError).code).toBe('EVENT_INVALID_PAYLOAD');
    expect((err as EventContractError).issues.map((i) => i.path)).toContain('/payload/connection/protocol');
  });

  it('refuses envelope violations: bad id, bad timestamp precision, unknown kind, extra fields', () => {
    const e = sessionOpened();
    expect(codeOf(() => assertValidEvent({ ...e, id: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' }))).toBe('EVENT_INVALID_ENVELOPE');
    expect(codeOf(() => assertValidEvent({ ...e, occurredAt: '2026-11-21T18:00:00.000Z' }))).toBe('EVENT_INVALID_ENVELOPE');
    expect(codeOf(() => assertValidEvent({ ...e, identity: { ...agent, kind: 'robot' } }))).toBe('EVENT_INVALID_ENVELOPE');
    expect(codeOf(() => assertValidEvent({ ...e, extra: 1 }))).toBe('EVENT_INVALID_ENVELOPE');
    expect(codeOf(() => assertValidEvent({ ...e, sequence: -1 }))).toBe('EVENT_INVALID_ENVELOPE');
    expect(codeOf(() => assertValidEvent({ ...e, type: 'session.teleported' }))).toBe('EVENT_UNKNOWN_TYPE');
  });

  it('producers must write the latest version; consumers accept older ones', () => {
    const e = sessionOpened();
    const v1 = {
      ...e,
      schemaVersion: 1,
      payload: { sessionId, protocol: 'postgres', target: 'orders-prod', clientAddress: '127.0.0.1:5555' },
    };
    expect(codeOf(() => assertValidEvent(v1))).toBe('EVENT_UNKNOWN_VERSION');
    const upcast = parseEvent(v1);
    expect(upcast.schemaVersion).toBe(2);
    expect(upcast.payload).toEqual({ sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '127.0.0.1:5555' } });
    // The stored input is not mutated.
    expect(v1.schemaVersion).toBe(1);
  });

  it('upcasts approval.requested v1 to v2: the language from the protocol; no policy or digest is invented', () => {
    const v1Payload = {
      approvalId: '0190c8e2-2222-7aaa-8bbb-0123456789ab',
      sessionId,
      commandId: '0190c8e2-3333-7aaa-8bbb-0123456789ab',
      command: 'UPDATE orders SET status = $1 WHERE id = $2',
      connection: { name: 'orders-prod', protocol: 'postgres' },
      ruleId: 'hold-writes',
      approverGroups: ['dba'],
      required: 1,
      expiresAt: '2026-11-21T18:05:00.000000Z',
      grantScope: { kind: 'once' },
    };
    const template = sessionOpened();
    const stored = { ...template, type: 'approval.requested', stream: `approval-${v1Payload.approvalId}`, schemaVersion: 1, payload: v1Payload };
    const upcast = parseEvent(stored);
    expect(upcast).toMatchObject({ type: 'approval.requested', schemaVersion: 2, payload: { ...v1Payload, language: 'sql' } });
    expect(upcast.payload).not.toHaveProperty('commandDigest');
    expect(upcast.payload).not.toHaveProperty('policy');
    expect(parseEvent({ ...stored, payload: { ...v1Payload, connection: { name: 'bastion', protocol: 'ssh' } } }).payload).toMatchObject({ language: 'shell' });
    // A producer writes v2 only, with its language.
    expect(codeOf(() => assertValidEvent(stored))).toBe('EVENT_UNKNOWN_VERSION');
    expect(codeOf(() => assertValidEvent({ ...stored, schemaVersion: 2 }))).toBe('EVENT_INVALID_PAYLOAD');
    expect(codeOf(() => assertValidEvent({ ...stored, schemaVersion: 2, payload: { ...v1Payload, language: 'sql', commandDigest: 'sha256:abc' } }))).toBe('EVENT_INVALID_PAYLOAD');
    expect(() => assertValidEvent({ ...stored, schemaVersion: 2, payload: { ...v1Payload, language: 'sql', parameters: ['shipped', null], commandDigest: `sha256:${'0'.repeat(64)}` } })).not.toThrow();
  });

  it('refuses versions newer than this build and invalid stored payloads', () => {
    const e = sessionOpened();
    expect(codeOf(() => parseEvent({ ...e, schemaVersion: 3 }))).toBe('EVENT_UNKNOWN_VERSION');
    expect(codeOf(() => parseEvent({ ...e, schemaVersion: 1 }))).toBe('EVENT_INVALID_PAYLOAD');
  });

  it('parses wire JSON with a size bound and a clear error for non-JSON', () => {
    const e = sessionOpened();
    expect(parseEventJson(JSON.stringify(e))).toEqual(e);
    expect(parseEventJson(Buffer.from(JSON.stringify(e)))).toEqual(e);
    expect(codeOf(() => parseEventJson('{"id":'))).toBe('EVENT_NOT_JSON');
    expect(codeOf(() => parseEventJson('x'.repeat(MAX_EVENT_JSON_BYTES + 1)))).toBe('EVENT_NOT_JSON');
  });

  it('identity may be null (no identity established) but never absent', () => {
    const f = factory();
    const failed = f.create({
      type: 'authentication.failed',
      stream: 'auth-gateway',
      sequence: 0,
      identity: null,
      payload: { method: 'oidc-access-token', clientAddress: '127.0.0.1:1', reasonCode: 'TOKEN_EXPIRED', reason: 'token expired' },
    });
    expect(failed.identity).toBeNull();
    const { identity: _omit, ...withoutIdentity } = failed;
    expect(codeOf(() => assertValidEvent(withoutIdentity))).toBe('EVENT_INVALID_ENVELOPE');
  });

  it('credential references are names, never secrets', () => {
    const f = factory();
    const base = { sessionId, connection: { name: 'orders-prod', protocol: 'postgres' as const }, method: 'scram-sha-256' as const };
    expect(() =>
      f.create({ type: 'credential.injected', stream: `session-${sessionId}`, sequence: 1, identity: agent, payload: { ...base, credentialRef: 'env:ORDERS_DB_PASSWORD' } }),
    ).not.toThrow();
    expect(
      codeOf(() =>
        f.create({ type: 'credential.injected', stream: `session-${sessionId}`, sequence: 1, identity: agent, payload: { ...base, credentialRef: 'hunter2 with spaces' } }),
      ),
    ).toBe('EVENT_INVALID_PAYLOAD');
  });
});

describe('microsecond clock', () => {
  it('formats and parses RFC 3339 with six fractional digits', () => {
    const micros = 1_795_000_000_123_456n;
    const s = formatRfc3339Micros(micros);
    expect(s).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.123456Z$/);
    expect(parseRfc3339Micros(s)).toBe(micros);
  });
});

// Realistic event specs for the event benchmarks: one gateway session of five events
// (opened, command, policy decision, masking, closed), repeated for fresh session ids.
import { randomUUID } from 'node:crypto';
import { streamName, type EventType, type Identity, type NewEvent } from '@custodian/event-contracts';

const identity: Identity = { subject: 'agent-orders-reporter', issuer: 'https://idp.example.com', groups: ['agents', 'orders-readers'], kind: 'agent' };

export const EVENTS_PER_SESSION = 5;

/** The first event of a new session (a stream of its own). */
export function sessionOpenedSpec(sessionId = randomUUID()): NewEvent<'session.opened'> {
  return {
    type: 'session.opened',
    stream: streamName('session', sessionId),
    sequence: 0,
    identity,
    payload: { sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '127.0.0.1:51234', application: 'psql', tls: true } },
  };
}

/** Five specs for one session, in stream order (sequences 0..4). */
export function sessionSpecs(sessionId = randomUUID()): NewEvent<EventType>[] {
  const stream = streamName('session', sessionId);
  const commandId = randomUUID();
  const specs: NewEvent<EventType>[] = [
    sessionOpenedSpec(sessionId),
    {
      type: 'command.issued',
      stream,
      sequence: 1,
      identity,
      payload: {
        sessionId,
        commandId,
        kind: 'sql',
        text: "SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > $1 AND c.country = '***' LIMIT 100",
        parameters: ['***'],
      },
    } satisfies NewEvent<'command.issued'>,
    {
      type: 'policy.decided',
      stream,
      sequence: 2,
      identity,
      payload: {
        sessionId,
        commandId,
        decision: 'mask',
        policy: { name: 'orders', version: 7, digest: '9f2c4b1e7d3a5c8b0e6f1a2d4c7b9e3f5a8d1c6b2e4f7a9c3d5b8e1f4a6c2d7e' },
        ruleId: 'mask-customer-pii',
        reason: 'customers.email is personal data; agents read it masked',
      },
    } satisfies NewEvent<'policy.decided'>,
    {
      type: 'data.masked',
      stream,
      sequence: 3,
      identity,
      payload: { sessionId, commandId, maskings: [{ field: 'email', rule: 'mask-customer-pii', detector: 'email', count: 100 }] },
    } satisfies NewEvent<'data.masked'>,
    {
      type: 'session.closed',
      stream,
      sequence: 4,
      identity,
      payload: {
        sessionId,
        reason: 'client-closed',
        durationMs: 1843,
        frames: { clientToUpstream: 12, upstreamToClient: 118 },
        bytes: { clientToUpstream: 1480, upstreamToClient: 48211 },
      },
    } satisfies NewEvent<'session.closed'>,
  ];
  return specs;
}

/** `sessions` sessions' worth of specs. */
export function manySessionSpecs(sessions: number): NewEvent<EventType>[] {
  return Array.from({ length: sessions }, () => sessionSpecs()).flat();
}

import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { EventFactory, eventJson, factoryEventJson } from './create-event.js';
import { EventContractError } from './errors.js';
import { assertValidEvent } from './validation.js';

const agent = { subject: 'agent-7', issuer: 'https://idp.example', groups: ['analysts'], kind: 'agent' as const };
const sessionId = '0190c8e2-1111-7aaa-8bbb-0123456789ab';

function made() {
  const factory = new EventFactory({ service: 'gateway', instance: 'gw-1' }, new ManualClock(new Date('2026-11-21T18:00:00Z')));
  return factory.create({
    type: 'session.opened',
    stream: `session-${sessionId}`,
    sequence: 0,
    identity: { ...agent, groups: [...agent.groups] },
    payload: { sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '127.0.0.1:5555' } },
  });
}

describe('EventFactory: validated once, when made', () => {
  it('keeps the JSON it validated for the event it returns, and only for that object', () => {
    const event = made();
    expect(factoryEventJson(event)).toBe(JSON.stringify(event));
    expect(eventJson(event)).toBe(JSON.stringify(event));
    // A structural copy is foreign input: same content, but nobody vouches for it.
    const copy = JSON.parse(JSON.stringify(event)) as object;
    expect(factoryEventJson(copy)).toBeUndefined();
    expect(factoryEventJson({ ...event })).toBeUndefined();
    expect(eventJson(copy)).toBe(JSON.stringify(copy));
    expect(factoryEventJson(null)).toBeUndefined();
    expect(factoryEventJson('{"id":"x"}')).toBeUndefined();
  });

  it('freezes the event deeply, so that it cannot drift from the JSON it was validated as', () => {
    const event = made();
    expect(Object.isFrozen(event)).toBe(true);
    expect(Object.isFrozen(event.payload)).toBe(true);
    expect(Object.isFrozen(event.payload.connection)).toBe(true);
    expect(Object.isFrozen(event.identity!.groups)).toBe(true);
    expect(() => {
      (event.payload as { sessionId: string }).sessionId = 'not-a-uuid';
    }).toThrow(TypeError);
    expect(() => {
      (event.identity!.groups as string[]).push('admins');
    }).toThrow(TypeError);
    expect(factoryEventJson(event)).toBe(JSON.stringify(event));
  });

  it('an invalid event is refused when made and never registered', () => {
    const factory = new EventFactory({ service: 'gateway', instance: 'gw-1' });
    const bad = { sessionId: 'not-a-uuid', connection: { name: 'orders-prod', protocol: 'postgres' as const }, client: { address: 'x' } };
    expect(() => factory.create({ type: 'session.opened', stream: `session-${sessionId}`, sequence: 0, identity: agent, payload: bad })).toThrow(EventContractError);
    // A forged copy of a valid event with an invalid payload is still caught by the boundary check.
    const forged = { ...made(), payload: bad };
    expect(factoryEventJson(forged)).toBeUndefined();
    expect(() => assertValidEvent(forged)).toThrow(EventContractError);
  });
});

describe('EventFactory: a base64 field from bytes', () => {
  const factory = new EventFactory({ service: 'gateway', instance: 'gw-1' }, new ManualClock(new Date('2026-11-21T18:00:00Z')));
  const frame = (bytes: Uint8Array, messageType = 'DataRow', data = '') =>
    factory.create({
      type: 'frame.recorded',
      stream: `session-${sessionId}`,
      sequence: 0,
      identity: { ...agent, groups: [...agent.groups] },
      payload: { sessionId, direction: 'upstream-to-client', offsetMicros: 7, messageType, data, byteLength: bytes.length, truncated: false },
      base64: { field: 'data', bytes },
    });

  it('makes the same event and JSON as with the text in the payload, for any bytes and any view of them', () => {
    const backing = Buffer.alloc(70_000);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 7919) % 256;
    for (const bytes of [new Uint8Array(0), Buffer.from('"\\\u0000</script>'), backing, backing.subarray(3, 65_539), new Uint8Array(backing.buffer, backing.byteOffset + 1, 5)]) {
      const event = frame(bytes, 'Data"Row\\');
      expect(event.payload.data).toBe(Buffer.from(bytes).toString('base64'));
      // Where the caller put the field, the factory kept it.
      expect(Object.keys(event.payload)).toEqual(['sessionId', 'direction', 'offsetMicros', 'messageType', 'data', 'byteLength', 'truncated']);
      expect(factoryEventJson(event)).toBe(JSON.stringify(event));
      expect(JSON.parse(factoryEventJson(event)!)).toEqual(event);
      expect(Object.isFrozen(event.payload)).toBe(true);
    }
  });

  it('replaces whatever the payload held in the field, and validates the result', () => {
    const event = frame(Buffer.from('abc'), 'Query', 'not base64 and ignored');
    expect(event.payload.data).toBe('YWJj');
    expect(factoryEventJson(event)).toBe(JSON.stringify(event));
    // The bytes are still bounded by the contract (1 MiB of data, as base64).
    expect(() => frame(Buffer.alloc(1_048_579))).toThrow(EventContractError);
  });

  it('a payload value that looks like the placeholder cannot move the bytes elsewhere', () => {
    const event = frame(Buffer.from('xyz'), '\u0000custodian-base64-');
    expect(event.payload.messageType).toBe('\u0000custodian-base64-');
    expect(factoryEventJson(event)).toBe(JSON.stringify(event));
  });
});

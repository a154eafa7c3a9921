import { randomUUID } from 'node:crypto';
import { describeEventStoreContract } from '@custodian/event-store/testing';
import { eventStoreDbEndpoint } from '@custodian/test-harness';
import { EventStoreDBClient, NO_STREAM, jsonEvent } from '@eventstore/db-client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_STREAM_PREFIX,
  EventStoreDbEventStore,
  USER_STREAM_REGEX,
  expectationCompatible,
  isCustodianStream,
  serverExpectedRevision,
} from './eventstoredb-event-store.js';

const PAGE_SIZE = 100;
const endpoint = await eventStoreDbEndpoint();
if (!endpoint.available) console.warn(`[event-store-eventstoredb] skipping the EventStoreDB contract suite: ${endpoint.reason}`);

afterAll(async () => {
  if (endpoint.available) await endpoint.stop();
});

describe.skipIf(!endpoint.available)('EventStoreDB adapter against a real server', () => {
  // Only read when the suite runs (the factory is called from beforeEach).
  const connectionString = endpoint.available ? endpoint.connectionString : '';
  describeEventStoreContract(
    'EventStoreDB',
    async () => {
      const store = await EventStoreDbEventStore.open({ connectionString, pageSize: PAGE_SIZE });
      const raw = EventStoreDBClient.connectionString(connectionString);
      return {
        store,
        cleanup: async () => {
          await store.close();
          await raw.dispose();
        },
        writeStoredEventUnchecked: async (event) => {
          const sequence = event['sequence'] as number;
          await raw.appendToStream(event['stream'] as string, jsonEvent({ id: event['id'] as string, type: event['type'] as string, data: { ...event } }), {
            expectedRevision: sequence === 0 ? NO_STREAM : BigInt(sequence - 1),
          });
        },
      };
    },
    { pageSize: PAGE_SIZE, detectsIdReuseElsewhere: false, liveDeliveryTimeoutMs: 20_000 },
  );
});

// The mapping rules need no server.
describe('EventStoreDB adapter mapping', () => {
  it('maps the envelope sequence to the server-side expected revision', () => {
    expect(serverExpectedRevision(0)).toBe(NO_STREAM);
    expect(serverExpectedRevision(5)).toBe(4n);
  });

  it('knows which caller expectations agree with a sequence', () => {
    expect(expectationCompatible('any', 3)).toBe(true);
    expect(expectationCompatible('no-stream', 0)).toBe(true);
    expect(expectationCompatible('no-stream', 1)).toBe(false);
    expect(expectationCompatible('stream-exists', 0)).toBe(false);
    expect(expectationCompatible('stream-exists', 2)).toBe(true);
    expect(expectationCompatible(2, 3)).toBe(true);
    expect(expectationCompatible(1, 3)).toBe(false);
  });

  it('hides system and checkpoint streams, server-side (regex) and client-side', () => {
    const regex = new RegExp(USER_STREAM_REGEX);
    const session = `session-${randomUUID()}`;
    for (const [stream, visible] of [
      [session, true],
      ['policy-orders', true],
      ['$stats-127.0.0.1:2113', false],
      ['$$session-1', false],
      [`${CHECKPOINT_STREAM_PREFIX}projector`, false],
      ['custodianXcheckpoint-projector', true],
    ] as const) {
      expect(regex.test(stream)).toBe(visible);
      expect(isCustodianStream(stream)).toBe(visible);
    }
  });
});

// EventStore adapter for EventStoreDB / KurrentDB (gRPC).
export {
  EventStoreDbEventStore,
  CHECKPOINT_STREAM_PREFIX,
  USER_STREAM_REGEX,
  isCustodianStream,
  serverExpectedRevision,
  expectationCompatible,
  type EventStoreDbEventStoreOptions,
} from './eventstoredb-event-store.js';

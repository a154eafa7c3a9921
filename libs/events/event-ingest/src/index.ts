// Ingest: the event bus → the event store, exactly once by event id, poison messages to the
// dead-letter topic. Services wire it (services/ingest); the logic lives here.
export { EventIngestor, type DeadLetter, type DeadLetterReasonCode, type EventIngestorOptions } from './event-ingestor.js';
export { startIngest, DEFAULT_INGEST_GROUP, type RunningIngest, type StartIngestOptions } from './ingest-runner.js';

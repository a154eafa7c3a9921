export type KafkaHarnessErrorCode =
  /** `mvn` is missing or could not resolve the Kafka artifacts. */
  | 'HARNESS_MAVEN_FAILED'
  /** `java` (JDK 17+) is missing. */
  | 'HARNESS_JAVA_MISSING'
  /** `kafka.tools.StorageTool format` failed. */
  | 'HARNESS_STORAGE_FORMAT_FAILED'
  /** The broker process ran but did not answer a metadata request in time. */
  | 'HARNESS_START_TIMEOUT'
  /** The broker process exited (or could not be spawned) while starting. */
  | 'HARNESS_START_FAILED'
  /** An operation on a broker that was already stopped. */
  | 'HARNESS_STOPPED';

// Kept local (not service.ts's HarnessError) so this folder builds on its own; the codes
// follow the same HARNESS_* scheme so the lead can unify both classes later.
export class KafkaHarnessError extends Error {
  override readonly name = 'KafkaHarnessError';
  constructor(
    readonly code: KafkaHarnessErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// The SIEM projection: every stored event, as OCSF JSON, to custodian.siem.ocsf.v1. Runs on the
// projection runner (checkpointed subscription); a checkpoint is saved only after the messages
// it covers were acknowledged by the bus, so a crash re-publishes (never skips). Redeliveries
// carry the same metadata.uid (= event id), which is how SIEMs deduplicate.
import { SIEM_HEADERS, SIEM_OCSF_TOPIC, type BusPublisher } from '@custodian/event-bus';
import type { EventStore, RecordedEvent } from '@custodian/event-store';
import { runProjection, type Projection, type RunningProjection } from '@custodian/evidence-pipeline';
import { siemKey, toOcsf } from './ocsf-mapping.js';

export const SIEM_PROJECTION_NAME = 'siem-ocsf';

export class SiemProjection implements Projection {
  readonly name: string;
  private failure: unknown;
  private published = 0;

  constructor(
    private readonly publisher: BusPublisher,
    options: { readonly name?: string; readonly productVersion?: string } = {},
  ) {
    this.name = options.name ?? SIEM_PROJECTION_NAME;
    this.productVersion = options.productVersion;
  }

  private readonly productVersion: string | undefined;

  handle(recorded: RecordedEvent): void {
    const ocsf = toOcsf(recorded.event, { recordedAt: recorded.recordedAt, ...(this.productVersion ? { productVersion: this.productVersion } : {}) });
    // Not awaited: the publisher batches; flush() (before every checkpoint) waits for the acks.
    this.publisher
      .publish([
        {
          topic: SIEM_OCSF_TOPIC,
          key: siemKey(recorded.event),
          value: JSON.stringify(ocsf),
          headers: {
            [SIEM_HEADERS.classUid]: String(ocsf.class_uid),
            [SIEM_HEADERS.severityId]: String(ocsf.severity_id),
            [SIEM_HEADERS.eventId]: recorded.event.id,
            [SIEM_HEADERS.eventType]: recorded.event.type,
          },
        },
      ])
      .then(
        () => void (this.published += 1),
        (error: unknown) => void (this.failure ??= error),
      );
  }

  start(): void {
    this.failure = undefined;
  }

  async flush(): Promise<void> {
    await this.publisher.flush().catch((error: unknown) => void (this.failure ??= error));
    // Sticky until the next start(): no checkpoint of this run may be saved after a lost message,
    // so the subscription fails and restarts from the previous checkpoint.
    if (this.failure !== undefined) throw this.failure;
  }

  publishedCount(): number {
    return this.published;
  }
}

export function runSiemProjection(store: EventStore, publisher: BusPublisher, options: { onError?: (error: unknown) => void; productVersion?: string; checkpointEvery?: number } = {}): { projection: SiemProjection; running: RunningProjection } {
  const projection = new SiemProjection(publisher, options.productVersion ? { productVersion: options.productVersion } : {});
  const running = runProjection(store, projection, { checkpointEvery: options.checkpointEvery ?? 500, ...(options.onError ? { onError: options.onError } : {}) });
  return { projection, running };
}

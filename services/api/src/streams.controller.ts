import { BadRequestException, Controller, Get, Inject, Param, Query, ServiceUnavailableException } from '@nestjs/common';
import type { CustodianEvent } from '@custodian/event-contracts';
import { EventStoreError, formatPosition, type EventStore, type ReadDirection } from '@custodian/event-store';
import { EVENT_STORE } from '@custodian/service-host';

/** Largest page one request may ask for (bounded memory per request). */
export const MAX_EVENTS_PER_PAGE = 1000;
const DEFAULT_EVENTS_PER_PAGE = 100;

export interface StreamEventResponse {
  readonly revision: number;
  /** Global position, `C<commit>/P<prepare>`. */
  readonly position: string;
  readonly recordedAt: string;
  readonly event: CustodianEvent;
}

export interface StreamEventsResponse {
  readonly stream: string;
  readonly events: readonly StreamEventResponse[];
}

function nonNegativeInteger(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new BadRequestException(`${name} must be a non-negative integer`);
  return Number(raw);
}

// Authenticated by the module's AuthenticationGuard (bearer token or session cookie).
@Controller('v1/streams')
export class StreamsController {
  constructor(@Inject(EVENT_STORE) private readonly eventStore: EventStore) {}

  /** A page of a stream's events, oldest first unless `direction=backwards`. An unknown stream is empty. */
  @Get(':stream/events')
  async events(
    @Param('stream') stream: string,
    @Query('fromRevision') fromRevisionRaw?: string,
    @Query('maxCount') maxCountRaw?: string,
    @Query('direction') directionRaw?: string,
  ): Promise<StreamEventsResponse> {
    const fromRevision = nonNegativeInteger('fromRevision', fromRevisionRaw);
    const maxCount = Math.min(nonNegativeInteger('maxCount', maxCountRaw) ?? DEFAULT_EVENTS_PER_PAGE, MAX_EVENTS_PER_PAGE);
    if (directionRaw !== undefined && directionRaw !== 'forwards' && directionRaw !== 'backwards') {
      throw new BadRequestException('direction must be forwards or backwards');
    }
    const direction: ReadDirection = directionRaw ?? 'forwards';
    const events: StreamEventResponse[] = [];
    try {
      for await (const recorded of this.eventStore.readStream(stream, { ...(fromRevision !== undefined ? { fromRevision } : {}), maxCount, direction })) {
        events.push({ revision: recorded.revision, position: formatPosition(recorded.position), recordedAt: recorded.recordedAt, event: recorded.event });
      }
    } catch (err) {
      if (err instanceof EventStoreError && err.code === 'EVENT_STORE_INVALID_REQUEST') throw new BadRequestException(err.message);
      if (err instanceof EventStoreError && (err.code === 'EVENT_STORE_UNAVAILABLE' || err.code === 'EVENT_STORE_CLOSED')) {
        throw new ServiceUnavailableException('event store unavailable');
      }
      throw err;
    }
    return { stream, events };
  }
}

// Loads approvals from their streams and appends decisions with optimistic concurrency: the event
// store append (expectedRevision = the revision the decision was taken at) is the commit point.
import { EventFactory, type Clock, type CustodianEvent, type EventSource, type Identity } from '@custodian/event-contracts';
import { WrongExpectedRevisionError, type EventStore, type RecordedEvent } from '@custodian/event-store';
import { ApprovalError } from './approval-error.js';
import { Approval, approvalStream, type ApprovalDecision, type PendingApprovalEvent } from './approval.js';

/** A service's own identity, bound to the events it records on its own behalf (expiry, restarts). */
export function serviceIdentity(source: EventSource): Identity {
  return { subject: `custodian-${source.service}/${source.instance}`, issuer: `urn:custodian:${source.service}`, groups: [], kind: 'service' };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertApprovalId(approvalId: string): void {
  if (typeof approvalId !== 'string' || !UUID.test(approvalId)) throw new ApprovalError('APPROVAL_ID_INVALID', 'an approval id is a UUID');
}

export interface ApprovalRepositoryOptions {
  readonly eventStore: EventStore;
  /** `source` of the events this process writes (`gateway` or `api`, and an instance name). */
  readonly source: EventSource;
  readonly clock?: Clock;
  /** Reloads after a concurrent append before giving up with APPROVAL_CONFLICT (default 8). */
  readonly maxAttempts?: number;
}

export interface ExecutedDecision {
  readonly approval: Approval;
  /** The events this call appended (empty when the decision appended nothing). */
  readonly appended: readonly CustodianEvent[];
}

export class ApprovalRepository {
  readonly eventStore: EventStore;
  readonly source: EventSource;
  readonly serviceIdentity: Identity;
  private readonly factory: EventFactory;
  private readonly clock: Clock;
  private readonly maxAttempts: number;

  constructor(options: ApprovalRepositoryOptions) {
    this.eventStore = options.eventStore;
    this.source = options.source;
    this.serviceIdentity = serviceIdentity(options.source);
    this.clock = options.clock ?? { nowMicros: () => BigInt(Date.now()) * 1000n };
    this.factory = new EventFactory(options.source, options.clock);
    this.maxAttempts = options.maxAttempts ?? 8;
  }

  nowMicros(): bigint {
    return this.clock.nowMicros();
  }

  /** The stream's events as stored (for read models that need store positions). */
  async readRecorded(approvalId: string): Promise<RecordedEvent[]> {
    assertApprovalId(approvalId);
    const recorded: RecordedEvent[] = [];
    for await (const r of this.eventStore.readStream(approvalStream(approvalId))) recorded.push(r);
    return recorded;
  }

  /** The approval as its stream says now, or undefined when there is no such stream. */
  async load(approvalId: string): Promise<Approval | undefined> {
    const recorded = await this.readRecorded(approvalId);
    return recorded.length === 0 ? undefined : Approval.replay(recorded.map((r) => r.event));
  }

  async get(approvalId: string): Promise<Approval> {
    const approval = await this.load(approvalId);
    if (!approval) throw new ApprovalError('APPROVAL_NOT_FOUND', `no approval ${approvalId}`);
    return approval;
  }

  /** Appends `approval.requested` as the first event of a new stream ('no-stream'); an identical retry is a no-op. */
  async create(event: PendingApprovalEvent & { type: 'approval.requested' }): Promise<CustodianEvent> {
    const stream = approvalStream(event.payload.approvalId);
    const envelope = this.factory.create({ type: event.type, stream, sequence: 0, identity: event.identity, payload: event.payload, correlationId: event.payload.approvalId });
    try {
      await this.eventStore.append(stream, [envelope], { expectedRevision: 'no-stream' });
    } catch (error) {
      if (error instanceof WrongExpectedRevisionError) throw new ApprovalError('APPROVAL_ALREADY_EXISTS', `approval ${event.payload.approvalId} already exists`, { cause: error });
      throw error;
    }
    return envelope;
  }

  /**
   * Loads the approval, takes `decide` on it and appends what it returns at the revision it saw.
   * When another writer got there first, reloads and decides again (so two approvers at once both
   * count, and a decision on an approval that meanwhile ended is refused), up to `maxAttempts`.
   * Throws the decision's refusal after appending its events (e.g. `approval.expired`, then APPROVAL_EXPIRED).
   */
  async execute(approvalId: string, decide: (approval: Approval, nowMicros: bigint) => ApprovalDecision): Promise<ExecutedDecision> {
    for (let attempt = 1; ; attempt++) {
      const approval = await this.get(approvalId);
      const decision = decide(approval, this.nowMicros());
      let appended: CustodianEvent[] = [];
      if (decision.events.length > 0) {
        appended = this.envelopes(approval, decision.events);
        try {
          await this.eventStore.append(approvalStream(approvalId), appended, { expectedRevision: approval.revision });
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError)) throw error;
          if (attempt >= this.maxAttempts) throw new ApprovalError('APPROVAL_CONFLICT', `approval ${approvalId} kept changing; try again`, { cause: error });
          continue;
        }
        for (const event of appended) approval.apply(event);
      }
      if (decision.refusal) throw decision.refusal;
      return { approval, appended };
    }
  }

  private envelopes(approval: Approval, events: readonly PendingApprovalEvent[]): CustodianEvent[] {
    const stream = approvalStream(approval.approvalId);
    let causationId = approval.lastEventId;
    return events.map((event, index) => {
      const envelope = this.factory.create({
        type: event.type,
        stream,
        sequence: approval.revision + 1 + index,
        identity: event.identity ?? this.serviceIdentity,
        payload: event.payload,
        correlationId: approval.correlationId,
        causationId,
      } as Parameters<EventFactory['create']>[0]) as CustodianEvent;
      causationId = envelope.id;
      return envelope;
    });
  }
}

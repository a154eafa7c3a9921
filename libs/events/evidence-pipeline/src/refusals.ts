// Coalesces refusals (one entry per reason code per outage) and turns them into command.refused
// events once the pipeline accepts events again.
import { EventFactory, UuidV7Generator, formatRfc3339Micros, type Clock, type CustodianEvent, type EventEnvelope, type Identity } from '@custodian/event-contracts';
import type { RefusalReasonCode } from '@custodian/event-bus';

const MAX_SESSION_IDS = 256;

interface RefusalTally {
  readonly reasonCode: RefusalReasonCode;
  reason: string;
  count: number;
  firstRefusedAt: string;
  lastRefusedAt: string;
  readonly sessionIds: Set<string>;
  truncated: boolean;
  sessionId: string | undefined;
  commandId: string | undefined;
}

/** The gateway's own identity on events it records about itself. */
export function gatewayServiceIdentity(instance: string): Identity {
  return { subject: `custodian-gateway/${instance}`, issuer: 'urn:custodian:gateway', groups: [], kind: 'service' };
}

function commandOf(events: readonly CustodianEvent[]): { sessionId?: string; commandId?: string; sessionIds: string[] } {
  const sessionIds = new Set<string>();
  let sessionId: string | undefined;
  let commandId: string | undefined;
  for (const e of events) {
    const payload = e.payload as { sessionId?: unknown; commandId?: unknown };
    if (typeof payload.sessionId === 'string') sessionIds.add(payload.sessionId);
    if (e.type === 'command.issued') {
      sessionId = e.payload.sessionId;
      commandId = e.payload.commandId;
    }
  }
  return { ...(sessionId ? { sessionId } : {}), ...(commandId ? { commandId } : {}), sessionIds: [...sessionIds] };
}

export class RefusalLedger {
  private readonly tallies = new Map<RefusalReasonCode, RefusalTally>();
  private outage: string | undefined;
  private readonly factory: EventFactory;
  private readonly ids: UuidV7Generator;

  constructor(
    private readonly instance: string,
    private readonly clock: Clock,
  ) {
    this.factory = new EventFactory({ service: 'gateway', instance }, clock);
    this.ids = new UuidV7Generator(clock);
  }

  get pending(): boolean {
    return this.tallies.size > 0;
  }

  /** Counts one refused accept() (usually one command). */
  record(reasonCode: RefusalReasonCode, reason: string, events: readonly CustodianEvent[]): void {
    const now = formatRfc3339Micros(this.clock.nowMicros());
    const { sessionId, commandId, sessionIds } = commandOf(events);
    let tally = this.tallies.get(reasonCode);
    if (!tally) {
      tally = { reasonCode, reason, count: 0, firstRefusedAt: now, lastRefusedAt: now, sessionIds: new Set(), truncated: false, sessionId, commandId };
      this.tallies.set(reasonCode, tally);
    }
    tally.count += 1;
    tally.reason = reason;
    tally.lastRefusedAt = now;
    if (tally.count > 1) {
      tally.sessionId = undefined;
      tally.commandId = undefined;
    }
    for (const id of sessionIds) {
      if (tally.sessionIds.size < MAX_SESSION_IDS) tally.sessionIds.add(id);
      else if (!tally.sessionIds.has(id)) tally.truncated = true;
    }
  }

  /**
   * The command.refused events for everything counted so far, on the stream
   * `pipeline-<instance>.<outage id>`; `settle()` them once they are durable.
   */
  drafts(): { events: EventEnvelope<'command.refused'>[]; settle: () => void } {
    this.outage ??= this.ids.next(Number(this.clock.nowMicros() / 1000n));
    const instance = this.instance.replace(/[^A-Za-z0-9._:-]/g, '_').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '').slice(0, 100) || 'gateway';
    const stream = `pipeline-${instance}.${this.outage}`;
    const snapshot = [...this.tallies.values()].map((t) => ({ ...t, sessionIds: [...t.sessionIds] }));
    const events = snapshot.map((t, i) =>
      this.factory.create({
        type: 'command.refused',
        stream,
        sequence: i,
        identity: gatewayServiceIdentity(this.instance),
        payload: {
          ...(t.sessionId ? { sessionId: t.sessionId } : {}),
          ...(t.commandId ? { commandId: t.commandId } : {}),
          reasonCode: t.reasonCode,
          reason: t.reason.slice(0, 2048),
          count: t.count,
          firstRefusedAt: t.firstRefusedAt,
          lastRefusedAt: t.lastRefusedAt,
          sessionIds: t.sessionIds,
          sessionIdsTruncated: t.truncated,
        },
      }),
    );
    return {
      events,
      settle: () => {
        // Refusals counted while these were being written belong to the next outage record.
        for (const t of snapshot) {
          const live = this.tallies.get(t.reasonCode);
          if (!live) continue;
          if (live.count === t.count) this.tallies.delete(t.reasonCode);
          else {
            live.count -= t.count;
            live.firstRefusedAt = t.lastRefusedAt;
            live.sessionId = undefined;
            live.commandId = undefined;
          }
        }
        this.outage = undefined;
      },
    };
  }
}

/**
 * Writes a ledger's pending command.refused records once the pipeline takes events again: one
 * attempt at a time, retried every `intervalMs` while any is pending, never after `stop()`.
 * Both pipelines use it; only how they write (`write`) differs.
 */
export class RefusalRecovery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly refusals: RefusalLedger,
    private readonly write: (events: readonly CustodianEvent[]) => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  schedule(delayMs = this.intervalMs): void {
    if (this.stopped || this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.attempt().finally(() => {
        this.running = undefined;
        if (this.refusals.pending) this.schedule();
      });
    }, delayMs);
  }

  /** No further attempts; resolves when the one in flight, if any, has ended. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }

  private async attempt(): Promise<void> {
    if (!this.refusals.pending || this.stopped) return;
    const { events, settle } = this.refusals.drafts();
    try {
      await this.write(events);
    } catch {
      return; // still refusing; tried again later
    }
    settle();
  }
}

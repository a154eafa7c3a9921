// Tool-definition pins of one MCP connection, event-sourced in the stream `mcp-tools-<connection>`:
// `tool-definition.pinned` (first seen), `tool-definition.changed` (a "rug pull": the tool is
// blocked), `tool-definition.accepted` (a human made the new definition the pin). The log is the
// source of truth: a gateway rebuilds its pins from it at start and after a restart, every gateway
// replica and the API share them, and appends use optimistic concurrency on the stream revision,
// so two writers never record contradicting pins.
import { EventFactory, type CustodianEvent, type EventSource, type Identity } from '@custodian/event-contracts';
import { EventStoreError, type EventStore } from '@custodian/event-store';

export const TOOL_PIN_STREAM_PREFIX = 'mcp-tools-';
const FINGERPRINT = /^[0-9a-f]{64}$/;
const DESCRIPTION_LIMIT = 4096;
const APPEND_ATTEMPTS = 5;

/** The stream of a connection's pins. */
export function toolPinStream(connection: string): string {
  return `${TOOL_PIN_STREAM_PREFIX}${connection}`;
}

export interface ToolPinChange {
  readonly fingerprint: string;
  readonly detectedAt: string;
  readonly description?: string;
}

export interface ToolPin {
  readonly tool: string;
  /** The accepted definition's fingerprint. */
  readonly fingerprint: string;
  readonly pinnedAt: string;
  /** A changed definition waiting for a human: calls to the tool are blocked meanwhile. */
  readonly changed?: ToolPinChange;
}

export type PinObservation =
  | { readonly status: 'first-seen' | 'pinned'; readonly fingerprint: string }
  | { readonly status: 'changed'; readonly previous: string; readonly fingerprint: string; readonly newlyDetected: boolean };

export type ToolPinErrorCode = 'TOOL_PIN_INVALID' | 'TOOL_PIN_NOT_FOUND' | 'TOOL_PIN_NOT_CHANGED' | 'TOOL_PIN_FINGERPRINT_MISMATCH' | 'TOOL_PIN_CONFLICT';

export class ToolPinError extends Error {
  override readonly name = 'ToolPinError';
  constructor(
    readonly code: ToolPinErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ToolPinLedgerOptions {
  readonly eventStore: EventStore;
  /** `source` of the events this ledger writes (the gateway's, or the API's). */
  readonly source: EventSource;
  /** The MCP connection's configured name. */
  readonly connection: string;
}

export interface ObservationContext {
  /** The client whose session saw the definition (the events' identity). */
  readonly identity: Identity | null;
  readonly sessionId?: string;
  /** The new definition's description as the human deciding should read it (already masked). */
  readonly description?: string;
}

function isWrongRevision(error: unknown): boolean {
  return error instanceof EventStoreError && (error.code === 'EVENT_STORE_WRONG_EXPECTED_REVISION' || error.code === 'EVENT_STORE_SEQUENCE_MISMATCH');
}

export class ToolPinLedger {
  readonly stream: string;
  private readonly factory: EventFactory;
  private readonly pins = new Map<string, ToolPin>();
  /** Revision of the last event applied; -1 before the stream exists. */
  private revision = -1;
  /** Appends (and the reads they depend on) run one at a time per ledger. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ToolPinLedgerOptions) {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(options.connection)) throw new ToolPinError('TOOL_PIN_INVALID', `connection name ${JSON.stringify(options.connection)} is not a valid connection name`);
    this.stream = toolPinStream(options.connection);
    this.factory = new EventFactory(options.source);
  }

  get connection(): string {
    return this.options.connection;
  }

  /** The pin of a tool as last read from the log. */
  get(tool: string): ToolPin | undefined {
    return this.pins.get(tool);
  }

  list(): readonly ToolPin[] {
    return [...this.pins.values()].sort((a, b) => a.tool.localeCompare(b.tool));
  }

  /** Reads the events appended since the last read (by anyone: another replica, the API). */
  refresh(): Promise<void> {
    return this.exclusive(() => this.readNew());
  }

  /**
   * A definition seen in a tools/list: pinned when first seen, else compared with the pin. A
   * change is recorded once per new fingerprint (`newlyDetected`); the same change seen again
   * (another session, after a restart) is not recorded twice.
   */
  observe(tool: string, fingerprint: string, context: ObservationContext): Promise<PinObservation> {
    if (!FINGERPRINT.test(fingerprint)) return Promise.reject(new ToolPinError('TOOL_PIN_INVALID', 'a fingerprint is 64 lower-case hex digits'));
    const cached = this.pins.get(tool);
    // The common case costs no I/O: the definition is the pinned one, or a change already on record.
    if (cached?.fingerprint === fingerprint) return Promise.resolve({ status: 'pinned', fingerprint });
    if (cached?.changed?.fingerprint === fingerprint) return Promise.resolve({ status: 'changed', previous: cached.fingerprint, fingerprint, newlyDetected: false });
    return this.exclusive(async () => {
      for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
        await this.readNew();
        const pin = this.pins.get(tool);
        if (pin?.fingerprint === fingerprint) return { status: 'pinned', fingerprint };
        if (pin?.changed?.fingerprint === fingerprint) return { status: 'changed', previous: pin.fingerprint, fingerprint, newlyDetected: false };
        const sequence = this.revision + 1;
        const connection = { name: this.options.connection, protocol: 'mcp' as const };
        const session = context.sessionId === undefined ? {} : { sessionId: context.sessionId };
        const event: CustodianEvent = pin
          ? this.factory.create({
              type: 'tool-definition.changed',
              stream: this.stream,
              sequence,
              identity: context.identity,
              payload: { ...session, connection, tool, previousFingerprint: pin.fingerprint, fingerprint, ...(context.description === undefined ? {} : { description: context.description.slice(0, DESCRIPTION_LIMIT) }) },
            })
          : this.factory.create({ type: 'tool-definition.pinned', stream: this.stream, sequence, identity: context.identity, payload: { ...session, connection, tool, fingerprint } });
        try {
          await this.options.eventStore.append(this.stream, [event], { expectedRevision: this.revision === -1 ? 'no-stream' : this.revision });
        } catch (error) {
          if (isWrongRevision(error)) continue;
          throw error;
        }
        this.apply(event, sequence);
        return pin ? { status: 'changed', previous: pin.fingerprint, fingerprint, newlyDetected: true } : { status: 'first-seen', fingerprint };
      }
      throw new ToolPinError('TOOL_PIN_CONFLICT', `the pins of ${this.options.connection} kept changing while recording ${tool}; try again`);
    });
  }

  /**
   * A human accepts the changed definition with `fingerprint`: it becomes the pin. Refused when
   * the tool has no changed definition waiting, or another one than the human looked at.
   */
  accept(tool: string, fingerprint: string, acceptor: Identity, justification: string): Promise<ToolPin> {
    if (!FINGERPRINT.test(fingerprint)) return Promise.reject(new ToolPinError('TOOL_PIN_INVALID', 'fingerprint must be 64 lower-case hex digits'));
    const why = justification.trim();
    if (why === '' || why.length > 2000) return Promise.reject(new ToolPinError('TOOL_PIN_INVALID', 'a justification of 1 to 2000 characters is required'));
    return this.exclusive(async () => {
      await this.readNew();
      const pin = this.pins.get(tool);
      if (!pin) throw new ToolPinError('TOOL_PIN_NOT_FOUND', `no tool ${tool} was ever seen on connection ${this.options.connection}`);
      if (!pin.changed) throw new ToolPinError('TOOL_PIN_NOT_CHANGED', `tool ${tool} on ${this.options.connection} has no changed definition waiting for acceptance`);
      if (pin.changed.fingerprint !== fingerprint) {
        throw new ToolPinError('TOOL_PIN_FINGERPRINT_MISMATCH', `the definition of ${tool} waiting for acceptance is ${pin.changed.fingerprint}, not ${fingerprint}`);
      }
      const sequence = this.revision + 1;
      const event = this.factory.create({
        type: 'tool-definition.accepted',
        stream: this.stream,
        sequence,
        identity: acceptor,
        payload: { connection: { name: this.options.connection, protocol: 'mcp' }, tool, previousFingerprint: pin.fingerprint, fingerprint, justification: why },
      });
      try {
        await this.options.eventStore.append(this.stream, [event], { expectedRevision: this.revision });
      } catch (error) {
        if (isWrongRevision(error)) throw new ToolPinError('TOOL_PIN_CONFLICT', `the pins of ${this.options.connection} changed meanwhile; look again and retry`);
        throw error;
      }
      this.apply(event, sequence);
      return this.pins.get(tool)!;
    });
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async readNew(): Promise<void> {
    for await (const recorded of this.options.eventStore.readStream(this.stream, { fromRevision: this.revision + 1 })) this.apply(recorded.event, recorded.revision);
  }

  private apply(event: CustodianEvent, revision: number): void {
    this.revision = revision;
    const at = event.occurredAt;
    switch (event.type) {
      case 'tool-definition.pinned':
        this.pins.set(event.payload.tool, { tool: event.payload.tool, fingerprint: event.payload.fingerprint, pinnedAt: at });
        break;
      case 'tool-definition.changed': {
        const pin = this.pins.get(event.payload.tool);
        const previous = pin?.fingerprint ?? event.payload.previousFingerprint;
        const description = event.payload.description;
        this.pins.set(event.payload.tool, {
          tool: event.payload.tool,
          fingerprint: previous,
          pinnedAt: pin?.pinnedAt ?? at,
          changed: { fingerprint: event.payload.fingerprint, detectedAt: at, ...(description === undefined ? {} : { description }) },
        });
        break;
      }
      case 'tool-definition.accepted':
        this.pins.set(event.payload.tool, { tool: event.payload.tool, fingerprint: event.payload.fingerprint, pinnedAt: at });
        break;
      default:
        // Nothing else belongs in the stream; a foreign event changes no pin.
        break;
    }
  }
}

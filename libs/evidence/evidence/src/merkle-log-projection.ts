// The evidence Merkle log: a projection of the event store that appends every event, in global
// order, as an RFC 6962 leaf (leaf-format.ts: its canonical header, or for leaves before the log's
// switch to format 2, its canonical envelope) and signs C2SP checkpoints of the
// tree every N events or T seconds. Each checkpoint is recorded as a `checkpoint.signed` event —
// which is itself a later leaf of the log — and published on the checkpoints topic.
import { EventFactory, SystemClock, formatRfc3339Micros, type Clock, type CustodianEvent, type EventEnvelope, type Identity } from '@custodian/event-contracts';
import { CHECKPOINTS_TOPIC, EVENT_HEADERS, type BusPublisher } from '@custodian/event-bus';
import { comparePositions, type CheckpointStore, type EventStore, type GlobalPosition, type RecordedEvent, type Subscription } from '@custodian/event-store';
import { CheckpointSigner, Ed25519NoteVerifier, MerkleTree, formatKeyId, parseNote, signedAtExtension, type NoteSigner, type SignedCheckpoint } from '@custodian/transparency-log';
import { LEAF_FORMAT_HEADER, eventLeafHash, leafFormatAt, type LeafFormat } from './canonical-leaf.js';
import { EvidenceError } from './errors.js';
import { eventAttributes } from './event-attributes.js';
import type { EvidenceLogState, LeafRecord, StoredCheckpoint } from './evidence-log-state.js';
import { SILENT_LOGGER, type EvidenceLogger } from './evidence-logger.js';

/** Sign a checkpoint after this many new events, or this many seconds after the first unsigned one, whichever comes first. */
export interface CheckpointPolicy {
  readonly everyEvents: number;
  readonly everySeconds: number;
}

/** Stream of the log's checkpoint.signed events. */
export const CHECKPOINT_STREAM = 'evidence-checkpoints';
export const MERKLE_LOG_SUBSCRIPTION = 'evidence-merkle-log';

export interface MerkleLogProjectionOptions {
  readonly eventStore: EventStore;
  readonly state: EvidenceLogState;
  /** The current signing key (name = the log's origin by convention). */
  readonly signer: NoteSigner;
  /** vkeys of retired signing keys: checkpoints they signed still verify. */
  readonly previousKeys?: readonly string[];
  readonly policy: CheckpointPolicy;
  /** Where each signed checkpoint is published (topic custodian.checkpoints.v1). */
  readonly publisher?: BusPublisher;
  /** `source.instance` of checkpoint.signed events. */
  readonly instance: string;
  readonly clock?: Clock;
  readonly logger?: EvidenceLogger;
  /** Leaves appended in one tree append at most. Default 1000. */
  readonly maxBatchLeaves?: number;
  /**
   * How long buffered leaves wait for more before they are appended. Default 250 ms: each append
   * costs an fsync (leaf records and tree nodes together), and in `custodian start` it shares the
   * disk with the event store's commits, which strict-mode commands wait for.
   */
  readonly flushDelayMs?: number;
  /**
   * The leaf format of new leaves (leaf-format.ts). Default 2 (event headers: filtered packs can
   * prove completeness). A log with format-1 leaves switches at its next leaf, recorded in the
   * state; a switch is never undone (1 here only keeps a log that never switched in format 1).
   */
  readonly leafFormat?: LeafFormat;
}

export function projectorIdentity(instance: string): Identity {
  return { subject: `custodian-projector/${instance}`, issuer: 'urn:custodian:projector', groups: [], kind: 'service' };
}

export class MerkleLogProjection {
  readonly origin: string;
  readonly #o: MerkleLogProjectionOptions;
  readonly #tree: MerkleTree;
  readonly #signer: CheckpointSigner;
  readonly #factory: EventFactory;
  readonly #clock: Clock;
  readonly #logger: EvidenceLogger;
  readonly #maxBatch: number;
  readonly #flushDelayMs: number;
  #buffer: RecordedEvent[] = [];
  #lastSeen: GlobalPosition | undefined;
  #unsigned: number;
  #firstUnsignedAt: number | undefined;
  #nextSequence: number;
  /** Leaves from this index on are format 2 (undefined: all format 1). */
  readonly #headerFrom: number | undefined;
  #work: Promise<unknown> = Promise.resolve();
  #flushTimer: NodeJS.Timeout | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #subscription: Subscription | undefined;
  #failure: unknown;
  #closed = false;

  private constructor(options: MerkleLogProjectionOptions, tree: MerkleTree, signer: CheckpointSigner, lastSeen: GlobalPosition | undefined, unsigned: number, nextSequence: number, headerFrom: number | undefined) {
    this.#o = options;
    this.#headerFrom = headerFrom;
    this.origin = options.state.origin;
    this.#tree = tree;
    this.#signer = signer;
    this.#clock = options.clock ?? new SystemClock();
    this.#factory = new EventFactory({ service: 'projector', instance: options.instance }, this.#clock);
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#maxBatch = options.maxBatchLeaves ?? 1000;
    this.#flushDelayMs = options.flushDelayMs ?? 250;
    this.#lastSeen = lastSeen;
    this.#unsigned = unsigned;
    this.#nextSequence = nextSequence;
    if (!Number.isSafeInteger(options.policy.everyEvents) || options.policy.everyEvents < 1) throw new EvidenceError('EVIDENCE_SCOPE_INVALID', 'checkpoint everyEvents must be a positive integer');
    if (!(options.policy.everySeconds > 0)) throw new EvidenceError('EVIDENCE_SCOPE_INVALID', 'checkpoint everySeconds must be positive');
  }

  /**
   * Opens the log: completes the tree from recorded leaves after a crash (nothing is rehashed from
   * the store), resumes the signer from the last checkpoint (verified with the known keys), and
   * appends/publishes checkpoints whose delivery was interrupted.
   */
  static async open(options: MerkleLogProjectionOptions): Promise<MerkleLogProjection> {
    const { state } = options;
    if (options.signer.name !== state.origin) throw new EvidenceError('EVIDENCE_KEY_INVALID', `the signing key is named ${JSON.stringify(options.signer.name)}; the log's origin is ${JSON.stringify(state.origin)}`);
    const tree = await MerkleTree.open(state.treeStorage);
    const recorded = await state.leafCount();
    if (recorded < tree.size) throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `the tree has ${tree.size} leaves but only ${recorded} are recorded`);
    if (recorded > tree.size) {
      // Leaves recorded before a crash, not yet in the tree: append them from the records.
      const missing = await state.leaves(tree.size, recorded);
      await tree.appendLeafHashes(missing.map((l) => l.leafHash));
    }
    // The switch to leaf format 2 (headers), recorded once: at the first leaf appended from now on.
    let headerFrom = await state.leafFormatSwitch();
    if (headerFrom === undefined && (options.leafFormat ?? LEAF_FORMAT_HEADER) === LEAF_FORMAT_HEADER) {
      await state.recordLeafFormatSwitch(tree.size);
      headerFrom = tree.size;
    }
    const last = await state.lastCheckpoint();
    let previousKeys: Ed25519NoteVerifier[];
    try {
      previousKeys = (options.previousKeys ?? []).map((vkey) => new Ed25519NoteVerifier(vkey));
    } catch (error) {
      throw new EvidenceError('EVIDENCE_KEY_INVALID', `a previous key is not a valid vkey: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    let signer: CheckpointSigner;
    try {
      signer = new CheckpointSigner({ origin: state.origin, signer: options.signer, previousKeys, ...(last ? { lastSigned: last.note } : {}) });
    } catch (error) {
      throw new EvidenceError(
        'EVIDENCE_KEY_INVALID',
        `the last checkpoint (size ${last?.treeSize}) does not verify with the configured keys; after a rotation, list the old key's vkey in previousKeys (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
    }
    await state.recordKey(options.signer.vkey);
    for (const key of previousKeys) await state.recordKey(key.vkey);
    const lastLeaf = await state.lastLeaf();
    const signedSize = last?.treeSize ?? 0;
    const pendingLeaves = await state.leaves(signedSize, tree.size);
    const unsigned = pendingLeaves.filter((l) => l.type !== 'checkpoint.signed').length;
    const projection = new MerkleLogProjection(options, tree, signer, lastLeaf?.position, unsigned, 0, headerFrom);
    // Checkpoint events signed before a crash but not yet appended carry their sequence already:
    // append them first, then continue the stream after them.
    await projection.#deliverPending();
    const revision = await options.eventStore.streamRevision(CHECKPOINT_STREAM);
    projection.#nextSequence = revision === 'no-stream' ? 0 : revision + 1;
    return projection;
  }

  /** Leaves in the tree. */
  get size(): number {
    return this.#tree.size;
  }

  /** The leaf index from which leaves are format 2 (undefined: the log never switched). */
  get leafFormatSwitch(): number | undefined {
    return this.#headerFrom;
  }

  get tree(): MerkleTree {
    return this.#tree;
  }

  /** vkeys of every key this log verifies with (current first). */
  get vkeys(): string[] {
    return this.#signer.verifiers.map((v) => (v as { vkey?: string }).vkey ?? '').filter((v) => v.length > 0);
  }

  get currentVkey(): string {
    return this.#signer.vkey;
  }

  /** Subscribes to the event store from the last recorded leaf on. */
  start(): Subscription {
    if (this.#subscription) return this.#subscription;
    const state = this.#o.state;
    // The log's own records say how far it got; the store's checkpoint would be a second truth.
    const checkpoints: CheckpointStore = {
      load: async () => (await state.lastLeaf())?.position,
      save: async () => undefined,
    };
    this.#subscription = this.#o.eventStore.subscribeToAll({
      subscriptionId: MERKLE_LOG_SUBSCRIPTION,
      from: 'checkpoint',
      checkpoints,
      handler: (recorded) => this.#handle(recorded),
    });
    return this.#subscription;
  }

  /** Resolves when the subscription has caught up and every event it delivered is in the tree. */
  async caughtUp(): Promise<void> {
    if (!this.#subscription) throw new EvidenceError('EVIDENCE_LOG_CLOSED', 'the projection is not started');
    await this.#subscription.caughtUp;
    await this.flush();
  }

  /** Appends buffered events to the tree now. */
  flush(): Promise<void> {
    return this.#serial(() => this.#flushBuffer());
  }

  /** Signs a checkpoint now if there are unsigned leaves (buffered events are flushed first). */
  checkpointNow(): Promise<StoredCheckpoint | undefined> {
    return this.#serial(async () => {
      await this.#flushBuffer();
      return this.#signIfNeeded(true);
    });
  }

  /** Makes `next` the signing key; the old one stays known for verification. */
  async rotate(next: NoteSigner): Promise<void> {
    await this.#serial(async () => {
      if (next.name !== this.origin) throw new EvidenceError('EVIDENCE_KEY_INVALID', `the signing key must be named ${JSON.stringify(this.origin)}`);
      this.#signer.rotate(next);
      await this.#o.state.recordKey(next.vkey);
      this.#logger.info({ keyId: formatKeyId(next.keyId) }, 'evidence log signing key rotated');
    });
  }

  /** Stops the subscription, flushes, and closes the state. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#subscription?.stop();
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#checkpointTimer);
    await this.#serial(() => this.#flushBuffer()).catch(() => undefined);
    await this.#work.catch(() => undefined);
    await this.#tree.close();
    await this.#o.state.close();
  }

  async #handle(recorded: RecordedEvent): Promise<void> {
    if (this.#failure) throw this.#failure;
    // At-least-once delivery: anything at or before the last position seen is already a leaf (or buffered).
    if (this.#lastSeen !== undefined && comparePositions(recorded.position, this.#lastSeen) <= 0) return;
    this.#lastSeen = recorded.position;
    this.#buffer.push(recorded);
    if (this.#buffer.length >= this.#maxBatch) await this.flush();
    else this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      this.flush().catch((error: unknown) => this.#fail(error));
    }, this.#flushDelayMs);
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    this.#logger.error({ err: error instanceof Error ? { name: error.name, message: error.message } : String(error) }, 'evidence log projection failed');
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#work.then(task, task);
    this.#work = run.catch(() => undefined);
    return run;
  }

  async #flushBuffer(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, this.#maxBatch);
      const first = this.#tree.size;
      const records: LeafRecord[] = batch.map((r, i) => ({
        leafIndex: first + i,
        position: r.position,
        eventId: r.event.id,
        type: r.event.type,
        occurredAt: r.event.occurredAt,
        ...eventAttributes(r.event),
        leafHash: eventLeafHash(r.event, leafFormatAt(first + i, this.#headerFrom)),
      }));
      if (this.#o.state.appendLeaves) {
        // Records and tree nodes in one write (one fsync).
        await this.#o.state.appendLeaves(records, this.#tree);
      } else {
        // Recorded first: after a crash between the two, open() completes the tree from the records.
        await this.#o.state.recordLeaves(records);
        await this.#tree.appendLeafHashes(records.map((r) => r.leafHash));
      }
      const meaningful = batch.filter((r) => !this.#isOwnCheckpoint(r.event)).length;
      if (meaningful > 0) {
        this.#unsigned += meaningful;
        this.#firstUnsignedAt ??= Date.now();
      }
    }
    if (this.#unsigned >= this.#o.policy.everyEvents) await this.#signIfNeeded(false);
    else this.#armCheckpointTimer();
  }

  #isOwnCheckpoint(event: CustodianEvent): boolean {
    return event.type === 'checkpoint.signed' && event.payload.origin === this.origin;
  }

  #armCheckpointTimer(): void {
    if (this.#unsigned === 0 || this.#checkpointTimer || this.#closed) return;
    const due = (this.#firstUnsignedAt ?? Date.now()) + this.#o.policy.everySeconds * 1000;
    this.#checkpointTimer = setTimeout(() => {
      this.#checkpointTimer = undefined;
      this.#serial(() => this.#signIfNeeded(false)).catch((error: unknown) => this.#fail(error));
    }, Math.max(0, due - Date.now()));
    this.#checkpointTimer.unref?.();
  }

  /**
   * Signs the current tree when it has leaves other than this log's own checkpoint events since
   * the last checkpoint (`force`: when it has any new leaf). Otherwise every checkpoint event would
   * cause the next checkpoint, forever.
   */
  async #signIfNeeded(force: boolean): Promise<StoredCheckpoint | undefined> {
    clearTimeout(this.#checkpointTimer);
    this.#checkpointTimer = undefined;
    const lastSize = this.#signer.lastSigned?.checkpoint.size ?? 0;
    if (this.#tree.size <= lastSize || (this.#unsigned === 0 && !force)) return undefined;
    // The signing time goes into the signed checkpoint (an extension line), so that auditors can
    // recompute checkpoint-gap findings offline from what the log key vouches for.
    const signedAt = formatRfc3339Micros(this.#clock.nowMicros());
    const signed = await this.#signer.signTree(this.#tree, [signedAtExtension(signedAt)]);
    this.#unsigned = 0;
    this.#firstUnsignedAt = undefined;
    const stored = await this.#record(signed, signedAt);
    await this.#deliverPending();
    return stored;
  }

  async #record(signed: SignedCheckpoint, signedAt: string): Promise<StoredCheckpoint> {
    const keyIds = parseNote(signed.note).signatures.map((s) => formatKeyId(s.keyId));
    const event: EventEnvelope<'checkpoint.signed'> = this.#factory.create({
      type: 'checkpoint.signed',
      stream: CHECKPOINT_STREAM,
      sequence: this.#nextSequence,
      identity: projectorIdentity(this.#o.instance),
      payload: { origin: this.origin, treeSize: signed.checkpoint.size, rootHash: signed.checkpoint.rootHash.toString('base64'), note: signed.note, keyIds: keyIds as [string, ...string[]] },
    });
    this.#nextSequence += 1;
    const stored: StoredCheckpoint = {
      treeSize: signed.checkpoint.size,
      rootHash: signed.checkpoint.rootHash,
      note: signed.note,
      keyIds,
      signedAt,
      eventJson: JSON.stringify(event),
      appended: false,
      published: false,
    };
    await this.#o.state.saveCheckpoint(stored);
    this.#logger.info({ treeSize: stored.treeSize, keyIds }, 'evidence log checkpoint signed');
    return stored;
  }

  /** Appends checkpoint events to the store and publishes them, for every checkpoint not yet delivered (idempotent: the event id is fixed). */
  async #deliverPending(): Promise<void> {
    for (const checkpoint of await this.#o.state.undeliveredCheckpoints({ unpublished: this.#o.publisher !== undefined })) {
      if (checkpoint.appended && (checkpoint.published || !this.#o.publisher)) continue;
      const event = JSON.parse(checkpoint.eventJson) as EventEnvelope<'checkpoint.signed'>;
      if (!checkpoint.appended) {
        await this.#o.eventStore.append(CHECKPOINT_STREAM, [event], { expectedRevision: 'any' });
        await this.#o.state.markCheckpoint(checkpoint.treeSize, { appended: true });
      }
      if (this.#o.publisher && !checkpoint.published) {
        try {
          await this.#o.publisher.publish([
            { topic: CHECKPOINTS_TOPIC, key: this.origin, value: JSON.stringify(event.payload), headers: { [EVENT_HEADERS.id]: event.id, [EVENT_HEADERS.type]: event.type, [EVENT_HEADERS.schemaVersion]: String(event.schemaVersion) } },
          ]);
          await this.#o.state.markCheckpoint(checkpoint.treeSize, { published: true });
        } catch (error) {
          // Retried with the next checkpoint; consumers deduplicate on the event id header.
          this.#logger.warn({ treeSize: checkpoint.treeSize, err: error instanceof Error ? error.message : String(error) }, 'checkpoint not published; will retry');
          return;
        }
      }
    }
  }
}

import type { GlobalPosition } from '@custodian/event-store';
import type { Hash, MerkleTree, TreeStorage } from '@custodian/transparency-log';

/** What the log knows about one leaf: which event it is, where it was in the store, and a few fields views select on. */
export interface LeafRecord {
  readonly leafIndex: number;
  readonly position: GlobalPosition;
  readonly eventId: string;
  readonly type: string;
  readonly occurredAt: string;
  /** Envelope identity subject; null for events without an identity. */
  readonly subject: string | null;
  /** Connection name, when the payload names one (sessions, approvals, credentials). */
  readonly connection: string | null;
  readonly sessionId: string | null;
  readonly leafHash: Hash;
}

export interface StoredCheckpoint {
  readonly treeSize: number;
  readonly rootHash: Hash;
  /** The log's signed note (C2SP checkpoint), without witness cosignatures. */
  readonly note: string;
  /** Key IDs (hex) that signed it. */
  readonly keyIds: readonly string[];
  /** When it was signed (RFC 3339, microseconds). */
  readonly signedAt: string;
  /** The checkpoint.signed event (JSON) recorded for it; appended to the store idempotently. */
  readonly eventJson: string;
  readonly appended: boolean;
  readonly published: boolean;
}

export interface StoredCosignature {
  readonly treeSize: number;
  readonly witness: string;
  /** Hex key ID of the witness's cosignature/v1 key. */
  readonly keyId: string;
  /** Unix seconds the witness states. */
  readonly timestamp: number;
  /** The signature line as the witness wrote it (`— <name> <base64>`). */
  readonly line: string;
}

export interface LeafQuery {
  /** Inclusive, RFC 3339 (compared as text: both sides are UTC with microseconds). */
  readonly from?: string;
  /** Exclusive. */
  readonly to?: string;
  readonly subject?: string;
  readonly connection?: string;
  readonly types?: readonly string[];
  /** Only leaves below this index (e.g. a checkpoint's size). */
  readonly belowIndex?: number;
  /** Only leaves at or above this index (paging, or what came after a checkpoint). */
  readonly fromIndex?: number;
  /** At most this many leaves (the first ones by index, or the last ones when `descending`). */
  readonly limit?: number;
  /** Highest leaf index first. */
  readonly descending?: boolean;
}

/**
 * Durable state of the evidence Merkle log besides the tree nodes: which event is each leaf, the
 * signed checkpoints, witness cosignatures and every key the log has signed with. Leaves are
 * recorded before they are appended to the tree, so after a crash the tree can be completed from
 * here without re-reading the event store (see MerkleLogProjection.open).
 */
export interface EvidenceLogState {
  readonly origin: string;
  readonly treeStorage: TreeStorage;
  recordLeaves(leaves: readonly LeafRecord[]): Promise<void>;
  /**
   * Records leaves and appends their hashes to `tree` (opened on this state's treeStorage) in one
   * durable write: one commit, one fsync, both or neither. Optional; without it the projection
   * records the leaves, then appends them to the tree (two writes).
   */
  appendLeaves?(leaves: readonly LeafRecord[], tree: MerkleTree): Promise<void>;
  /**
   * The leaf index from which this log's leaves are in leaf format 2 (event headers; leaf-format.ts);
   * leaves below it are format 1 (whole envelopes). Undefined: not recorded yet (a log opened before
   * leaf format 2 existed, or a new one).
   */
  leafFormatSwitch(): Promise<number | undefined>;
  /** Records the switch to leaf format 2 at `leafIndex`, once (a later call with another index fails). */
  recordLeafFormatSwitch(leafIndex: number): Promise<void>;
  leafCount(): Promise<number>;
  lastLeaf(): Promise<LeafRecord | undefined>;
  /** Leaves with index in [from, to), ascending. */
  leaves(from: number, to: number): Promise<LeafRecord[]>;
  /** Leaves matching a query, ascending by index. */
  findLeaves(query: LeafQuery): Promise<LeafRecord[]>;
  saveCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  markCheckpoint(treeSize: number, flags: { appended?: boolean; published?: boolean }): Promise<void>;
  /** Ascending by tree size. */
  checkpoints(): Promise<StoredCheckpoint[]>;
  lastCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Checkpoints not yet appended to the event store (or, with `unpublished`, not yet published), ascending. */
  undeliveredCheckpoints(options: { unpublished: boolean }): Promise<StoredCheckpoint[]>;
  addCosignature(cosignature: StoredCosignature): Promise<void>;
  cosignatures(treeSize?: number): Promise<StoredCosignature[]>;
  /** Records a vkey the log signs with (idempotent). */
  recordKey(vkey: string): Promise<void>;
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

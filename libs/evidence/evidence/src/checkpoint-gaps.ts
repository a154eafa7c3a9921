// checkpoint-gap findings (docs/evidence-pack-format.md §6): how long the earliest event a checkpoint
// newly covers waited for it. One scan shared by the views (which export the findings) and the pack
// verifier (which recomputes them from the checkpoints' signed times), so both decide alike.
import { deterministicUuid } from './deterministic-uuid.js';
import { instantKey } from './leaf-format.js';

export const CHECKPOINT_GAP = 'checkpoint-gap';

/** A checkpoint's size and signing time (undefined: the checkpoint does not state it, so it is not proven). */
export interface GapCheckpoint {
  readonly treeSize: number;
  readonly signedAt: string | undefined;
}

/** The earliest event a checkpoint newly covers: a finding when it waited longer than allowed. */
export interface GapCandidate {
  readonly leafIndex: number;
  readonly occurredAt: string;
  /** The size of the checkpoint that first covers it (the finding's `upTo`). */
  readonly upTo: number;
  /** That checkpoint's signing time; undefined when not stated. */
  readonly signedAt: string | undefined;
  /** signedAt − occurredAt in microseconds; undefined when signedAt is. */
  readonly delayMicros: number | undefined;
}

/** Microseconds since the epoch of an RFC 3339 time (digits beyond the sixth are dropped), or undefined. */
export function instantMicros(value: string): number | undefined {
  const key = instantKey(value);
  if (key === undefined) return undefined;
  return (Date.parse(`${key.slice(0, 19)}Z`) / 1000) * 1_000_000 + Number(key.slice(20, 26));
}

/** The allowed delay as an integer number of microseconds (what a pack ships, `checkpointGap.maxDelayMicroseconds`). */
export function maxDelayMicros(seconds: number): number {
  return Math.round(seconds * 1_000_000);
}

/** The finding's id: the same leaf and checkpoint always give the same id. */
export function checkpointGapId(leafIndex: number, upTo: number): string {
  return deterministicUuid('finding', CHECKPOINT_GAP, String(leafIndex), String(upTo));
}

/** Whether an event counts for checkpoint-gap: a `checkpoint.signed` event never waits for a checkpoint (it would call for the next one, forever). */
export function countsForCheckpointGap(type: unknown): boolean {
  return type !== 'checkpoint.signed';
}

/**
 * Scans events in leaf order against checkpoints in size order: for each checkpoint, the event with
 * the earliest time (the lowest leaf index among equal times) among those with leaf index in
 * [previous checkpoint's size, its size). Events at or above the last checkpoint's size are left over.
 */
export class CheckpointGapScan {
  readonly #checkpoints: readonly GapCheckpoint[];
  readonly #candidates: GapCandidate[] = [];
  #at = 0;
  #earliest: { leafIndex: number; occurredAt: string; micros: number } | undefined;
  #uncovered: { leafIndex: number; occurredAt: string; micros: number; last: number } | undefined;
  #lastIndex = -1;

  constructor(checkpoints: readonly GapCheckpoint[]) {
    this.#checkpoints = [...checkpoints].sort((a, b) => a.treeSize - b.treeSize);
  }

  /** The next event that counts (in the window, not a checkpoint.signed), in leaf order. */
  add(leafIndex: number, occurredAt: string, micros: number): void {
    if (leafIndex <= this.#lastIndex) throw new Error(`checkpoint-gap scan: leaf ${leafIndex} after leaf ${this.#lastIndex}`);
    this.#lastIndex = leafIndex;
    while (this.#at < this.#checkpoints.length && leafIndex >= this.#checkpoints[this.#at]!.treeSize) this.#close();
    if (this.#at >= this.#checkpoints.length) {
      if (!this.#uncovered || micros < this.#uncovered.micros) this.#uncovered = { leafIndex, occurredAt, micros, last: leafIndex };
      else this.#uncovered.last = leafIndex;
      return;
    }
    if (!this.#earliest || micros < this.#earliest.micros) this.#earliest = { leafIndex, occurredAt, micros };
  }

  /** One candidate per checkpoint that newly covers an event; and the earliest event no checkpoint covers, if any. */
  finish(): { readonly candidates: readonly GapCandidate[]; readonly uncovered?: { readonly leafIndex: number; readonly occurredAt: string; readonly micros: number; readonly lastIndex: number } } {
    while (this.#at < this.#checkpoints.length) this.#close();
    return { candidates: this.#candidates, ...(this.#uncovered ? { uncovered: { leafIndex: this.#uncovered.leafIndex, occurredAt: this.#uncovered.occurredAt, micros: this.#uncovered.micros, lastIndex: this.#uncovered.last } } : {}) };
  }

  #close(): void {
    const checkpoint = this.#checkpoints[this.#at]!;
    this.#at += 1;
    const first = this.#earliest;
    this.#earliest = undefined;
    if (!first) return;
    const signed = checkpoint.signedAt === undefined ? undefined : instantMicros(checkpoint.signedAt);
    this.#candidates.push({ leafIndex: first.leafIndex, occurredAt: first.occurredAt, upTo: checkpoint.treeSize, signedAt: checkpoint.signedAt, delayMicros: signed === undefined ? undefined : signed - first.micros });
  }
}

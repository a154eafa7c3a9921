// Reads a period's events from the event store through the log's leaf records, checking each
// against the leaf hash the log recorded: views and packs never show an event the log disagrees with.
import type { EventStore } from '@custodian/event-store';
import { hashLeaf, hashesEqual } from '@custodian/transparency-log';
import { canonicalEvent, leafFormatAt } from './canonical-leaf.js';
import { headerLeafOfLine } from './leaf-format.js';
import { EvidenceError } from './errors.js';
import type { EvidenceLogState, LeafQuery, LeafRecord } from './evidence-log-state.js';
import type { EvidenceEvent } from './evidence-views.js';

/** An event with its leaf bytes (what the log hashed) and its canonical envelope (an events.jsonl line). */
export interface EvidenceLeafEvent extends EvidenceEvent {
  /** The leaf bytes: the canonical envelope (format 1) or header (format 2). */
  readonly leaf: Buffer;
  readonly leafFormat: 1 | 2;
  /** The RFC 8785 canonical envelope (the leaf itself in format 1). */
  readonly line: Buffer;
}

/** The events of the leaves matching `query`, in leaf order. Throws EVIDENCE_LEAF_MISMATCH when the store disagrees with the log. */
export async function* eventsOfLeaves(store: EventStore, state: EvidenceLogState, query: LeafQuery, options: { pageSize?: number } = {}): AsyncGenerator<EvidenceLeafEvent> {
  // Leaf records a page at a time: a period of millions of events is never held at once.
  const pageSize = options.pageSize ?? 10_000;
  const headerFrom = await state.leafFormatSwitch();
  const page = async (fromIndex: number): Promise<LeafRecord[]> => state.findLeaves({ ...query, fromIndex: Math.max(fromIndex, query.fromIndex ?? 0), limit: pageSize });
  let leaves = await page(0);
  if (leaves.length === 0) return;
  const first = leaves[0]!;
  const before = first.leafIndex > 0 ? (await state.leaves(first.leafIndex - 1, first.leafIndex))[0]?.position : undefined;
  let k = 0;
  for await (const recorded of store.readAll(before ? { fromPosition: before } : {})) {
    const leaf = leaves[k]!;
    if (recorded.event.id !== leaf.eventId) continue;
    const leafFormat = leafFormatAt(leaf.leafIndex, headerFrom);
    const line = canonicalEvent(recorded.event);
    // The header reuses the line's canonical payload (the bytes of eventLeaf(event, 2), without canonicalizing twice).
    const bytes = leafFormat === 1 ? line : headerLeafOfLine(line.toString('utf8'), recorded.event as unknown as Record<string, unknown>);
    if (!hashesEqual(hashLeaf(bytes), leaf.leafHash)) {
      throw new EvidenceError('EVIDENCE_LEAF_MISMATCH', `event ${leaf.eventId} (leaf ${leaf.leafIndex}) in the store differs from what the log recorded: run \`custodian log verify\``);
    }
    yield { event: recorded.event, leafIndex: leaf.leafIndex, leaf: bytes, leafFormat, line };
    k += 1;
    if (k === leaves.length) {
      if (leaves.length < pageSize) return;
      leaves = await page(leaf.leafIndex + 1);
      k = 0;
      if (leaves.length === 0) return;
    }
  }
  throw new EvidenceError('EVIDENCE_LEAF_MISMATCH', `event ${leaves[k]!.eventId} (leaf ${leaves[k]!.leafIndex}) is missing from the store: run \`custodian log verify\``);
}

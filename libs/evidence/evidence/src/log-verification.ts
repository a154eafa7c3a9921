// `custodian log verify`: recompute the Merkle log from the event store and check every signed
// checkpoint against it. The log's own records (which event was each leaf, where it was stored)
// locate a difference at the event: modified, deleted, inserted or reordered, with its position.
import { formatPosition, type RecordedEvent } from '@custodian/event-store';
import { CompactRange, MerkleTree, hashesEqual, openCheckpoint, type Hash, type NoteVerifier } from '@custodian/transparency-log';
import { eventLeafHash } from './canonical-leaf.js';
import type { EvidenceLogState, LeafRecord } from './evidence-log-state.js';
import { Lookahead } from './lookahead.js';

export type LogProblemKind =
  | 'event-modified'
  | 'event-deleted'
  | 'event-inserted'
  | 'events-reordered'
  | 'event-replaced'
  | 'checkpoint-signature-invalid'
  | 'checkpoint-root-mismatch'
  | 'checkpoint-beyond-store'
  | 'log-state-mismatch';

export interface LogProblem {
  readonly kind: LogProblemKind;
  readonly message: string;
  /** Leaf index in the log (for events: where the log recorded it). */
  readonly leafIndex?: number;
  /** Position in the event store (`C<commit>/P<prepare>`). */
  readonly position?: string;
  readonly eventId?: string;
  readonly treeSize?: number;
}

export interface CheckedCheckpoint {
  readonly treeSize: number;
  readonly source: 'event-store' | 'log-state';
  readonly ok: boolean;
}

export interface LogVerificationReport {
  readonly ok: boolean;
  readonly events: number;
  readonly checkpoints: readonly CheckedCheckpoint[];
  /** Events in the store after the last checkpoint (not yet covered by a signature; not a failure). */
  readonly uncheckpointed: number;
  readonly problems: readonly LogProblem[];
}

export interface LogVerificationOptions {
  readonly origin: string;
  /** Every key the log signed with (retired ones included). */
  readonly verifiers: readonly NoteVerifier[];
  /** The events, in store order (`eventStore.readAll()`). */
  readonly events: AsyncIterable<RecordedEvent>;
  /** The log's records: locate differences and check its checkpoints too. */
  readonly state?: EvidenceLogState;
  /** Stop collecting event problems after this many. Default 100. */
  readonly maxProblems?: number;
  readonly onProgress?: (eventsRead: number) => void;
}

interface ActualLeaf {
  readonly index: number;
  readonly hash: Hash;
  readonly eventId: string;
  readonly position: string;
}

interface FoundCheckpoint {
  readonly note: string;
  readonly source: CheckedCheckpoint['source'];
  /** Where the note was found (store checkpoint events only). */
  readonly position?: string;
}

async function* recordedLeaves(state: EvidenceLogState, chunk = 2000): AsyncGenerator<LeafRecord> {
  for (let from = 0; ; from += chunk) {
    const leaves = await state.leaves(from, from + chunk);
    yield* leaves;
    if (leaves.length < chunk) return;
  }
}

export async function verifyLog(options: LogVerificationOptions): Promise<LogVerificationReport> {
  const maxProblems = options.maxProblems ?? 100;
  const problems: LogProblem[] = [];
  const eventProblem = (p: LogProblem): void => {
    if (problems.filter((x) => x.kind.startsWith('event')).length < maxProblems) problems.push(p);
  };
  const found: FoundCheckpoint[] = [];
  if (options.state) for (const c of await options.state.checkpoints()) found.push({ note: c.note, source: 'log-state' });

  // Pass 1: every event's leaf hash, in store order (32 bytes each), compared with the log's records.
  const hashes: Hash[] = [];
  let read = 0;
  const actual = new Lookahead<ActualLeaf>(
    (async function* () {
      for await (const recorded of options.events) {
        const { event } = recorded;
        if (event.type === 'checkpoint.signed' && event.payload.origin === options.origin) found.push({ note: event.payload.note, source: 'event-store', position: formatPosition(recorded.position) });
        const hash = eventLeafHash(event);
        hashes.push(hash);
        read += 1;
        if (read % 10_000 === 0) options.onProgress?.(read);
        yield { index: hashes.length - 1, hash, eventId: event.id, position: formatPosition(recorded.position) };
      }
    })(),
  );
  const expected = options.state ? new Lookahead<LeafRecord>(recordedLeaves(options.state)) : undefined;
  for (;;) {
    const a0 = await actual.peek(0);
    const e0 = expected ? await expected.peek(0) : undefined;
    if (!a0 && !e0) break;
    if (!e0) {
      // Not (yet) in the log: the projection may be behind. Checkpoint roots still cover it.
      await actual.next();
      continue;
    }
    if (!a0) {
      eventProblem({ kind: 'event-deleted', leafIndex: e0.leafIndex, position: formatPosition(e0.position), eventId: e0.eventId, message: `event ${e0.eventId} (leaf ${e0.leafIndex}, was at ${formatPosition(e0.position)}) is missing from the store` });
      await expected!.next();
      continue;
    }
    if (hashesEqual(a0.hash, e0.leafHash)) {
      await actual.next();
      await expected!.next();
      continue;
    }
    const a1 = await actual.peek(1);
    const e1 = await expected!.peek(1);
    const at = (a: ActualLeaf): string => `store position ${a.position}`;
    if (a0.eventId === e0.eventId) {
      eventProblem({ kind: 'event-modified', leafIndex: e0.leafIndex, position: a0.position, eventId: a0.eventId, message: `event ${a0.eventId} at ${at(a0)} (leaf ${e0.leafIndex}) was modified` });
      await actual.next();
      await expected!.next();
    } else if (a1 && e1 && a0.eventId === e1.eventId && a1.eventId === e0.eventId) {
      eventProblem({
        kind: 'events-reordered',
        leafIndex: e0.leafIndex,
        position: a0.position,
        eventId: e0.eventId,
        message: `events ${e0.eventId} and ${e1.eventId} (leaves ${e0.leafIndex}, ${e1.leafIndex}) were swapped: now at ${a1.position} and ${a0.position}`,
      });
      for (let i = 0; i < 2; i += 1) {
        await actual.next();
        await expected!.next();
      }
    } else if (e1 && a0.eventId === e1.eventId) {
      eventProblem({ kind: 'event-deleted', leafIndex: e0.leafIndex, position: formatPosition(e0.position), eventId: e0.eventId, message: `event ${e0.eventId} (leaf ${e0.leafIndex}, was at ${formatPosition(e0.position)}) was deleted from the store` });
      await expected!.next();
    } else if (a1 && a1.eventId === e0.eventId) {
      eventProblem({ kind: 'event-inserted', leafIndex: e0.leafIndex, position: a0.position, eventId: a0.eventId, message: `event ${a0.eventId} at ${at(a0)} was inserted before leaf ${e0.leafIndex}: the log never recorded it` });
      await actual.next();
    } else {
      eventProblem({ kind: 'event-replaced', leafIndex: e0.leafIndex, position: a0.position, eventId: a0.eventId, message: `leaf ${e0.leafIndex} was event ${e0.eventId}; the store has ${a0.eventId} at ${at(a0)}` });
      await actual.next();
      await expected!.next();
    }
  }
  options.onProgress?.(read);

  // Pass 2: every checkpoint's signature, then its root against the tree recomputed from the store.
  const checked: CheckedCheckpoint[] = [];
  const bySize = new Map<number, { root: Hash; sources: FoundCheckpoint[] }>();
  for (const c of found) {
    let opened: ReturnType<typeof openCheckpoint>;
    try {
      opened = openCheckpoint(c.note, options.origin, options.verifiers);
    } catch (error) {
      problems.push({ kind: 'checkpoint-signature-invalid', ...(c.position ? { position: c.position } : {}), message: `a checkpoint from the ${c.source}${c.position ? ` at ${c.position}` : ''} does not verify: ${error instanceof Error ? error.message : String(error)}` });
      checked.push({ treeSize: -1, source: c.source, ok: false });
      continue;
    }
    const size = opened.checkpoint.size;
    const entry = bySize.get(size) ?? { root: opened.checkpoint.rootHash, sources: [] };
    if (!hashesEqual(entry.root, opened.checkpoint.rootHash)) {
      problems.push({ kind: 'checkpoint-root-mismatch', treeSize: size, message: `two validly signed checkpoints for size ${size} have different roots (a fork)` });
    }
    entry.sources.push(c);
    bySize.set(size, entry);
  }
  const sizes = [...bySize.keys()].sort((a, b) => a - b);
  const range = new CompactRange();
  let lastGood = 0;
  for (const size of sizes) {
    const { root, sources } = bySize.get(size)!;
    if (size > hashes.length) {
      problems.push({ kind: 'checkpoint-beyond-store', treeSize: size, message: `a checkpoint covers ${size} events but the store holds ${hashes.length}: events after position ${hashes.length - 1} were deleted` });
      for (const s of sources) checked.push({ treeSize: size, source: s.source, ok: false });
      continue;
    }
    while (range.size < size) range.append(hashes[range.size]!);
    const ok = hashesEqual(range.root(), root);
    if (!ok) {
      problems.push({
        kind: 'checkpoint-root-mismatch',
        treeSize: size,
        message: `the signed checkpoint for size ${size} does not match the events in the store: something in leaves ${lastGood}..${size - 1} changed since it was signed`,
      });
    } else lastGood = size;
    for (const s of sources) checked.push({ treeSize: size, source: s.source, ok });
  }

  // The log's own tree must match what it signed, or its records cannot be trusted to locate anything.
  if (options.state) {
    const tree = await MerkleTree.open(options.state.treeStorage);
    for (const size of sizes) {
      if (size > tree.size) {
        problems.push({ kind: 'log-state-mismatch', treeSize: size, message: `the log's tree has ${tree.size} leaves, fewer than its checkpoint of size ${size}` });
        continue;
      }
      if (!hashesEqual(await tree.rootAt(size), bySize.get(size)!.root)) {
        problems.push({ kind: 'log-state-mismatch', treeSize: size, message: `the log's stored tree at size ${size} does not match the signed checkpoint: the log database was altered` });
      }
    }
  }
  const largest = sizes.length > 0 ? sizes[sizes.length - 1]! : 0;
  return { ok: problems.length === 0, events: hashes.length, checkpoints: checked, uncheckpointed: Math.max(0, hashes.length - largest), problems };
}

// `custodian log verify`: recompute the Merkle log from the event store and check every signed
// checkpoint against it. The log's own records (which event was each leaf, where it was stored)
// locate a difference at the event: modified, deleted, inserted or reordered, with its position.
import type { CustodianEvent } from '@custodian/event-contracts';
import { CorruptEventError, formatPosition, type GlobalPosition, type RecordedEvent } from '@custodian/event-store';
import { CompactRange, MerkleTree, hashChildren, hashLeaf, hashesEqual, openCheckpoint, type Hash, type NodePosition, type NoteVerifier, type TreeStorage } from '@custodian/transparency-log';
import { eventLeafHash, leafFormatAt } from './canonical-leaf.js';
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
  | 'log-state-mismatch'
  | 'log-record-modified'
  | 'event-unreadable';

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
  /**
   * Events in the store after the last checkpoint: not covered by a signature, so not verified.
   * `ok` may still be true (nothing is wrong); `complete` is false while any remain.
   */
  readonly uncheckpointed: number;
  /** `ok` and every event of the store is covered by a verified checkpoint. */
  readonly complete: boolean;
  readonly problems: readonly LogProblem[];
}

export interface LogVerificationOptions {
  readonly origin: string;
  /** Every key the log signed with (retired ones included). */
  readonly verifiers: readonly NoteVerifier[];
  /** The events, in store order (`eventStore.readAll()`). */
  readonly events: AsyncIterable<RecordedEvent>;
  /**
   * Reads on after an unreadable event (`(p) => eventStore.readAll({ fromPosition: p })`): the event
   * is reported (`event-unreadable`) and verification continues. Without it the first one aborts.
   */
  readonly readAfter?: (position: GlobalPosition) => AsyncIterable<RecordedEvent>;
  /** The log's records: locate differences and check its checkpoints too. */
  readonly state?: EvidenceLogState;
  /**
   * The leaf index from which the log's leaves are in format 2 (headers). Default: what `state`
   * recorded; without state, every leaf is format 1.
   */
  readonly leafFormatSwitch?: number;
  /** Stop collecting event problems after this many. Default 100. */
  readonly maxProblems?: number;
  readonly onProgress?: (eventsRead: number) => void;
}

interface ActualLeaf {
  readonly index: number;
  readonly hash: Hash;
  readonly eventId: string;
  readonly position: string;
  /** The store could not read this event (its hash is a placeholder that matches nothing). */
  readonly unreadable?: string;
  readonly event?: CustodianEvent;
}

// Stands for an unreadable event's leaf: the leaf hash of no event (events are JSON objects).
const UNREADABLE_LEAF = hashLeaf(Buffer.from('custodian: unreadable event', 'utf8'));

/** Every event of the store, in order; an unreadable one (with its position) becomes an `unreadable` item and reading resumes after it. */
async function* readResiliently(first: AsyncIterable<RecordedEvent>, readAfter: LogVerificationOptions['readAfter']): AsyncGenerator<RecordedEvent | { readonly unreadable: string; readonly position: GlobalPosition }> {
  let source = first;
  for (;;) {
    try {
      for await (const recorded of source) yield recorded;
      return;
    } catch (error) {
      if (!(error instanceof CorruptEventError) || !error.position || !readAfter) throw error;
      yield { unreadable: error.message, position: error.position };
      source = readAfter(error.position);
    }
  }
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
  // The n-th event of the store is leaf n: in format 2 from the log's switch on.
  const headerFrom = options.leafFormatSwitch ?? (await options.state?.leafFormatSwitch());
  const hashes: Hash[] = [];
  // The log's own checkpoint events: each is covered only by the next checkpoint, which an idle log
  // never signs; their notes are verified in pass 2, so trailing ones do not count as unverified.
  const checkpointEvents = new Set<number>();
  let read = 0;
  const actual = new Lookahead<ActualLeaf>(
    (async function* () {
      for await (const item of readResiliently(options.events, options.readAfter)) {
        if ('unreadable' in item) {
          hashes.push(UNREADABLE_LEAF);
          read += 1;
          yield { index: hashes.length - 1, hash: UNREADABLE_LEAF, eventId: '', position: formatPosition(item.position), unreadable: item.unreadable };
          continue;
        }
        const recorded = item;
        const { event } = recorded;
        if (event.type === 'checkpoint.signed' && event.payload.origin === options.origin) {
          found.push({ note: event.payload.note, source: 'event-store', position: formatPosition(recorded.position) });
          checkpointEvents.add(hashes.length);
        }
        const hash = eventLeafHash(event, leafFormatAt(hashes.length, headerFrom));
        hashes.push(hash);
        read += 1;
        if (read % 10_000 === 0) options.onProgress?.(read);
        yield { index: hashes.length - 1, hash, eventId: event.id, position: formatPosition(recorded.position), event };
      }
    })(),
  );
  const expected = options.state ? new Lookahead<LeafRecord>(recordedLeaves(options.state)) : undefined;
  for (;;) {
    let a0 = await actual.peek(0);
    const e0 = expected ? await expected.peek(0) : undefined;
    if (!a0 && !e0) break;
    if (a0?.event && e0 && a0.eventId === e0.eventId && leafFormatAt(a0.index, headerFrom) !== leafFormatAt(e0.leafIndex, headerFrom)) {
      // Events deleted or inserted before it moved it across the log's switch of leaf format: it is
      // compared in the format of the leaf the log recorded for it (the roots fail all the same).
      a0 = { ...a0, hash: eventLeafHash(a0.event, leafFormatAt(e0.leafIndex, headerFrom)) };
    }
    if (a0?.unreadable !== undefined) {
      // Reported with the leaf the log recorded at that position, if any; the checkpoints covering it fail too.
      const leaf = e0 && formatPosition(e0.position) === a0.position ? e0 : undefined;
      eventProblem({ kind: 'event-unreadable', position: a0.position, ...(leaf ? { leafIndex: leaf.leafIndex, eventId: leaf.eventId } : {}), message: `the event at store position ${a0.position}${leaf ? ` (leaf ${leaf.leafIndex}, event ${leaf.eventId})` : ''} cannot be read: ${a0.unreadable}` });
      await actual.next();
      if (leaf) await expected!.next();
      continue;
    }
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
    if (a0.eventId === e0.eventId && options.state && (await storedLeafNode(options.state.treeStorage, e0.leafIndex)).some((h) => hashesEqual(h, a0.hash))) {
      // The store's event is what the log's tree holds: the log's leaf record was changed, not the event.
      problems.push({ kind: 'log-record-modified', leafIndex: e0.leafIndex, position: a0.position, eventId: a0.eventId, message: `the log's record of leaf ${e0.leafIndex} (event ${a0.eventId}) was altered: the event in the store at ${at(a0)} matches the log's tree` });
      await actual.next();
      await expected!.next();
    } else if (a0.eventId === e0.eventId) {
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
  // Every node the log stores must be the hash of its children: a corrupted interior node would
  // otherwise only show in proofs served later (packs exported from it).
  if (options.state) for (const p of [...(await corruptStoredNodes(options.state.treeStorage)), ...(await leavesUnlikeRecords(options.state, new Set(problems.filter((p) => p.kind === 'log-record-modified').map((p) => p.leafIndex!))))]) problems.push(p);
  const largest = sizes.length > 0 ? sizes[sizes.length - 1]! : 0;
  let uncheckpointed = 0;
  for (let i = largest; i < hashes.length; i += 1) if (!checkpointEvents.has(i)) uncheckpointed += 1;
  return { ok: problems.length === 0, complete: problems.length === 0 && uncheckpointed === 0, events: hashes.length, checkpoints: checked, uncheckpointed, problems };
}

/** The stored leaf node at `index`, or none when the tree does not hold it. */
async function storedLeafNode(storage: TreeStorage, index: number): Promise<Hash[]> {
  if (index >= (await storage.size())) return [];
  try {
    return await storage.readNodes([{ level: 0, index }]);
  } catch {
    return [];
  }
}

/** Walks the stored tree level by level (a batch of nodes at a time) and names every node that is not the hash of its two children. */
async function corruptStoredNodes(storage: TreeStorage, batch = 4096): Promise<LogProblem[]> {
  const problems: LogProblem[] = [];
  const size = await storage.size();
  for (let level = 1; size >> level > 0; level += 1) {
    const count = size >> level;
    for (let from = 0; from < count; from += batch) {
      const to = Math.min(count, from + batch);
      const parents: NodePosition[] = [];
      const children: NodePosition[] = [];
      for (let i = from; i < to; i += 1) {
        parents.push({ level, index: i });
        children.push({ level: level - 1, index: 2 * i }, { level: level - 1, index: 2 * i + 1 });
      }
      let stored: Hash[];
      let below: Hash[];
      try {
        [stored, below] = [await storage.readNodes(parents), await storage.readNodes(children)];
      } catch (error) {
        problems.push({ kind: 'log-state-mismatch', message: `the log's stored tree cannot be read at level ${level}: ${error instanceof Error ? error.message : String(error)}` });
        return problems;
      }
      for (let k = 0; k < parents.length; k += 1) {
        if (!hashesEqual(stored[k]!, hashChildren(below[2 * k]!, below[2 * k + 1]!))) {
          if (problems.length < 100) problems.push({ kind: 'log-state-mismatch', message: `the log's stored tree node (level ${level}, index ${from + k}) is not the hash of its children: the log database was altered` });
        }
      }
    }
  }
  return problems;
}

/** The tree's leaf nodes against the log's leaf records (a batch at a time): the two must agree wherever both exist. */
async function leavesUnlikeRecords(state: EvidenceLogState, reported: ReadonlySet<number>, batch = 4096): Promise<LogProblem[]> {
  const problems: LogProblem[] = [];
  const size = Math.min(await state.treeStorage.size(), await state.leafCount());
  for (let from = 0; from < size; from += batch) {
    const to = Math.min(size, from + batch);
    const records = await state.leaves(from, to);
    const positions: NodePosition[] = records.map((r) => ({ level: 0, index: r.leafIndex }));
    let nodes: Hash[];
    try {
      nodes = await state.treeStorage.readNodes(positions);
    } catch (error) {
      problems.push({ kind: 'log-state-mismatch', message: `the log's stored tree leaves cannot be read: ${error instanceof Error ? error.message : String(error)}` });
      return problems;
    }
    for (let k = 0; k < records.length; k += 1) {
      if (!reported.has(records[k]!.leafIndex) && !hashesEqual(nodes[k]!, records[k]!.leafHash) && problems.length < 100) {
        problems.push({ kind: 'log-state-mismatch', leafIndex: records[k]!.leafIndex, message: `the log's tree leaf ${records[k]!.leafIndex} differs from its record of that leaf (event ${records[k]!.eventId}): the log database was altered` });
      }
    }
  }
  return problems;
}

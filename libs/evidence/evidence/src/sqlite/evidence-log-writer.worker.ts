// The evidence log's SQLite writer, in a worker thread, so that the projector's commits (leaf
// records, tree nodes, checkpoints; fsync included, synchronous=FULL) never block the event loop
// of the process that hosts it: in `custodian start` that loop also serves the gateway's sockets.
// The main thread keeps its own connections for reads (WAL: readers see each committed write).
//
// This file is also the worker's entry point: it imports only node: built-ins and better-sqlite3,
// because a worker loads it directly (dist/*.js, or src/*.ts with Node's type stripping), without
// the workspace's module resolution. So it knows no schema: the main thread sends the statements
// of one write, and this thread runs them in one IMMEDIATE transaction and answers after COMMIT.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';

export const EVIDENCE_WRITER_ROLE = 'custodian-evidence-log-writer';

export type SqlValue = string | number | bigint | Uint8Array | null;

/** One step of a write: a statement run once per row of parameters, or a check that a single-value query returns `expect`. */
export type WriteStep =
  | { readonly kind: 'run'; readonly sql: string; readonly rows: readonly (readonly SqlValue[])[] }
  | { readonly kind: 'check'; readonly sql: string; readonly expect: number; readonly label: string };

export interface EvidenceWriterData {
  readonly role: typeof EVIDENCE_WRITER_ROLE;
  readonly path: string;
  readonly busyTimeoutMs: number;
}

export type EvidenceWriterRequest = { readonly type: 'write'; readonly id: number; readonly steps: readonly WriteStep[] } | { readonly type: 'close' };

export type EvidenceWriterReply =
  | { readonly type: 'ready'; readonly journalMode: string; readonly synchronous: number }
  | { readonly type: 'open-failed'; readonly message: string }
  | { readonly type: 'written'; readonly id: number }
  /** A check step found another value: nothing of the write was kept. */
  | { readonly type: 'check-failed'; readonly id: number; readonly label: string; readonly expected: number; readonly actual: number }
  | { readonly type: 'write-failed'; readonly id: number; readonly name: string; readonly message: string; readonly code: string | undefined }
  | { readonly type: 'closed' };

// No parameter properties: Node's type stripping loads this file as it is.
class CheckFailed extends Error {
  readonly label: string;
  readonly expected: number;
  readonly actual: number;
  constructor(label: string, expected: number, actual: number) {
    super(label);
    this.label = label;
    this.expected = expected;
    this.actual = actual;
  }
}

function serve(data: EvidenceWriterData): void {
  const port = parentPort;
  if (!port) return;
  let db: Database;
  try {
    db = new BetterSqlite3(data.path);
    // The main thread created the file in WAL mode; FULL: the WAL is fsynced at every commit.
    db.pragma('synchronous = FULL');
    db.pragma(`busy_timeout = ${Math.trunc(data.busyTimeoutMs)}`);
    // As the tree storage's connection: INSERT OR REPLACE fires the DELETE triggers too.
    db.pragma('recursive_triggers = ON');
  } catch (error) {
    port.postMessage({ type: 'open-failed', message: error instanceof Error ? error.message : String(error) } satisfies EvidenceWriterReply);
    return;
  }
  const statements = new Map<string, Statement>();
  const prepared = (sql: string): Statement => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  const write = db.transaction((steps: readonly WriteStep[]) => {
    for (const step of steps) {
      if (step.kind === 'check') {
        const actual = Number(prepared(step.sql).pluck().get());
        if (actual !== step.expect) throw new CheckFailed(step.label, step.expect, actual);
        continue;
      }
      const statement = prepared(step.sql);
      // A Buffer arrives as a plain Uint8Array (structured clone); better-sqlite3 binds Buffers as blobs.
      for (const row of step.rows) statement.run(...row.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v)));
    }
  });
  port.postMessage({
    type: 'ready',
    journalMode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: Number(db.pragma('synchronous', { simple: true })),
  } satisfies EvidenceWriterReply);
  port.on('message', (request: EvidenceWriterRequest) => {
    if (request.type === 'close') {
      db.close();
      port.postMessage({ type: 'closed' } satisfies EvidenceWriterReply);
      port.close();
      return;
    }
    try {
      // IMMEDIATE: the write lock is taken before any check reads, so a check holds until COMMIT.
      write.immediate(request.steps);
      port.postMessage({ type: 'written', id: request.id } satisfies EvidenceWriterReply);
    } catch (error) {
      if (error instanceof CheckFailed) {
        port.postMessage({ type: 'check-failed', id: request.id, label: error.label, expected: error.expected, actual: error.actual } satisfies EvidenceWriterReply);
        return;
      }
      const e = error instanceof Error ? error : new Error(String(error));
      const code = (e as { code?: unknown }).code;
      port.postMessage({ type: 'write-failed', id: request.id, name: e.name, message: e.message, code: typeof code === 'string' ? code : undefined } satisfies EvidenceWriterReply);
    }
  });
}

const data = workerData as Partial<EvidenceWriterData> | undefined;
if (parentPort && data?.role === EVIDENCE_WRITER_ROLE) serve(data as EvidenceWriterData);

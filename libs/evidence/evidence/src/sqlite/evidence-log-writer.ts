// The main-thread side of the evidence log's writer thread (evidence-log-writer.worker.ts): one
// worker per open state, started at the first write (readers such as the API or `custodian
// verify` never start one), answering each write after its COMMIT.
import { Worker } from 'node:worker_threads';
import { EvidenceError } from '../errors.js';
import { EVIDENCE_WRITER_ROLE, type EvidenceWriterData, type EvidenceWriterReply, type EvidenceWriterRequest, type WriteStep } from './evidence-log-writer.worker.js';

export type { SqlValue, WriteStep } from './evidence-log-writer.worker.js';

const WRITER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './evidence-log-writer.worker.ts' : './evidence-log-writer.worker.js', import.meta.url);

/** A check step of a write found another value than expected; nothing of that write was kept. */
export class EvidenceWriteCheckError extends EvidenceError {
  override name = 'EvidenceWriteCheckError';
  constructor(
    readonly label: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('EVIDENCE_LOG_STATE_CORRUPT', `${label}: expected ${expected}, found ${actual}`);
  }
}

export interface EvidenceWriterSettings {
  readonly journalMode: string;
  /** SQLite's synchronous level on the writer's connection (2 = FULL). */
  readonly synchronous: number;
}

interface PendingWrite {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class EvidenceLogWriter {
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  #worker: Worker | undefined;
  #ready: Promise<EvidenceWriterSettings> | undefined;
  #failure: EvidenceError | undefined;
  #closed: Promise<void> | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, PendingWrite>();

  constructor(path: string, busyTimeoutMs = 5_000) {
    this.#path = path;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  /** Whether the writer thread was started (the first write starts it). */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  /** The writer connection's durability settings (starts the thread). */
  settings(): Promise<EvidenceWriterSettings> {
    return this.#start();
  }

  /** Runs the steps in one IMMEDIATE transaction in the writer thread; resolves after COMMIT (fsync included). */
  write(steps: readonly WriteStep[]): Promise<void> {
    if (this.#closed) return Promise.reject(new EvidenceError('EVIDENCE_LOG_CLOSED', 'the evidence log state is closed'));
    const ready = this.#start();
    const worker = this.#worker!;
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(id, { resolve, reject });
      // Posted once the thread is ready, in call order; close() posts its own message after these.
      ready.then(
        () => {
          if (this.#pending.has(id)) worker.postMessage({ type: 'write', id, steps } satisfies EvidenceWriterRequest);
        },
        () => undefined, // #fail rejected every pending write
      );
    });
  }

  /** Answers every write issued before, then stops the thread. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const worker = this.#worker;
      if (!worker) return;
      // After the writes' own continuations on `ready`: they are posted before 'close', and one thread answers in order.
      const ready = await this.#ready!.then(
        () => true,
        () => false,
      );
      if (ready && !this.#failure) {
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.ref();
        worker.postMessage({ type: 'close' } satisfies EvidenceWriterRequest);
        await exited;
      } else await worker.terminate();
    })();
    return this.#closed;
  }

  #start(): Promise<EvidenceWriterSettings> {
    if (this.#ready) return this.#ready;
    const workerData: EvidenceWriterData = { role: EVIDENCE_WRITER_ROLE, path: this.#path, busyTimeoutMs: this.#busyTimeoutMs };
    // execArgv []: the writer needs none of the parent's flags, and some (--input-type) break a worker.
    const worker = new Worker(WRITER_ENTRY, { workerData, execArgv: [] });
    this.#worker = worker;
    // The thread keeps the process alive only while it owes an answer.
    worker.unref();
    this.#ready = new Promise<EvidenceWriterSettings>((resolve, reject) => {
      worker.on('message', (reply: EvidenceWriterReply) => {
        if (reply.type === 'ready') resolve({ journalMode: reply.journalMode, synchronous: reply.synchronous });
        else if (reply.type === 'open-failed') {
          const failure = new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `${this.#path}: the evidence log writer could not open the database: ${reply.message}`);
          reject(failure);
          this.#fail(failure);
        } else this.#onReply(reply);
      });
      worker.on('error', (error) => {
        const failure = new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `${this.#path}: the evidence log writer thread failed: ${error.message}`, { cause: error });
        reject(failure);
        this.#fail(failure);
      });
      worker.once('exit', () => this.#fail(new EvidenceError('EVIDENCE_LOG_CLOSED', `${this.#path}: the evidence log writer thread exited`)));
    });
    return this.#ready;
  }

  #onReply(reply: EvidenceWriterReply): void {
    if (reply.type !== 'written' && reply.type !== 'check-failed' && reply.type !== 'write-failed') return;
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker?.unref();
    if (reply.type === 'written') pending.resolve();
    else if (reply.type === 'check-failed') pending.reject(new EvidenceWriteCheckError(reply.label, reply.expected, reply.actual));
    else pending.reject(new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `write to ${this.#path} refused: ${reply.message}${reply.code ? ` (${reply.code})` : ''}`));
  }

  #fail(failure: EvidenceError): void {
    this.#failure ??= failure;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(failure);
  }
}

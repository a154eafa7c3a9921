// Heavy work off the gateway's event loop (issue 19 §3): classifying a large statement (the
// WebAssembly parser and the analysis cost milliseconds per KiB) and running the detectors over a
// large value (some inputs cost microseconds per character) would stall every other session of the
// process. Such work goes to a few worker threads instead; small work stays inline (it is fast).
// Bounded: a queue for all sessions, a share per session, dispatched in turn across sessions, and a
// time budget per task after which the worker is replaced. What cannot be done in time or in the
// queue is refused (OffloadRefusal): the caller fails closed.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MaskingPolicy } from '@custodian/masking';
import { OFFLOAD_WORKER_ROLE, type ClassifyResult, type MaskingPolicyMessage, type OffloadReply, type OffloadRequest, type OffloadTask, type OffloadedText } from './offload-protocol.js';

// From the TypeScript sources (tests, benchmarks) the worker runs the sources too: Node strips the
// types, the `@custodian/source` condition maps workspace packages to their sources and a resolve
// hook maps `./x.js` to `./x.ts` (typescript-source-hooks.ts). From dist it runs plain JavaScript.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_ENTRY = new URL(FROM_SOURCE ? './offload-worker.ts' : './offload-worker.js', import.meta.url);
const WORKER_EXEC_ARGV = FROM_SOURCE
  ? ['--experimental-transform-types', '--no-warnings=ExperimentalWarning', '--conditions=@custodian/source', '--import', new URL('./typescript-source-hooks.ts', import.meta.url).href]
  : [];
/** Masking policies a worker keeps (the worker evicts in the same order: see offload-worker.ts). */
const POLICIES_KEPT = 8;

export type OffloadRefusalCode =
  /** The queue (all sessions) or the session's share of it is full. */
  | 'OFFLOAD_BUSY'
  /** The task ran past its time budget; its worker was replaced. */
  | 'OFFLOAD_TIMEOUT'
  /** The worker failed (crash, out of memory, a value it could not receive) or the pool is closed. */
  | 'OFFLOAD_FAILED';

export class OffloadRefusal extends Error {
  override name = 'OffloadRefusal';
  constructor(
    readonly code: OffloadRefusalCode,
    message: string,
  ) {
    super(message);
  }
}

export interface OffloadPoolOptions {
  /** Worker threads (default: one per core beyond the first, at least 1, at most 2). */
  readonly threads?: number;
  /** Tasks waiting or running, all sessions together (default 64). */
  readonly maxQueued?: number;
  /** Tasks waiting or running for one session (default 4). */
  readonly maxPerOwner?: number;
  /** Longest one task may run in a worker (default 10 s), counted from when the worker is ready. */
  readonly taskTimeoutMs?: number;
  /** Longest a new worker may take to load (default 60 s; a loaded machine compiles slowly). */
  readonly startupTimeoutMs?: number;
  /** Heap limit of each worker in MiB (default 512). */
  readonly workerHeapMb?: number;
}

export interface OffloadPoolStats {
  readonly completed: number;
  readonly refused: Readonly<Record<OffloadRefusalCode, number>>;
  readonly workersStarted: number;
}

interface Job {
  readonly id: number;
  readonly owner: string;
  readonly task: OffloadTask;
  readonly masking: { readonly id: number; readonly policy: MaskingPolicy } | undefined;
  readonly resolve: (value: ClassifyResult | OffloadedText) => void;
  readonly reject: (error: OffloadRefusal) => void;
}

interface Slot {
  worker: Worker | undefined;
  /** The worker has loaded (its first message): a job's time budget starts from then. */
  ready: boolean;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Masking policy ids sent to this worker, oldest first. */
  sent: number[];
}

export class OffloadPool {
  private readonly threads: number;
  private readonly maxQueued: number;
  private readonly maxPerOwner: number;
  private readonly taskTimeoutMs: number;
  private readonly startupTimeoutMs: number;
  private readonly workerHeapMb: number;
  private readonly slots: Slot[];
  /** Waiting jobs per session; the first key with jobs is served next, then moved last (taking turns). */
  private readonly waiting = new Map<string, Job[]>();
  /** Waiting or running jobs per session. */
  private readonly perOwner = new Map<string, number>();
  private total = 0;
  private nextId = 1;
  private readonly policyIds = new WeakMap<MaskingPolicy, number>();
  private nextPolicyId = 1;
  private closed = false;
  private readonly counters = { completed: 0, workersStarted: 0, refused: { OFFLOAD_BUSY: 0, OFFLOAD_TIMEOUT: 0, OFFLOAD_FAILED: 0 } };

  constructor(options: OffloadPoolOptions = {}) {
    this.threads = Math.max(1, options.threads ?? Math.min(2, Math.max(1, availableParallelism() - 1)));
    this.maxQueued = Math.max(1, options.maxQueued ?? 64);
    this.maxPerOwner = Math.max(1, options.maxPerOwner ?? 4);
    this.taskTimeoutMs = Math.max(1, options.taskTimeoutMs ?? 10_000);
    this.startupTimeoutMs = Math.max(1, options.startupTimeoutMs ?? 60_000);
    this.workerHeapMb = options.workerHeapMb ?? 512;
    this.slots = Array.from({ length: this.threads }, () => ({ worker: undefined, ready: false, job: undefined, timer: undefined, sent: [] }));
  }

  get stats(): OffloadPoolStats {
    return { completed: this.counters.completed, workersStarted: this.counters.workersStarted, refused: { ...this.counters.refused } };
  }

  /** Classifies a statement in a worker; with `mask`, also masks its text for the record under `masking`. */
  classify(owner: string, task: Omit<Extract<OffloadTask, { kind: 'classify' }>, 'kind' | 'mask'>, mask?: { readonly masking: MaskingPolicy; readonly field: string }): Promise<ClassifyResult> {
    const masking = mask ? this.maskingRef(mask.masking) : undefined;
    const full: OffloadTask = { kind: 'classify', ...task, ...(mask && masking ? { mask: { policy: masking.id, field: mask.field } } : {}) };
    return this.submit(owner, full, masking) as Promise<ClassifyResult>;
  }

  /** Masks free text with the detectors (`text`), or a json document with the path rules and detectors (`json`), in a worker. */
  mask(owner: string, masking: MaskingPolicy, as: 'text' | 'json', text: string, field: string): Promise<OffloadedText> {
    const ref = this.maskingRef(masking);
    return this.submit(owner, { kind: as === 'json' ? 'mask-json' : 'mask-text', policy: ref.id, text, field }, ref) as Promise<OffloadedText>;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const jobs of this.waiting.values()) for (const job of jobs) this.refuse(job, 'OFFLOAD_FAILED', 'the gateway is shutting down');
    this.waiting.clear();
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.job) this.finish(slot, slot.job, new OffloadRefusal('OFFLOAD_FAILED', 'the gateway is shutting down'));
        const worker = slot.worker;
        slot.worker = undefined;
        if (worker) await worker.terminate();
      }),
    );
  }

  private maskingRef(policy: MaskingPolicy): { readonly id: number; readonly policy: MaskingPolicy } {
    let id = this.policyIds.get(policy);
    if (id === undefined) {
      id = this.nextPolicyId++;
      this.policyIds.set(policy, id);
    }
    return { id, policy };
  }

  private submit(owner: string, task: OffloadTask, masking: Job['masking']): Promise<ClassifyResult | OffloadedText> {
    return new Promise((resolve, reject) => {
      const refuse = (code: OffloadRefusalCode, message: string): void => {
        this.counters.refused[code] += 1;
        reject(new OffloadRefusal(code, message));
      };
      if (this.closed) return refuse('OFFLOAD_FAILED', 'the gateway is shutting down');
      const mine = this.perOwner.get(owner) ?? 0;
      if (mine >= this.maxPerOwner) return refuse('OFFLOAD_BUSY', `this session already has ${mine} large statements or values being processed (the most is ${this.maxPerOwner})`);
      if (this.total >= this.maxQueued) return refuse('OFFLOAD_BUSY', `the gateway is processing ${this.total} large statements or values (the most is ${this.maxQueued})`);
      this.perOwner.set(owner, mine + 1);
      this.total += 1;
      const job: Job = { id: this.nextId++, owner, task, masking, resolve, reject };
      const queue = this.waiting.get(owner);
      if (queue) queue.push(job);
      else this.waiting.set(owner, [job]);
      this.dispatch();
    });
  }

  /** Gives every idle worker the next job, taking sessions in turn. */
  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || this.closed) continue;
      const job = this.nextJob();
      if (!job) return;
      this.start(slot, job);
    }
  }

  private nextJob(): Job | undefined {
    for (const [owner, queue] of this.waiting) {
      const job = queue.shift();
      this.waiting.delete(owner);
      // Back in line behind the other sessions, if it has more.
      if (queue.length > 0) this.waiting.set(owner, queue);
      if (job) return job;
    }
    return undefined;
  }

  private start(slot: Slot, job: Job): void {
    slot.job = job;
    try {
      const worker = slot.worker ?? this.spawn(slot);
      if (job.masking && !slot.sent.includes(job.masking.id)) {
        const message: MaskingPolicyMessage = { kind: 'masking-policy', policy: job.masking.id, spec: job.masking.policy.spec };
        worker.postMessage(message);
        slot.sent.push(job.masking.id);
        if (slot.sent.length > POLICIES_KEPT) slot.sent.shift();
      }
      const request: OffloadRequest = { ...job.task, id: job.id };
      worker.postMessage(request);
    } catch (error) {
      // A value the worker cannot receive (a custom detector is code, not data): refused.
      this.finish(slot, job, new OffloadRefusal('OFFLOAD_FAILED', `the work could not be handed to a worker (${error instanceof Error ? error.name : 'error'})`));
      return;
    }
    this.startBudget(slot, job);
  }

  /** The job's time budget, once its worker is ready (until then, the worker's startup budget). */
  private startBudget(slot: Slot, job: Job): void {
    clearTimeout(slot.timer);
    const starting = !slot.ready;
    slot.timer = setTimeout(
      () => {
        if (slot.job !== job) return;
        // The parser cannot be interrupted: the worker is replaced (the next job starts a fresh one).
        const worker = slot.worker;
        slot.worker = undefined;
        slot.ready = false;
        slot.sent = [];
        void worker?.terminate();
        this.finish(
          slot,
          job,
          starting ? new OffloadRefusal('OFFLOAD_FAILED', `the worker did not start within ${this.startupTimeoutMs} ms`) : new OffloadRefusal('OFFLOAD_TIMEOUT', `the work took longer than ${this.taskTimeoutMs} ms`),
        );
      },
      starting ? this.startupTimeoutMs : this.taskTimeoutMs,
    );
    slot.timer.unref();
  }

  private spawn(slot: Slot): Worker {
    const worker = new Worker(WORKER_ENTRY, {
      workerData: { role: OFFLOAD_WORKER_ROLE },
      execArgv: WORKER_EXEC_ARGV,
      resourceLimits: { maxOldGenerationSizeMb: this.workerHeapMb },
    });
    this.counters.workersStarted += 1;
    // Idle workers never keep the process alive.
    worker.unref();
    slot.worker = worker;
    slot.ready = false;
    slot.sent = [];
    worker.on('message', (reply: OffloadReply) => {
      if (slot.worker !== worker) return;
      if ('ready' in reply) {
        slot.ready = true;
        if (slot.job) this.startBudget(slot, slot.job);
        return;
      }
      const job = slot.job;
      if (!job || reply.id !== job.id) return;
      this.finish(slot, job, reply.ok ? reply.value : new OffloadRefusal('OFFLOAD_FAILED', `the worker failed: ${reply.message}`));
    });
    const lost = (why: string): void => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.ready = false;
      slot.sent = [];
      if (slot.job) this.finish(slot, slot.job, new OffloadRefusal('OFFLOAD_FAILED', `the worker ${why}`));
    };
    worker.on('error', (error: Error) => lost(`failed (${'code' in error && typeof error.code === 'string' ? error.code : error.name})`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    return worker;
  }

  private finish(slot: Slot, job: Job, outcome: ClassifyResult | OffloadedText | OffloadRefusal): void {
    if (slot.job !== job) return;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
    this.release(job.owner);
    if (outcome instanceof OffloadRefusal) {
      this.counters.refused[outcome.code] += 1;
      job.reject(outcome);
    } else {
      this.counters.completed += 1;
      job.resolve(outcome);
    }
    this.dispatch();
  }

  private refuse(job: Job, code: OffloadRefusalCode, message: string): void {
    this.release(job.owner);
    this.counters.refused[code] += 1;
    job.reject(new OffloadRefusal(code, message));
  }

  private release(owner: string): void {
    this.total -= 1;
    const left = (this.perOwner.get(owner) ?? 1) - 1;
    if (left <= 0) this.perOwner.delete(owner);
    else this.perOwner.set(owner, left);
  }
}

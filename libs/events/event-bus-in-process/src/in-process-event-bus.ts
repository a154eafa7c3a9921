// The embedded bus: topics, partitions, consumer groups and committed offsets in memory, with the
// same delivery contract as Kafka (at-least-once, per-key order, commit after the handler).
// It stores nothing on disk: whatever must survive a crash is made durable before it is
// published (the embedded deployment appends to the SQLite store first; see ADR 0007).
import {
  EventBusError,
  type BusMessage,
  type BusPublisher,
  type ConsumedMessage,
  type ConsumerSpec,
  type EventBus,
  type RunningConsumer,
  type TopicSpec,
} from '@custodian/event-bus';

export interface InProcessEventBusOptions {
  /** Messages kept per partition; older ones are dropped (memory is the only storage). Default 10,000. */
  readonly retainPerPartition?: number;
  /** Most messages per delivered batch. Default 500. */
  readonly maxBatchSize?: number;
}

interface Partition {
  /** Offset of messages[0]. */
  base: bigint;
  readonly messages: ConsumedMessage[];
  readonly waiters: Set<() => void>;
}

interface Topic {
  readonly name: string;
  readonly partitions: Partition[];
  roundRobin: number;
}

interface Member {
  readonly id: number;
  readonly spec: ConsumerSpec;
  /** Aborted when the assignment changes or the member stops. */
  controller: AbortController;
  assigned: readonly PartitionRef[];
  /** Wakes the member's loop (new assignment, stop). */
  wake: () => void;
}

interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

interface Group {
  readonly committed: Map<string, bigint>;
  readonly members: Member[];
}

const refKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** FNV-1a: stable key → partition, like Kafka's murmur2 in spirit (same key, same partition). */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class InProcessEventBus implements EventBus {
  readonly kind = 'in-process' as const;
  private readonly topics = new Map<string, Topic>();
  private readonly groups = new Map<string, Group>();
  private readonly publishers = new Set<BusPublisher>();
  private readonly consumers = new Set<RunningConsumer>();
  private readonly retain: number;
  private readonly maxBatchSize: number;
  private nextMemberId = 1;
  private closed = false;

  constructor(options: InProcessEventBusOptions = {}) {
    this.retain = options.retainPerPartition ?? 10_000;
    this.maxBatchSize = options.maxBatchSize ?? 500;
  }

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    for (const spec of topics) {
      if (!Number.isSafeInteger(spec.partitions) || spec.partitions < 1) throw new EventBusError('EVENT_BUS_INVALID_REQUEST', `topic ${spec.name}: partitions must be ≥ 1`);
      if (this.topics.has(spec.name)) continue;
      this.topics.set(spec.name, {
        name: spec.name,
        roundRobin: 0,
        partitions: Array.from({ length: spec.partitions }, () => ({ base: 0n, messages: [], waiters: new Set<() => void>() })),
      });
    }
    // New partitions may change assignments of groups subscribed to these topics.
    for (const group of this.groups.values()) this.rebalance(group);
  }

  publisher(): BusPublisher {
    this.assertOpen();
    let closed = false;
    const publisher: BusPublisher = {
      publish: async (messages) => {
        if (closed || this.closed) throw new EventBusError('EVENT_BUS_CLOSED', 'the publisher is closed');
        // Check every topic first: a call is all-or-nothing here.
        for (const m of messages) this.topic(m.topic);
        for (const m of messages) this.append(m);
      },
      flush: async () => undefined,
      close: async () => {
        closed = true;
        this.publishers.delete(publisher);
      },
    };
    this.publishers.add(publisher);
    return publisher;
  }

  private topic(name: string): Topic {
    const topic = this.topics.get(name);
    if (!topic) throw new EventBusError('EVENT_BUS_UNKNOWN_TOPIC', `unknown topic ${name} (create it with ensureTopics)`);
    return topic;
  }

  private append(message: BusMessage): void {
    const topic = this.topic(message.topic);
    const index = message.key === null ? topic.roundRobin++ % topic.partitions.length : hashKey(message.key) % topic.partitions.length;
    const partition = topic.partitions[index]!;
    const offset = partition.base + BigInt(partition.messages.length);
    partition.messages.push({
      topic: topic.name,
      partition: index,
      offset,
      key: message.key,
      value: typeof message.value === 'string' ? Buffer.from(message.value, 'utf8') : Buffer.from(message.value),
      headers: { ...(message.headers ?? {}) },
      timestamp: Date.now(),
    });
    if (partition.messages.length > this.retain) {
      const drop = partition.messages.length - this.retain;
      partition.messages.splice(0, drop);
      partition.base += BigInt(drop);
    }
    for (const wake of [...partition.waiters]) wake();
  }

  consume(spec: ConsumerSpec): RunningConsumer {
    this.assertOpen();
    for (const name of spec.topics) this.topic(name);
    let group = this.groups.get(spec.groupId);
    if (!group) {
      group = { committed: new Map(), members: [] };
      this.groups.set(spec.groupId, group);
    }
    const member: Member = { id: this.nextMemberId++, spec, controller: new AbortController(), assigned: [], wake: () => undefined };
    group.members.push(member);
    this.rebalance(group);

    const stopping = new AbortController();
    let aborted = false;
    const done = this.runMember(group, member, stopping.signal, () => aborted);
    done.catch(() => undefined);
    const leave = async (crash: boolean): Promise<void> => {
      aborted ||= crash;
      stopping.abort();
      member.controller.abort();
      member.wake();
      await done.catch(() => undefined);
      const g = this.groups.get(spec.groupId);
      if (g) {
        const i = g.members.indexOf(member);
        if (i >= 0) g.members.splice(i, 1);
        this.rebalance(g);
      }
      this.consumers.delete(running);
    };
    const running: RunningConsumer = {
      ready: Promise.resolve(),
      done,
      stop: () => leave(false),
      abort: () => leave(true),
    };
    this.consumers.add(running);
    return running;
  }

  /** Round-robin assignment of every subscribed partition over the members, in join order. */
  private rebalance(group: Group): void {
    const refs = new Map<Member, PartitionRef[]>(group.members.map((m) => [m, []]));
    const all = new Set<string>();
    for (const member of group.members) for (const t of member.spec.topics) all.add(t);
    let i = 0;
    for (const name of [...all].sort()) {
      const topic = this.topics.get(name);
      if (!topic) continue;
      for (let p = 0; p < topic.partitions.length; p++) {
        // Only members subscribed to the topic can own its partitions.
        const candidates = group.members.filter((m) => m.spec.topics.includes(name));
        if (candidates.length === 0) continue;
        refs.get(candidates[i++ % candidates.length]!)!.push({ topic: name, partition: p });
      }
    }
    for (const member of group.members) {
      const next = refs.get(member) ?? [];
      const same = next.length === member.assigned.length && next.every((r, k) => r.topic === member.assigned[k]?.topic && r.partition === member.assigned[k]?.partition);
      if (same) continue;
      member.controller.abort();
      member.controller = new AbortController();
      member.assigned = next;
      member.wake();
    }
  }

  private async runMember(group: Group, member: Member, stopping: AbortSignal, crashed: () => boolean): Promise<void> {
    while (!stopping.aborted) {
      const generation = member.controller;
      const loops = member.assigned.map((ref) => this.runPartition(group, member, ref, generation.signal, crashed));
      // Wait until the assignment changes or the member stops, then let the loops finish.
      await new Promise<void>((resolve) => {
        if (generation.signal.aborted || stopping.aborted) return resolve();
        member.wake = resolve;
        generation.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await Promise.all(loops);
    }
  }

  private async runPartition(group: Group, member: Member, ref: PartitionRef, signal: AbortSignal, crashed: () => boolean): Promise<void> {
    const { spec } = member;
    const partition = this.topics.get(ref.topic)!.partitions[ref.partition]!;
    const key = refKey(ref.topic, ref.partition);
    const backoff = spec.retryBackoffMs ?? 500;
    while (!signal.aborted) {
      const start = group.committed.get(key) ?? ((spec.fromBeginning ?? true) ? partition.base : partition.base + BigInt(partition.messages.length));
      const from = start < partition.base ? partition.base : start;
      const index = Number(from - partition.base);
      const messages = partition.messages.slice(index, index + this.maxBatchSize);
      if (messages.length === 0) {
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            partition.waiters.delete(wake);
            signal.removeEventListener('abort', wake);
            resolve();
          };
          partition.waiters.add(wake);
          signal.addEventListener('abort', wake, { once: true });
        });
        continue;
      }
      const batch = { topic: ref.topic, partition: ref.partition, messages, highWatermark: partition.base + BigInt(partition.messages.length), signal };
      try {
        await spec.handleBatch(batch);
      } catch (error) {
        if (signal.aborted) return;
        spec.onHandlerError?.(error, batch);
        await sleep(backoff, signal);
        continue;
      }
      // A crashed member commits nothing; a revoked partition's result is not ours to commit.
      if (signal.aborted && crashed()) return;
      if (!this.groups.get(spec.groupId)?.members.includes(member)) return;
      const committedOffset = messages[messages.length - 1]!.offset + 1n;
      group.committed.set(key, committedOffset);
      spec.onCommitted?.({ topic: ref.topic, partition: ref.partition, committedOffset, lag: partition.base + BigInt(partition.messages.length) - committedOffset });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new EventBusError('EVENT_BUS_CLOSED', 'the event bus is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await Promise.all([...this.publishers].map((p) => p.close()));
    this.closed = true;
  }
}

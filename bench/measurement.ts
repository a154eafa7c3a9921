// Timing and statistics shared by the benchmarks.

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Seconds taken by a synchronous `run`. */
export function timeSync(run: () => void): number {
  const start = nowNs();
  run();
  return secondsSince(start);
}

/** Seconds taken by an asynchronous `run`. */
export async function timeAsync(run: () => Promise<unknown>): Promise<number> {
  const start = nowNs();
  await run();
  return secondsSince(start);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/**
 * Runs each measurement `rounds` times, interleaved (A B C, A B C, …), and returns the median of each.
 * Interleaving spreads a neighbour's burst of load over all candidates instead of one of them.
 */
export async function interleavedMedians<K extends string>(rounds: number, measurements: Readonly<Record<K, () => Promise<number> | number>>): Promise<Record<K, number>> {
  const keys = Object.keys(measurements) as K[];
  const samples = new Map<K, number[]>(keys.map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) samples.get(key)?.push(await measurements[key]());
  }
  return Object.fromEntries(keys.map((k) => [k, median(samples.get(k) ?? [])])) as Record<K, number>;
}

export const MIB = 1024 * 1024;

export interface TimedBlock {
  readonly operations: number;
  readonly seconds: number;
}

/**
 * Alternates short blocks of each candidate `iterations` times, rotating which goes first, and
 * returns operations per second over all blocks. For I/O-bound work on a shared disk, whose speed
 * changes from one second to the next, this keeps the candidates under the same conditions much
 * better than a few long rounds.
 */
export async function interleavedBlockRates<K extends string>(
  iterations: number,
  blocks: Readonly<Record<K, () => Promise<TimedBlock> | TimedBlock>>,
): Promise<Record<K, number>> {
  const keys = Object.keys(blocks) as K[];
  const totals = new Map<K, { operations: number; seconds: number }>(keys.map((k) => [k, { operations: 0, seconds: 0 }]));
  for (let i = 0; i < iterations; i++) {
    for (let j = 0; j < keys.length; j++) {
      const key = keys[(i + j) % keys.length]!;
      const block = await blocks[key]();
      const total = totals.get(key)!;
      total.operations += block.operations;
      total.seconds += block.seconds;
    }
  }
  return Object.fromEntries(keys.map((k) => [k, totals.get(k)!.operations / totals.get(k)!.seconds])) as Record<K, number>;
}

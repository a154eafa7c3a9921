// What a benchmark is and what it reports. A figure is only meaningful as a ratio against a
// baseline measured in the same run on the same machine: absolute numbers move with the load of
// a shared two-core box, ratios much less.
import type { StartedKafka, StartedPgbouncer, StartedPostgres } from '@custodian/test-harness';

export interface Baseline {
  /** What the baseline measured, e.g. `bare JSON.parse`. */
  readonly name: string;
  readonly value: number;
}

/** A column a benchmark will have once the thing it measures exists; rendered as-is, never given a number. */
export interface PendingColumn {
  readonly name: string;
  readonly status: string;
}

export interface Figure {
  readonly benchmark: string;
  readonly metric: string;
  readonly unit: string;
  /** Which way is better for this metric, so that a ratio can be read without knowing the metric. */
  readonly better: 'higher' | 'lower';
  /** What `value` measured, when the metric name alone does not say (e.g. `pgbouncer`). */
  readonly subject?: string;
  readonly value: number;
  readonly baseline: Baseline;
  /** value / baseline.value */
  readonly ratio: number;
  readonly notes?: string;
  readonly pending?: readonly PendingColumn[];
}

/** Real services from @custodian/test-harness, started on first use, shared by benchmarks, stopped by the runner. */
export interface HarnessServices {
  postgres(): Promise<StartedPostgres>;
  /** PgBouncer (transaction pooling) in front of `postgres()`. */
  pgbouncer(): Promise<StartedPgbouncer>;
  kafka(): Promise<StartedKafka>;
}

export interface BenchmarkContext {
  readonly quick: boolean;
  readonly harness: HarnessServices;
  /** A fresh directory under os.tmpdir() for this benchmark, removed after it. */
  readonly workDir: string;
  /** Progress on stderr (stdout carries the result table). */
  log(message: string): void;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(context: BenchmarkContext): Promise<Figure[]>;
}

export class BenchmarkError extends Error {
  constructor(
    readonly code: 'BENCH_INVALID_FIGURE' | 'BENCH_UNKNOWN_BENCHMARK' | 'BENCH_USAGE' | 'BENCH_COMMAND_FAILED' | 'BENCH_MEASUREMENT_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'BenchmarkError';
  }
}

export interface FigureSpec {
  readonly metric: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly subject?: string;
  readonly value: number;
  readonly baseline: Baseline;
  readonly notes?: string;
  readonly pending?: readonly PendingColumn[];
}

/** Builds a figure, refusing values that cannot be a measurement (a broken benchmark must fail loudly). */
export function figure(benchmark: string, spec: FigureSpec): Figure {
  for (const [what, value] of [
    ['value', spec.value],
    ['baseline', spec.baseline.value],
  ] as const) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new BenchmarkError('BENCH_INVALID_FIGURE', `${benchmark} / ${spec.metric}: ${what} must be a finite positive number, got ${value}`);
    }
  }
  const { subject, notes, pending, ...rest } = spec;
  return {
    benchmark,
    ...rest,
    ...(subject === undefined ? {} : { subject }),
    ratio: spec.value / spec.baseline.value,
    ...(notes === undefined ? {} : { notes }),
    ...(pending === undefined ? {} : { pending }),
  };
}

/**
 * Microsecond timestamps. `Date` has millisecond resolution; the envelope asks for
 * microseconds, so we anchor the monotonic high-resolution timer to the wall clock
 * once and derive both from it. Within one process, timestamps never go backwards.
 */
export interface Clock {
  /** Microseconds since the Unix epoch. */
  nowMicros(): bigint;
}

export class SystemClock implements Clock {
  private readonly anchorWallMicros = BigInt(Date.now()) * 1000n;
  private readonly anchorHr = process.hrtime.bigint();
  private last = 0n;

  nowMicros(): bigint {
    const t = this.anchorWallMicros + (process.hrtime.bigint() - this.anchorHr) / 1000n;
    this.last = t > this.last ? t : this.last;
    return this.last;
  }
}

/** Deterministic clock for tests: starts at `start` and advances by `stepMicros` per call. */
export class ManualClock implements Clock {
  private current: bigint;
  constructor(start: Date | bigint = 1_700_000_000_000_000n, private readonly stepMicros = 1n) {
    this.current = typeof start === 'bigint' ? start : BigInt(start.getTime()) * 1000n;
  }
  nowMicros(): bigint {
    const t = this.current;
    this.current += this.stepMicros;
    return t;
  }
  advance(micros: bigint): void {
    this.current += micros;
  }
}

/** RFC 3339 UTC with exactly six fractional digits: `2026-11-21T18:38:29.123456Z`. */
export function formatRfc3339Micros(micros: bigint): string {
  const frac = (micros % 1_000_000n).toString().padStart(6, '0');
  // Every event is stamped: the date and time up to the second are formatted once per second.
  const seconds = micros / 1_000_000n;
  if (seconds !== lastSeconds || micros < 0n) {
    lastPrefix = new Date(Number(micros / 1000n)).toISOString().slice(0, 19);
    lastSeconds = micros < 0n ? -1n : seconds;
  }
  return `${lastPrefix}.${frac}Z`;
}
let lastSeconds = -1n;
let lastPrefix = '';

/** Parses an envelope timestamp back to microseconds since the epoch. */
export function parseRfc3339Micros(value: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(value);
  if (!m) throw new RangeError(`not an RFC 3339 UTC timestamp: ${value}`);
  const seconds = BigInt(Date.parse(`${m[1]}Z`)) / 1000n;
  const frac = BigInt((m[2] ?? '').padEnd(6, '0'));
  return seconds * 1_000_000n + frac;
}

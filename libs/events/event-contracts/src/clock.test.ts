import { describe, expect, it } from 'vitest';
import { formatRfc3339Micros, parseRfc3339Micros } from './clock.js';

// The formatting before the per-second cache: every call formats the whole date.
const reference = (micros: bigint): string => `${new Date(Number(micros / 1000n)).toISOString().slice(0, 19)}.${(micros % 1_000_000n).toString().padStart(6, '0')}Z`;

describe('formatRfc3339Micros', () => {
  it('formats as before the cache, in order, out of order and across second, day and year boundaries', () => {
    const base = 1_798_761_599_000_000n; // 2026-12-31T23:59:59Z
    const values: bigint[] = [];
    for (let i = 0n; i < 3_000n; i++) values.push(base + i * 997n);
    values.push(base + 1_000_000n, base, base + 999_999n, 0n, 1n, 999_999n, 1_000_000n, base + 1_000_000n, 1_700_000_000_123_456n, base);
    for (const micros of values) {
      expect(formatRfc3339Micros(micros)).toBe(reference(micros));
      expect(parseRfc3339Micros(formatRfc3339Micros(micros))).toBe(micros);
    }
  });
});

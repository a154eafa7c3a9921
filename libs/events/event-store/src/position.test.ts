import { describe, expect, it } from 'vitest';
import { canonicalJson } from './append-batch.js';
import { comparePositions, formatPosition, parsePosition } from './position.js';

describe('GlobalPosition', () => {
  it('round-trips through its durable text form, beyond 2^53', () => {
    const position = { commit: 18_446_744_073_709_551_615n, prepare: 9_007_199_254_740_993n };
    expect(formatPosition(position)).toBe('C18446744073709551615/P9007199254740993');
    expect(parsePosition(formatPosition(position))).toEqual(position);
  });

  it('refuses text that is not a position', () => {
    for (const bad of ['', 'C1', 'C-1/P1', '1/1', 'C1/P1 ']) expect(() => parsePosition(bad)).toThrow(expect.objectContaining({ code: 'EVENT_STORE_INVALID_POSITION' }));
  });

  it('orders by commit, then prepare', () => {
    expect(comparePositions({ commit: 1n, prepare: 9n }, { commit: 2n, prepare: 0n })).toBeLessThan(0);
    expect(comparePositions({ commit: 2n, prepare: 1n }, { commit: 2n, prepare: 0n })).toBeGreaterThan(0);
    expect(comparePositions({ commit: 2n, prepare: 2n }, { commit: 2n, prepare: 2n })).toBe(0);
  });
});

describe('canonicalJson', () => {
  it('ignores key order but not values or array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, 2] }, b: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });
});

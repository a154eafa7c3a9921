import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { UuidV7Generator, uuidv7, uuidv7Timestamp } from './uuid-v7.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('UUIDv7', () => {
  it('has version 7 and the RFC 9562 variant', () => {
    for (let i = 0; i < 1000; i++) expect(uuidv7()).toMatch(UUID_V7);
  });

  it('encodes the clock milliseconds', () => {
    const clock = new ManualClock(new Date('2026-11-21T18:00:00.123Z'));
    expect(uuidv7Timestamp(new UuidV7Generator(clock).next())).toBe(Date.parse('2026-11-21T18:00:00.123Z'));
  });

  it('is strictly increasing within one millisecond, past the 12-bit counter', () => {
    const clock = new ManualClock(new Date('2026-11-21T18:00:00.000Z'), 0n);
    const gen = new UuidV7Generator(clock);
    const ids = Array.from({ length: 5000 }, () => gen.next());
    const sorted = [...ids].sort();
    expect(ids).toEqual(sorted);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('draws fresh random bits for every id, across refills of its random pool', () => {
    // Same millisecond and counter would make equal ids if random bytes were reused.
    const clock = new ManualClock(new Date('2026-11-21T18:00:00.000Z'), 0n);
    const gens = [new UuidV7Generator(clock), new UuidV7Generator(clock)];
    const ids = Array.from({ length: 2000 }, (_, i) => gens[i % 2]!.next());
    expect(new Set(ids).size).toBe(ids.length);
    const randomParts = new Set(ids.map((id) => id.replace(/-/g, '').slice(17)));
    expect(randomParts.size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(UUID_V7);
  });
});

import { randomFillSync } from 'node:crypto';
import type { Clock } from './clock.js';

/**
 * UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then random bits, so ids sort
 * by creation time. Within one millisecond a 12-bit counter in `rand_a` keeps ids
 * from one generator strictly increasing (RFC 9562 §6.2, method 1).
 */
export class UuidV7Generator {
  private lastMs = -1;
  private counter = 0;
  private readonly bytes = new Uint8Array(16);

  constructor(private readonly clock?: Clock) {}

  /** `atMs` lets a caller stamp the id from the same clock reading as the event time. */
  next(atMs?: number): string {
    let ms = atMs ?? (this.clock ? Number(this.clock.nowMicros() / 1000n) : Date.now());
    if (ms <= this.lastMs) {
      this.counter += 1;
      if (this.counter > 0xfff) {
        // Counter exhausted within this millisecond: borrow the next one (stays monotonic).
        this.lastMs += 1;
        this.counter = 0;
      }
      ms = this.lastMs;
    } else {
      this.lastMs = ms;
      this.counter = 0;
    }
    const b = this.bytes;
    randomFillSync(b, 6);
    let t = ms;
    for (let i = 5; i >= 0; i--) {
      b[i] = t % 256;
      t = Math.floor(t / 256);
    }
    b[6] = 0x70 | ((this.counter >> 8) & 0x0f);
    b[7] = this.counter & 0xff;
    b[8] = 0x80 | (b[8]! & 0x3f);
    const hex = Buffer.from(b).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

const defaultGenerator = new UuidV7Generator();

export function uuidv7(): string {
  return defaultGenerator.next();
}

/** Milliseconds since the epoch encoded in a UUIDv7. */
export function uuidv7Timestamp(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

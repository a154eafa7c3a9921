import { randomFillSync } from 'node:crypto';
import type { Clock } from './clock.js';

/**
 * UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then random bits, so ids sort
 * by creation time. Within one millisecond a 12-bit counter in `rand_a` keeps ids
 * from one generator strictly increasing (RFC 9562 §6.2, method 1).
 */
/** Random bytes drawn from the CSPRNG at once for this many ids (as node:crypto's randomUUID caches). */
const IDS_PER_DRAW = 256;
/** Random bytes per id: octets 6–15 (the version, counter and variant bits are then set over them). */
const RANDOM_BYTES_PER_ID = 10;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then random bits, so ids sort
 * by creation time. Within one millisecond a 12-bit counter in `rand_a` keeps ids
 * from one generator strictly increasing (RFC 9562 §6.2, method 1).
 */
export class UuidV7Generator {
  private lastMs = -1;
  private counter = 0;
  private readonly bytes = new Uint8Array(16);
  /**
   * One synchronous CSPRNG call per id was about a tenth of a gateway's main thread (an event
   * per frame and per command): the random bytes are drawn for many ids at once, each byte used
   * once.
   */
  private readonly random = new Uint8Array(IDS_PER_DRAW * RANDOM_BYTES_PER_ID);
  private randomAt = this.random.length;

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
    if (this.randomAt === this.random.length) {
      randomFillSync(this.random);
      this.randomAt = 0;
    }
    const b = this.bytes;
    b.set(this.random.subarray(this.randomAt, this.randomAt + RANDOM_BYTES_PER_ID), 6);
    // Used once: the pool never hands the same bytes to two ids.
    this.random.fill(0, this.randomAt, this.randomAt + RANDOM_BYTES_PER_ID);
    this.randomAt += RANDOM_BYTES_PER_ID;
    let t = ms;
    for (let i = 5; i >= 0; i--) {
      b[i] = t % 256;
      t = Math.floor(t / 256);
    }
    b[6] = 0x70 | ((this.counter >> 8) & 0x0f);
    b[7] = this.counter & 0xff;
    b[8] = 0x80 | (b[8]! & 0x3f);
    return (
      HEX[b[0]!]! + HEX[b[1]!]! + HEX[b[2]!]! + HEX[b[3]!]! + '-' + HEX[b[4]!]! + HEX[b[5]!]! + '-' + HEX[b[6]!]! + HEX[b[7]!]! + '-' +
      HEX[b[8]!]! + HEX[b[9]!]! + '-' + HEX[b[10]!]! + HEX[b[11]!]! + HEX[b[12]!]! + HEX[b[13]!]! + HEX[b[14]!]! + HEX[b[15]!]!
    );
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

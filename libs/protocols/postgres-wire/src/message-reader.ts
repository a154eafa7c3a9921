import { WireProtocolError } from './errors.js';

/** Reads fields from one message body; every read is bounds-checked and names the message on failure. */
export class MessageReader {
  private offset = 0;

  constructor(
    private readonly body: Buffer,
    private readonly message: string,
  ) {}

  get remaining(): number {
    return this.body.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  private need(bytes: number, what: string): void {
    if (this.offset + bytes > this.body.length) throw this.malformed(`truncated ${what}`);
  }

  malformed(problem: string): WireProtocolError {
    return new WireProtocolError('WIRE_MALFORMED', `${this.message}: ${problem}`);
  }

  byte(what = 'byte'): number {
    this.need(1, what);
    return this.body[this.offset++]!;
  }

  int16(what = 'int16'): number {
    this.need(2, what);
    const value = this.body.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint16(what = 'uint16'): number {
    this.need(2, what);
    const value = this.body.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(what = 'int32'): number {
    this.need(4, what);
    const value = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(what = 'string'): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) throw this.malformed(`${what} is not NUL-terminated`);
    const value = this.body.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  /** `length` bytes as a view into the message (no copy). */
  bytes(length: number, what = 'bytes'): Buffer {
    if (length < 0) throw this.malformed(`negative length of ${what}`);
    this.need(length, what);
    const value = this.body.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  rest(): Buffer {
    const value = this.body.subarray(this.offset);
    this.offset = this.body.length;
    return value;
  }

  /** An unsigned 16-bit count (PostgreSQL allows up to 65,535 parameters) that must fit in what is left (each item at least `minItemBytes`). */
  count(what: string, minItemBytes: number): number {
    const n = this.uint16(`${what} count`);
    if (n * minItemBytes > this.remaining) throw this.malformed(`${what} count ${n} exceeds the message`);
    return n;
  }

  end(): void {
    if (this.offset !== this.body.length) throw this.malformed(`${this.body.length - this.offset} unexpected trailing bytes`);
  }
}

// A model of the line the user is typing at a shell prompt, from the keys sent to a pty: printable
// input, backspace/erase, ^U, ^W, ^K, ^A/^E, ^B/^F, ^C, cursor keys, Home/End/Delete and bracketed
// paste. Keys the model cannot follow (Tab completion, history, reverse search, meta keys, unknown
// escape sequences) make the line `uncertain` until it is cleared. Pure: no I/O.

export type EditorEvent =
  /** Bytes to forward to the upstream now (they only edit the line). */
  | { readonly kind: 'forward'; readonly bytes: Buffer }
  /** Enter: the line as modelled, and whether the model could follow every key. */
  | { readonly kind: 'enter'; readonly line: string; readonly uncertain: boolean; readonly bytes: Buffer };

const MAX_LINE = 64 * 1024;
const MAX_ESCAPE = 32;

export class LineEditor {
  private chars: string[] = [];
  private cursor = 0;
  private uncertainLine = false;
  private pasting = false;
  private escape: number[] | undefined;
  private utf8: number[] = [];

  get line(): string {
    return this.chars.join('');
  }

  get uncertain(): boolean {
    return this.uncertainLine;
  }

  /** Forgets the line (after Enter, ^C, a refusal). */
  reset(): void {
    this.chars = [];
    this.cursor = 0;
    this.uncertainLine = false;
    this.pasting = false;
    this.escape = undefined;
    this.utf8 = [];
  }

  /** Feeds client bytes; returns what to forward, split at each Enter. */
  push(data: Uint8Array): EditorEvent[] {
    const events: EditorEvent[] = [];
    let start = 0;
    for (let i = 0; i < data.length; i++) {
      const byte = data[i]!;
      if (this.escape) {
        this.escape.push(byte);
        if (this.escapeDone()) this.applyEscape(this.escape);
        continue;
      }
      if (byte === 0x1b) {
        this.escape = [byte];
        continue;
      }
      if (this.pasting) {
        this.insertByte(byte === 0x0d ? 0x0a : byte);
        continue;
      }
      if (byte === 0x0d || byte === 0x0a) {
        events.push({ kind: 'forward', bytes: Buffer.from(data.subarray(start, i)) });
        events.push({ kind: 'enter', line: this.line, uncertain: this.uncertainLine || this.utf8.length > 0, bytes: Buffer.from([byte]) });
        this.reset();
        start = i + 1;
        continue;
      }
      this.key(byte);
    }
    if (start < data.length) events.push({ kind: 'forward', bytes: Buffer.from(data.subarray(start)) });
    return events.filter((e) => e.kind === 'enter' || e.bytes.length > 0);
  }

  private key(byte: number): void {
    switch (byte) {
      case 0x7f:
      case 0x08:
        if (this.cursor > 0) {
          this.chars.splice(this.cursor - 1, 1);
          this.cursor--;
        }
        return;
      case 0x15: // ^U: kill to the start of the line
        this.chars.splice(0, this.cursor);
        this.cursor = 0;
        return;
      case 0x17: {
        // ^W: the word before the cursor (and the spaces after it)
        let from = this.cursor;
        while (from > 0 && /\s/.test(this.chars[from - 1]!)) from--;
        while (from > 0 && !/\s/.test(this.chars[from - 1]!)) from--;
        this.chars.splice(from, this.cursor - from);
        this.cursor = from;
        return;
      }
      case 0x0b: // ^K
        this.chars.splice(this.cursor);
        return;
      case 0x01:
        this.cursor = 0;
        return;
      case 0x05:
        this.cursor = this.chars.length;
        return;
      case 0x02:
        this.cursor = Math.max(0, this.cursor - 1);
        return;
      case 0x06:
        this.cursor = Math.min(this.chars.length, this.cursor + 1);
        return;
      case 0x03: // ^C: the shell discards the line
        this.reset();
        return;
      case 0x04:
        if (this.cursor < this.chars.length) this.chars.splice(this.cursor, 1);
        return;
      case 0x0c: // ^L redraws
        return;
      default:
        if (byte < 0x20) this.uncertainLine = true; // Tab, ^R, ^T, ^Y, ^V …: the gateway cannot see their effect
        else this.insertByte(byte);
    }
  }

  private insertByte(byte: number): void {
    // UTF-8 sequences are inserted as one character once complete.
    if (byte >= 0x80) {
      this.utf8.push(byte);
      const lead = this.utf8[0]!;
      const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
      if (this.utf8.length < need) return;
      const text = Buffer.from(this.utf8).toString('utf8');
      this.utf8 = [];
      this.insert(text);
      return;
    }
    if (this.utf8.length > 0) {
      this.uncertainLine = true;
      this.utf8 = [];
    }
    if (byte < 0x20 && byte !== 0x0a && byte !== 0x09) this.uncertainLine = true;
    this.insert(String.fromCharCode(byte));
  }

  private insert(text: string): void {
    if (this.chars.length >= MAX_LINE) {
      this.uncertainLine = true;
      return;
    }
    this.chars.splice(this.cursor, 0, text);
    this.cursor++;
  }

  private escapeDone(): boolean {
    const seq = this.escape!;
    if (seq.length > MAX_ESCAPE) return true;
    if (seq.length < 2) return false;
    const second = seq[1]!;
    if (second !== 0x5b && second !== 0x4f) return true; // ESC x: a meta key
    if (seq.length < 3) return false;
    const last = seq[seq.length - 1]!;
    return second === 0x4f ? true : last >= 0x40 && last <= 0x7e;
  }

  private applyEscape(seq: number[]): void {
    this.escape = undefined;
    const text = Buffer.from(seq).toString('latin1').slice(1);
    if (text === '[200~') {
      this.pasting = true;
      return;
    }
    if (text === '[201~') {
      this.pasting = false;
      return;
    }
    if (this.pasting) {
      // An escape sequence inside a paste is pasted text the shell may or may not keep.
      this.uncertainLine = true;
      return;
    }
    switch (text) {
      case '[D':
      case 'OD':
        this.cursor = Math.max(0, this.cursor - 1);
        return;
      case '[C':
      case 'OC':
        this.cursor = Math.min(this.chars.length, this.cursor + 1);
        return;
      case '[H':
      case 'OH':
      case '[1~':
        this.cursor = 0;
        return;
      case '[F':
      case 'OF':
      case '[4~':
        this.cursor = this.chars.length;
        return;
      case '[3~':
        if (this.cursor < this.chars.length) this.chars.splice(this.cursor, 1);
        return;
      default:
        this.uncertainLine = true; // history (up/down), meta keys, function keys
    }
  }
}

/** Tracks whether a terminal's output switched to the alternate screen (full-screen programs: editors, pagers). */
export class AlternateScreenTracker {
  private tail = '';
  private active = false;

  get alternateScreen(): boolean {
    return this.active;
  }

  observe(output: Uint8Array): void {
    const text = this.tail + Buffer.from(output).toString('latin1');
    const pattern = new RegExp(`${String.fromCharCode(0x1b)}\\[\\?(1049|1047|47)([hl])`, 'g');
    for (const match of text.matchAll(pattern)) this.active = match[2] === 'h';
    this.tail = text.slice(-12);
  }
}

// What the gateway expects back from upstream, in order: one entry per forwarded (or injected)
// message that produces a response. Backend messages are matched against the head, which tells
// which row description applies to a DataRow, which responses the client must not see (those
// to messages the gateway injected), and where a refusal's error goes.
import type { MaskingFindings } from '@custodian/masking';

export type Expectation =
  /** Simple Query: everything up to ReadyForQuery. */
  | {
      readonly kind: 'query';
      /** Set late for a COPY FROM STDIN held until its payload is approved. */
      commandId: string | undefined;
      findings?: MaskingFindings;
      readonly point?: number;
      /** The upstream's next ErrorResponse is replaced by this one (a COPY payload the gateway refused and cancelled with CopyFail). */
      replaceError?: Buffer;
    }
  /** An injected Parse that cannot succeed: its ErrorResponse is replaced by `error`. */
  | { readonly kind: 'refusal'; readonly error: Buffer }
  | { readonly kind: 'parse' }
  | { readonly kind: 'bind' }
  | { readonly kind: 'close' }
  | { readonly kind: 'describe'; readonly target: 'S' | 'P'; readonly name: string; readonly swallow: boolean }
  | { readonly kind: 'execute'; readonly portal: string; readonly commandId: string | undefined; findings?: MaskingFindings }
  /** `point`: the client's sync point number (Sync and Query count), absent for syncs the gateway injected. */
  | { readonly kind: 'sync'; readonly point?: number };

/** A FIFO with O(1) shift (a proxy can have thousands of pipelined messages in flight). */
export class ResponseTracker {
  private items: Expectation[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  peek(): Expectation | undefined {
    return this.items[this.head];
  }

  push(expectation: Expectation): void {
    this.items.push(expectation);
  }

  shift(): Expectation | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

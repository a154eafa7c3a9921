// JSON-path masking over a JSON *stream* (an HTTP response of any size): the bytes are tokenized
// as they arrive, path rules and detectors are applied per value, and the document is
// re-serialised (compact) as it goes. Memory is bounded by the largest single value
// (`maxValueChars`) and the nesting depth, never by the document: a 500 MB array streams through
// in constant space. Unlike maskJsonText, formatting is not kept.
//
// The tokenizer is our own (it replaced @streamparser/json's, which the profile showed as the
// largest cost): runs of plain string characters are taken with one scan and one slice, no
// per-character buffer or per-token object; keys and values are only decoded where escaped.
import { MaskingError } from './errors.js';
import { MaskingFindings } from './findings.js';
import type { JsonPathSegment } from './json-path.js';
import { JsonShapes, type JsonShape as Shape } from './json-shapes.js';
import { DEFAULT_JSON_MAX_DEPTH, JSON_LIMIT_RULE, type JsonTextMaskTarget } from './json-text-masker.js';
import type { FieldRule } from './policy.js';

/** Largest single string or number (UTF-16 code units) a stream may carry; beyond it the stream fails. */
export const DEFAULT_JSON_STREAM_MAX_VALUE_CHARS = 4 * 1024 * 1024;
/** Numbers shorter than this cannot hold what a detector finds (as in maskJsonText). */
const MIN_SCANNED_NUMBER = 9;
const REDACTED_LIMIT = JSON.stringify(`[REDACTED:${JSON_LIMIT_RULE}]`);

export interface JsonStreamMaskOptions {
  /** Where the document sits (`response.body`), prefixed to reported paths. */
  readonly location?: string;
  /** Deeper containers are replaced whole by `"[REDACTED:custodian:json-limit]"` (the rest streams on). */
  readonly maxDepth?: number;
  /** Largest single string or number; a longer one fails the stream (`MASKING_JSON_VALUE_TOO_LARGE`). */
  readonly maxValueChars?: number;
  /** Accumulate into an existing summary. */
  readonly findings?: MaskingFindings;
}

/** The stream is not JSON (or not one document), or a value passed `maxValueChars`: nothing more may be sent. */
export class JsonStreamError extends MaskingError {
  constructor(
    readonly reason: 'invalid' | 'value-too-large',
    message: string,
  ) {
    super(reason === 'invalid' ? 'MASKING_JSON_INVALID' : 'MASKING_JSON_VALUE_TOO_LARGE', message);
    this.name = 'JsonStreamError';
  }
}

export interface JsonStreamMasker {
  /** Tokenizes a chunk (any split, even inside a UTF-8 character); returns the masked JSON text now final. Throws JsonStreamError. */
  push(chunk: Uint8Array | string): string;
  /** The document must be complete; returns the last output. Throws JsonStreamError. */
  end(): string;
  readonly findings: MaskingFindings;
  /** Deepest nesting seen, longest single value and path shapes kept (for tests of the bounds). */
  readonly stats: { readonly maxDepth: number; readonly maxValueChars: number; readonly shapesKept: number };
}

interface Covering {
  readonly rule: FieldRule;
  readonly field: string;
}

/**
 * What a container expects next. Object: `key|}` after `{`, `:` after a key, a value after `:`,
 * `,|}` after a value, a key after `,`. Array: `value|]` after `[`, `,|]` after a value, a value after `,`.
 */
const KEY_OR_END = 0;
const KEY = 1;
const COLON = 2;
const VALUE = 3;
const VALUE_OR_END = 4;
const COMMA_OR_END = 5;

interface Frame {
  readonly array: boolean;
  readonly covering: Covering | undefined;
  expect: number;
  readonly shape: Shape;
  /** The current child's shape (every element of an array shares one). */
  child: Shape;
}

// Lexer states.
const BETWEEN = 0;
const STRING = 1;
const ESCAPE = 2;
const UNICODE = 3;
const NUMBER = 4;
const LITERAL = 5;

const NUMBER_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const ESCAPED: Readonly<Record<number, string>> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };

function invalid(why: string): JsonStreamError {
  return new JsonStreamError('invalid', `not JSON: ${why}`);
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

class StreamingJsonMasker implements JsonStreamMasker {
  readonly findings: MaskingFindings;
  readonly stats: { maxDepth: number; maxValueChars: number; readonly shapesKept: number };
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  readonly #frames: Frame[] = [];
  readonly #path: JsonPathSegment[] = [];
  readonly #maxDepth: number;
  readonly #maxValueChars: number;
  readonly #shapes: JsonShapes;
  #out = '';
  #lex = BETWEEN;
  /** The string, number or literal being read, and facts about it. */
  #text = '';
  #isKey = false;
  #hex = '';
  #literal = '';
  /** Nesting inside a container replaced for depth: its tokens are dropped until it closes. */
  #skipDepth = 0;
  #rootDone = false;
  #error: JsonStreamError | undefined;

  constructor(
    private readonly target: JsonTextMaskTarget,
    options: JsonStreamMaskOptions,
  ) {
    this.findings = options.findings ?? new MaskingFindings();
    this.#maxDepth = options.maxDepth ?? DEFAULT_JSON_MAX_DEPTH;
    this.#maxValueChars = options.maxValueChars ?? DEFAULT_JSON_STREAM_MAX_VALUE_CHARS;
    const shapes = (this.#shapes = new JsonShapes(target, options.location ?? ''));
    this.stats = {
      maxDepth: 0,
      maxValueChars: 0,
      get shapesKept(): number {
        return shapes.kept;
      },
    };
  }

  push(chunk: Uint8Array | string): string {
    if (this.#error) throw this.#error;
    try {
      this.#feed(typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true }));
    } catch (error) {
      throw this.#fail(error);
    }
    return this.#drain();
  }

  end(): string {
    if (this.#error) throw this.#error;
    try {
      this.#feed(this.#decoder.decode());
      if (this.#lex === NUMBER) {
        this.#lex = BETWEEN;
        this.#numberDone();
      }
      if (this.#lex !== BETWEEN || !this.#rootDone) throw invalid('the document ended early');
    } catch (error) {
      throw this.#fail(error);
    }
    return this.#drain();
  }

  #fail(error: unknown): JsonStreamError {
    // TextDecoder (fatal) throws a TypeError on bytes that are not UTF-8.
    this.#error = error instanceof JsonStreamError ? error : invalid(error instanceof TypeError ? 'the bytes are not UTF-8' : String(error));
    this.#out = '';
    return this.#error;
  }

  #drain(): string {
    const out = this.#out;
    this.#out = '';
    return out;
  }

  #feed(text: string): void {
    const n = text.length;
    let i = 0;
    while (i < n) {
      switch (this.#lex) {
        case STRING: {
          // The bulk of a document: a run of plain characters, taken whole.
          const start = i;
          let c = 0;
          while (i < n) {
            c = text.charCodeAt(i);
            if (c === 0x22 || c === 0x5c || c < 0x20) break;
            i++;
          }
          if (i > start) this.#append(start === 0 && i === n ? text : text.slice(start, i));
          if (i === n) break;
          i++;
          if (c === 0x22) {
            this.#lex = BETWEEN;
            this.#stringDone();
          } else if (c === 0x5c) this.#lex = ESCAPE;
          else throw invalid('a control character in a string');
          break;
        }
        case ESCAPE: {
          const c = text.charCodeAt(i++);
          if (c === 0x75 /* u */) {
            this.#lex = UNICODE;
            this.#hex = '';
            break;
          }
          const decoded = ESCAPED[c];
          if (decoded === undefined) throw invalid('a bad escape in a string');
          this.#append(decoded);
          this.#lex = STRING;
          break;
        }
        case UNICODE: {
          const c = text.charCodeAt(i++);
          if (!isHex(c)) throw invalid('a bad \\u escape in a string');
          this.#hex += String.fromCharCode(c);
          if (this.#hex.length === 4) {
            this.#append(String.fromCharCode(Number.parseInt(this.#hex, 16)));
            this.#lex = STRING;
          }
          break;
        }
        case NUMBER: {
          const start = i;
          while (i < n && isNumberChar(text.charCodeAt(i))) i++;
          if (i > start) {
            this.#text += text.slice(start, i);
            if (this.#text.length > this.#maxValueChars) throw this.#tooLarge('value');
          }
          if (i < n) {
            this.#lex = BETWEEN;
            this.#numberDone();
          }
          break;
        }
        case LITERAL: {
          const c = text.charCodeAt(i++);
          if (c !== this.#literal.charCodeAt(this.#text.length)) throw invalid(`a bad literal (expected ${this.#literal})`);
          this.#text += String.fromCharCode(c);
          if (this.#text.length === this.#literal.length) {
            this.#lex = BETWEEN;
            this.#literalDone();
          }
          break;
        }
        default: {
          const c = text.charCodeAt(i++);
          if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
          if (c === 0x22) this.#stringStart();
          else if (c === 0x2c) this.#comma();
          else if (c === 0x3a) this.#colon();
          else if (c === 0x7b || c === 0x5b) this.#open(c === 0x5b);
          else if (c === 0x7d || c === 0x5d) this.#close(c === 0x5d);
          else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
            this.#valueStart();
            this.#lex = NUMBER;
            this.#text = String.fromCharCode(c);
          } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
            this.#valueStart();
            this.#lex = LITERAL;
            this.#literal = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null';
            this.#text = this.#literal[0]!;
          } else throw invalid(`unexpected ${JSON.stringify(String.fromCharCode(c))}`);
        }
      }
    }
  }

  #tooLarge(what: 'key' | 'value'): JsonStreamError {
    return new JsonStreamError('value-too-large', `a JSON ${what} is longer than ${this.#maxValueChars} characters, the most that is masked`);
  }

  /** Grows the string being read (inside a skipped container only its end matters: nothing is kept). */
  #append(piece: string): void {
    if (this.#skipDepth > 0) return;
    this.#text += piece;
    if (this.#text.length > this.#maxValueChars) throw this.#tooLarge(this.#isKey ? 'key' : 'value');
  }

  /** A value (not a container) starts: it must be allowed here. */
  #valueStart(): void {
    if (this.#skipDepth > 0) return;
    if (this.#rootDone) throw invalid('data after the end of the document');
    const frame = this.#frames.at(-1);
    if (frame ? frame.expect !== VALUE && frame.expect !== VALUE_OR_END : false) throw invalid('a value where none may stand');
  }

  #stringStart(): void {
    this.#lex = STRING;
    this.#text = '';
    if (this.#skipDepth > 0) return;
    const frame = this.#frames.at(-1);
    this.#isKey = frame !== undefined && !frame.array && (frame.expect === KEY_OR_END || frame.expect === KEY);
    if (!this.#isKey) this.#valueStart();
  }

  #stringDone(): void {
    if (this.#skipDepth > 0) return;
    const value = this.#text;
    this.#text = '';
    if (!this.#isKey) {
      this.#scalar(value, true);
      return;
    }
    const frame = this.#frames.at(-1)!;
    frame.expect = COLON;
    this.#path[this.#path.length - 1] = value;
    frame.child = this.#shapes.child(frame.shape, value, this.#path);
    this.#out += JSON.stringify(value);
  }

  #numberDone(): void {
    const text = this.#text;
    this.#text = '';
    if (this.#skipDepth > 0) return;
    if (!NUMBER_TEXT.test(text)) throw invalid('a malformed number');
    this.#scalar(text, false);
  }

  #literalDone(): void {
    const text = this.#text;
    this.#text = '';
    if (this.#skipDepth > 0) return;
    // Nothing to mask (as in maskJsonText).
    this.#out += text;
    this.#valueDone();
  }

  #open(array: boolean): void {
    if (this.#skipDepth > 0) {
      this.#skipDepth++;
      return;
    }
    this.#valueStart();
    const frame = this.#frames.at(-1);
    const shape = frame ? frame.child : this.#shapes.root;
    const covering = this.#covering(frame, shape);
    const depth = this.#frames.length + 1;
    if (depth > this.#maxDepth) {
      // Fail closed without stopping the stream: the too-deep container becomes one redacted string.
      this.findings.add(shape.field, JSON_LIMIT_RULE);
      this.#out += REDACTED_LIMIT;
      this.#skipDepth = 1;
      return;
    }
    if (depth > this.stats.maxDepth) this.stats.maxDepth = depth;
    this.#path.push(0);
    const child = array ? this.#shapes.element(shape, this.#path) : shape;
    this.#frames.push({ array, covering, expect: array ? VALUE_OR_END : KEY_OR_END, shape, child });
    this.#out += array ? '[' : '{';
  }

  #close(array: boolean): void {
    if (this.#skipDepth > 0) {
      if (--this.#skipDepth === 0) this.#valueDone();
      return;
    }
    const frame = this.#frames.at(-1);
    if (!frame || frame.array !== array || !(frame.expect === COMMA_OR_END || frame.expect === (array ? VALUE_OR_END : KEY_OR_END))) throw invalid(`unexpected ${array ? ']' : '}'}`);
    this.#frames.pop();
    this.#path.pop();
    this.#out += array ? ']' : '}';
    this.#valueDone();
  }

  #colon(): void {
    if (this.#skipDepth > 0) return;
    const frame = this.#frames.at(-1);
    if (frame?.expect !== COLON) throw invalid('unexpected :');
    frame.expect = VALUE;
    this.#out += ':';
  }

  #comma(): void {
    if (this.#skipDepth > 0) return;
    const frame = this.#frames.at(-1);
    if (frame?.expect !== COMMA_OR_END) throw invalid('unexpected ,');
    if (frame.array) {
      frame.expect = VALUE;
      const last = this.#path.length - 1;
      this.#path[last] = (this.#path[last] as number) + 1;
    } else frame.expect = KEY;
    this.#out += ',';
  }

  /** The rule covering the value about to start: the container's, else a rule at its own path. */
  #covering(frame: Frame | undefined, shape: Shape): Covering | undefined {
    if (frame?.covering) return frame.covering;
    const rule = this.#shapes.ruleAt(shape, this.#path);
    return rule ? { rule, field: shape.field } : undefined;
  }

  #scalar(text: string, isString: boolean): void {
    if (text.length > this.stats.maxValueChars) this.stats.maxValueChars = text.length;
    const frame = this.#frames.at(-1);
    const shape = frame ? frame.child : this.#shapes.root;
    const covering = frame?.covering;
    const rule = covering ? covering.rule : this.#shapes.ruleAt(shape, this.#path);
    if (rule) {
      this.findings.add(covering ? covering.field : shape.field, rule.id);
      this.#out += JSON.stringify(rule.mask(text));
    } else if (isString) {
      this.#out += JSON.stringify(this.target.scan(text, shape.field, this.findings));
    } else if (text.length >= MIN_SCANNED_NUMBER) {
      const scanned = this.target.scan(text, shape.field, this.findings);
      this.#out += scanned === text ? text : JSON.stringify(scanned);
    } else this.#out += text;
    this.#valueDone();
  }

  /** A value ended: its container now expects `,` or its end; at the root the document is complete. */
  #valueDone(): void {
    const frame = this.#frames.at(-1);
    if (frame) frame.expect = COMMA_OR_END;
    else this.#rootDone = true;
  }
}

/** A streaming JSON masker over a policy's path rules and detectors (see MaskingPolicy.createJsonStreamMasker). */
export function createJsonStreamMasker(target: JsonTextMaskTarget, options: JsonStreamMaskOptions = {}): JsonStreamMasker {
  return new StreamingJsonMasker(target, options);
}

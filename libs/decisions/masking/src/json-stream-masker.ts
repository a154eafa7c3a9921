// JSON-path masking over a JSON *stream* (an HTTP response of any size): the bytes are tokenized
// as they arrive (@streamparser/json's Tokenizer, behind this interface), path rules and detectors
// are applied per value, and the document is re-serialised (compact) as it goes. Memory is bounded
// by the largest single value (`maxValueChars`) and the nesting depth, never by the document: a
// 500 MB array streams through in constant space. Unlike maskJsonText, formatting is not kept.
import { Tokenizer, TokenType, type ParsedTokenInfo } from '@streamparser/json';
import { MaskingError } from './errors.js';
import { MaskingFindings } from './findings.js';
import { formatJsonPath, type JsonPathSegment } from './json-path.js';
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
  /** Deepest nesting seen and longest single value (for tests of the bound). */
  readonly stats: { readonly maxDepth: number; readonly maxValueChars: number };
}

interface Covering {
  readonly rule: FieldRule;
  readonly field: string;
}

/**
 * What a container expects next. Object: `key|}` after `{`, `:` after a key, a value after `:`,
 * `,|}` after a value, a key after `,`. Array: `value|]` after `[`, `,|]` after a value, a value after `,`.
 */
type Expect = 'key-or-end' | 'key' | 'colon' | 'value' | 'value-or-end' | 'comma-or-end';

interface Frame {
  readonly array: boolean;
  readonly covering: Covering | undefined;
  expect: Expect;
  /** This container's reported path (`response.body$.items[*]`); a child's is one step longer. */
  readonly field: string;
  /** The current child's reported path, computed once per key (every element of an array shares one). */
  childField: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** Keeps a number's text as it appeared (precision, exponent form), which `Number()` would not. */
class RawNumberTokenizer extends Tokenizer {
  lastNumberText = '';
  protected override parseNumber(numberStr: string): number {
    this.lastNumberText = numberStr;
    return 0;
  }
}

function invalid(why: string): JsonStreamError {
  return new JsonStreamError('invalid', `not JSON: ${why}`);
}

class StreamingJsonMasker implements JsonStreamMasker {
  readonly findings: MaskingFindings;
  readonly stats = { maxDepth: 0, maxValueChars: 0 };
  readonly #tokenizer = new RawNumberTokenizer({ emitPartialTokens: true });
  readonly #frames: Frame[] = [];
  readonly #path: JsonPathSegment[] = [];
  readonly #location: string;
  readonly #maxDepth: number;
  readonly #maxValueChars: number;
  #out: string[] = [];
  /** Nesting inside a container replaced for depth: its tokens are dropped until it closes. */
  #skipDepth = 0;
  #rootDone = false;
  #error: JsonStreamError | undefined;

  constructor(
    private readonly target: JsonTextMaskTarget,
    options: JsonStreamMaskOptions,
  ) {
    this.findings = options.findings ?? new MaskingFindings();
    this.#location = options.location ?? '';
    this.#maxDepth = options.maxDepth ?? DEFAULT_JSON_MAX_DEPTH;
    this.#maxValueChars = options.maxValueChars ?? DEFAULT_JSON_STREAM_MAX_VALUE_CHARS;
    this.#tokenizer.onToken = (token) => this.#token(token);
    this.#tokenizer.onError = (error) => {
      this.#error ??= error instanceof JsonStreamError ? error : invalid(error.message);
    };
  }

  push(chunk: Uint8Array | string): string {
    if (this.#error) throw this.#error;
    this.#tokenizer.write(chunk);
    return this.#drain();
  }

  end(): string {
    if (this.#error) throw this.#error;
    try {
      this.#tokenizer.end();
    } catch (error) {
      // A number flushed at the end can still break the grammar (`{} 5`).
      this.#error ??= error instanceof JsonStreamError ? error : invalid(error instanceof Error ? error.message : String(error));
    }
    const out = this.#drain();
    if (!this.#rootDone) throw (this.#error = invalid('the document ended early'));
    return out;
  }

  #drain(): string {
    if (this.#error) throw this.#error;
    if (this.#out.length === 0) return '';
    const out = this.#out.join('');
    this.#out = [];
    return out;
  }

  /** The reported path of the value at the current position (indices as `[*]`, as maskJsonText reports). */
  #field(): string {
    const frame = this.#frames.at(-1);
    return frame ? frame.childField : this.#location + formatJsonPath([]);
  }

  /** Thrown errors are caught by the tokenizer and handed to onError. */
  #token({ token, value, partial }: ParsedTokenInfo): void {
    if (partial) {
      // A string or number still growing at a chunk's end: only its size is checked.
      const length = token === TokenType.STRING ? (value as string).length : token === TokenType.NUMBER ? this.#tokenizer.lastNumberText.length : 0;
      if (length > this.#maxValueChars) throw new JsonStreamError('value-too-large', `a JSON value is longer than ${this.#maxValueChars} characters, the most that is masked`);
      return;
    }
    if (this.#skipDepth > 0) {
      if (token === TokenType.LEFT_BRACE || token === TokenType.LEFT_BRACKET) this.#skipDepth++;
      else if (token === TokenType.RIGHT_BRACE || token === TokenType.RIGHT_BRACKET) this.#skipDepth--;
      if (this.#skipDepth === 0) this.#valueDone();
      return;
    }
    if (this.#rootDone) throw invalid('data after the end of the document');
    const frame = this.#frames.at(-1);
    switch (token) {
      case TokenType.LEFT_BRACE:
      case TokenType.LEFT_BRACKET: {
        this.#expectValue(frame);
        const covering = this.#covering(frame);
        const depth = this.#frames.length + 1;
        if (depth > this.#maxDepth) {
          // Fail closed without stopping the stream: the too-deep container becomes one redacted string.
          this.findings.add(this.#field(), JSON_LIMIT_RULE);
          this.#out.push(REDACTED_LIMIT);
          this.#skipDepth = 1;
          return;
        }
        this.stats.maxDepth = Math.max(this.stats.maxDepth, depth);
        const array = token === TokenType.LEFT_BRACKET;
        const field = this.#field();
        this.#frames.push({ array, covering, expect: array ? 'value-or-end' : 'key-or-end', field, childField: array ? `${field}[*]` : field });
        this.#path.push(0);
        this.#out.push(array ? '[' : '{');
        return;
      }
      case TokenType.RIGHT_BRACE:
      case TokenType.RIGHT_BRACKET: {
        const array = token === TokenType.RIGHT_BRACKET;
        if (!frame || frame.array !== array || !(frame.expect === 'comma-or-end' || frame.expect === (array ? 'value-or-end' : 'key-or-end'))) throw invalid(`unexpected ${array ? ']' : '}'}`);
        this.#frames.pop();
        this.#path.pop();
        this.#out.push(array ? ']' : '}');
        this.#valueDone();
        return;
      }
      case TokenType.COLON:
        if (frame?.expect !== 'colon') throw invalid('unexpected :');
        frame.expect = 'value';
        this.#out.push(':');
        return;
      case TokenType.COMMA:
        if (frame?.expect !== 'comma-or-end') throw invalid('unexpected ,');
        if (frame.array) {
          frame.expect = 'value';
          this.#path[this.#path.length - 1] = (this.#path.at(-1) as number) + 1;
        } else frame.expect = 'key';
        this.#out.push(',');
        return;
      case TokenType.STRING:
        if (frame && !frame.array && (frame.expect === 'key-or-end' || frame.expect === 'key')) {
          if ((value as string).length > this.#maxValueChars) throw new JsonStreamError('value-too-large', `a JSON key is longer than ${this.#maxValueChars} characters`);
          frame.expect = 'colon';
          this.#path[this.#path.length - 1] = value as string;
          frame.childField = frame.field + (IDENTIFIER.test(value as string) ? `.${value as string}` : formatJsonPath([value as string]).slice(1));
          this.#out.push(JSON.stringify(value));
          return;
        }
        this.#scalar(frame, value as string, true);
        return;
      case TokenType.NUMBER:
        this.#scalar(frame, this.#tokenizer.lastNumberText, false);
        return;
      case TokenType.TRUE:
      case TokenType.FALSE:
      case TokenType.NULL:
        this.#expectValue(frame);
        // Nothing to mask (as in maskJsonText).
        this.#out.push(String(value));
        this.#valueDone();
        return;
      default:
        throw invalid('unexpected token');
    }
  }

  #expectValue(frame: Frame | undefined): void {
    if (frame ? frame.expect !== 'value' && frame.expect !== 'value-or-end' : this.#rootDone) throw invalid('a value where none may stand');
  }

  /** The rule covering the value about to start: the container's, else a rule at its own path. */
  #covering(frame: Frame | undefined): Covering | undefined {
    if (frame?.covering) return frame.covering;
    const rule = this.target.ruleFor(this.#path);
    return rule ? { rule, field: this.#field() } : undefined;
  }

  #scalar(frame: Frame | undefined, text: string, isString: boolean): void {
    this.#expectValue(frame);
    if (text.length > this.#maxValueChars) throw new JsonStreamError('value-too-large', `a JSON value is longer than ${this.#maxValueChars} characters, the most that is masked`);
    this.stats.maxValueChars = Math.max(this.stats.maxValueChars, text.length);
    const covering = this.#covering(frame);
    if (covering) {
      this.findings.add(covering.field, covering.rule.id);
      this.#out.push(JSON.stringify(covering.rule.mask(text)));
    } else if (isString) {
      this.#out.push(JSON.stringify(this.target.scan(text, this.#field(), this.findings)));
    } else if (text.length >= MIN_SCANNED_NUMBER) {
      const scanned = this.target.scan(text, this.#field(), this.findings);
      this.#out.push(scanned === text ? text : JSON.stringify(scanned));
    } else this.#out.push(text);
    this.#valueDone();
  }

  /** A value ended: its container now expects `,` or its end; at the root the document is complete. */
  #valueDone(): void {
    const frame = this.#frames.at(-1);
    if (frame) frame.expect = 'comma-or-end';
    else this.#rootDone = true;
  }
}

/** A streaming JSON masker over a policy's path rules and detectors (see MaskingPolicy.createJsonStreamMasker). */
export function createJsonStreamMasker(target: JsonTextMaskTarget, options: JsonStreamMaskOptions = {}): JsonStreamMasker {
  return new StreamingJsonMasker(target, options);
}

// JSON-path masking over JSON *text*, for every protocol that carries JSON (PostgreSQL json/jsonb
// values, HTTP and MCP bodies). The text is scanned once, validated as it goes, and only the spans
// of masked values are replaced: everything else (formatting, key order, duplicate keys, number
// precision) stays byte for byte. No tree is built; work and memory are bounded by `maxChars` and
// `maxDepth`, and a document beyond them is replaced whole (fail closed).
import type { FieldRule } from './policy.js';
import { MaskingFindings } from './findings.js';
import type { JsonPathSegment } from './json-path.js';
import { JsonShapes, type JsonShape } from './json-shapes.js';

/** Largest JSON text (UTF-16 code units) masked by path; longer documents are replaced whole. */
export const DEFAULT_JSON_MAX_CHARS = 4 * 1024 * 1024;
/** Deepest nesting masked by path; deeper documents are replaced whole. */
export const DEFAULT_JSON_MAX_DEPTH = 64;
/** Rule id reported when a document was replaced whole because it exceeded a limit. */
export const JSON_LIMIT_RULE = 'custodian:json-limit';

export interface JsonTextMaskOptions {
  /** Where the document sits (a column, `response.body`), prefixed to reported paths; default none. */
  readonly location?: string;
  readonly maxChars?: number;
  readonly maxDepth?: number;
}

export type JsonTextMaskResult =
  /** Valid JSON: `text` is the input with masked values replaced (the input itself when `changed` is false). */
  | { readonly outcome: 'masked'; readonly text: string; readonly changed: boolean }
  /** Not JSON (syntax error at `offset`): nothing was masked or reported; scan it as text instead. */
  | { readonly outcome: 'invalid'; readonly offset: number }
  /** Beyond `maxChars` or `maxDepth`: `text` is a JSON string that replaces the whole document. */
  | { readonly outcome: 'refused'; readonly reason: 'too-large' | 'too-deep'; readonly text: string };

/** What the scanner asks of a policy: the rule for a concrete path, and detectors for other values. */
export interface JsonTextMaskTarget {
  ruleFor(path: readonly JsonPathSegment[]): FieldRule | undefined;
  scan(text: string, field: string, findings: MaskingFindings): string;
  /**
   * False when no rule names an array index, so a path's rule depends only on its shape (keys,
   * and that a step is an index): streams then look a shape's rule up once. Absent: per value.
   */
  readonly indexSensitive?: boolean;
}

class NotJson extends Error {
  constructor(readonly offset: number) {
    super(`not JSON at offset ${offset}`);
  }
}

class TooDeep extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
/** Numbers shorter than this cannot hold what a detector finds (cards, SSNs, phones, IBAN digits). */
const MIN_SCANNED_NUMBER = 9;

class JsonTextScanner {
  #i = 0;
  #copied = 0;
  readonly #pieces: string[] = [];
  readonly #path: JsonPathSegment[] = [];
  readonly #shapes: JsonShapes;

  constructor(
    private readonly text: string,
    private readonly target: JsonTextMaskTarget,
    private readonly findings: MaskingFindings,
    location: string,
    private readonly maxDepth: number,
  ) {
    this.#shapes = new JsonShapes(target, location);
  }

  run(): { text: string; changed: boolean } {
    this.#value(0, undefined, this.#shapes.root);
    this.#ws();
    if (this.#i !== this.text.length) throw new NotJson(this.#i);
    if (this.#pieces.length === 0) return { text: this.text, changed: false };
    this.#pieces.push(this.text.slice(this.#copied));
    return { text: this.#pieces.join(''), changed: true };
  }

  #replace(start: number, end: number, replacement: string): void {
    this.#pieces.push(this.text.slice(this.#copied, start), replacement);
    this.#copied = end;
  }

  #ws(): void {
    const { text } = this;
    for (;;) {
      const c = text.charCodeAt(this.#i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.#i++;
      else return;
    }
  }

  /**
   * One value at the current path. `covering` is the rule matched at an ancestor: every scalar
   * under it is masked with it (reported at the ancestor's path), as MaskingPolicy.maskJson does.
   */
  #value(depth: number, covering: { readonly rule: FieldRule; readonly field: string } | undefined, shape: JsonShape): void {
    this.#ws();
    let masking = covering;
    if (!masking) {
      const rule = this.#shapes.ruleAt(shape, this.#path);
      if (rule) masking = { rule, field: shape.field };
    }
    const c = this.text.charCodeAt(this.#i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth + 1 > this.maxDepth) throw new TooDeep();
      if (c === 0x7b) this.#object(depth + 1, masking, shape);
      else this.#array(depth + 1, masking, shape);
      return;
    }
    const start = this.#i;
    if (c === 0x22 /* " */) {
      const value = this.#string();
      if (masking) {
        this.findings.add(masking.field, masking.rule.id);
        this.#replace(start, this.#i, JSON.stringify(masking.rule.mask(value)));
        return;
      }
      const scanned = this.target.scan(value, shape.field, this.findings);
      if (scanned !== value) this.#replace(start, this.#i, JSON.stringify(scanned));
      return;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = start;
      const m = NUMBER.exec(this.text);
      if (!m) throw new NotJson(start);
      this.#i = start + m[0].length;
      if (masking) {
        this.findings.add(masking.field, masking.rule.id);
        this.#replace(start, this.#i, JSON.stringify(masking.rule.mask(m[0])));
      } else if (m[0].length >= MIN_SCANNED_NUMBER) {
        const scanned = this.target.scan(m[0], shape.field, this.findings);
        if (scanned !== m[0]) this.#replace(start, this.#i, JSON.stringify(scanned));
      }
      return;
    }
    // true, false and null carry nothing to mask (as in MaskingPolicy.maskJson).
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, start)) {
        this.#i = start + literal.length;
        return;
      }
    }
    throw new NotJson(start);
  }

  #object(depth: number, covering: { readonly rule: FieldRule; readonly field: string } | undefined, shape: JsonShape): void {
    this.#i++; // {
    this.#ws();
    if (this.text.charCodeAt(this.#i) === 0x7d /* } */) {
      this.#i++;
      return;
    }
    for (;;) {
      this.#ws();
      if (this.text.charCodeAt(this.#i) !== 0x22) throw new NotJson(this.#i);
      const key = this.#string();
      this.#ws();
      if (this.text.charCodeAt(this.#i) !== 0x3a /* : */) throw new NotJson(this.#i);
      this.#i++;
      this.#path.push(key);
      this.#value(depth, covering, this.#shapes.child(shape, key, this.#path));
      this.#path.pop();
      this.#ws();
      const c = this.text.charCodeAt(this.#i++);
      if (c === 0x7d) return;
      if (c !== 0x2c /* , */) throw new NotJson(this.#i - 1);
    }
  }

  #array(depth: number, covering: { readonly rule: FieldRule; readonly field: string } | undefined, shape: JsonShape): void {
    this.#i++; // [
    this.#ws();
    if (this.text.charCodeAt(this.#i) === 0x5d /* ] */) {
      this.#i++;
      return;
    }
    let element: JsonShape | undefined;
    for (let index = 0; ; index++) {
      this.#path.push(index);
      element ??= this.#shapes.element(shape, this.#path);
      this.#value(depth, covering, element);
      this.#path.pop();
      this.#ws();
      const c = this.text.charCodeAt(this.#i++);
      if (c === 0x5d) return;
      if (c !== 0x2c) throw new NotJson(this.#i - 1);
    }
  }

  /** A string token at the current position, decoded; validated as JSON requires. */
  #string(): string {
    const { text } = this;
    const start = this.#i;
    let j = start + 1;
    let escaped = false;
    for (;;) {
      if (j >= text.length) throw new NotJson(start);
      const c = text.charCodeAt(j);
      if (c === 0x22) break;
      if (c < 0x20) throw new NotJson(j);
      if (c === 0x5c /* \ */) {
        escaped = true;
        const e = text[j + 1];
        if (e === 'u') {
          if (!HEX4.test(text.slice(j + 2, j + 6))) throw new NotJson(j);
          j += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) j += 2;
        else throw new NotJson(j);
        continue;
      }
      j++;
    }
    this.#i = j + 1;
    return escaped ? (JSON.parse(text.slice(start, j + 1)) as string) : text.slice(start + 1, j);
  }
}

/**
 * Masks JSON text: values at the target's path rules are replaced with the rule's strategy (a
 * matched object or array has every scalar inside masked), other strings and long numbers go
 * through the detectors. Findings name the path (indices as `[*]`) and rule, never the value.
 * Never throws on its input: invalid JSON is reported as such, oversized input is refused whole.
 */
export function maskJsonTextWith(target: JsonTextMaskTarget, text: string, findings: MaskingFindings, options: JsonTextMaskOptions = {}): JsonTextMaskResult {
  const location = options.location ?? '';
  const refuse = (reason: 'too-large' | 'too-deep'): JsonTextMaskResult => {
    findings.add(location === '' ? '$' : location, JSON_LIMIT_RULE);
    return { outcome: 'refused', reason, text: JSON.stringify(`[REDACTED:${JSON_LIMIT_RULE}]`) };
  };
  if (text.length > (options.maxChars ?? DEFAULT_JSON_MAX_CHARS)) return refuse('too-large');
  // Findings of a document that turns out not to be JSON must not count: collect them aside.
  const scratch = new MaskingFindings();
  try {
    const result = new JsonTextScanner(text, target, scratch, location, options.maxDepth ?? DEFAULT_JSON_MAX_DEPTH).run();
    findings.merge(scratch);
    return { outcome: 'masked', ...result };
  } catch (error) {
    if (error instanceof NotJson) return { outcome: 'invalid', offset: error.offset };
    if (error instanceof TooDeep) return refuse('too-deep');
    throw error;
  }
}

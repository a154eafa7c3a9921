import { type KeyObject } from 'node:crypto';
import { ColumnPattern } from './column-pattern.js';
import { MaskingError } from './errors.js';
import { MaskingFindings } from './findings.js';
import {
  formatJsonPath,
  jsonPathMatches,
  jsonPathSpecificity,
  concreteJsonPath,
  parseJsonPath,
  type JsonPathPatternStep,
  type JsonPathSegment,
} from './json-path.js';
import { createJsonStreamMasker, type JsonStreamMaskOptions, type JsonStreamMasker } from './json-stream-masker.js';
import { maskJsonTextWith, type JsonTextMaskOptions, type JsonTextMaskResult, type JsonTextMaskTarget } from './json-text-masker.js';
import { compileStrategy, HmacTokenizer, type StrategySpec } from './strategies.js';
import { createStreamMasker, DetectionProfile, maskText, type DetectionOptions, type StreamMasker } from './text-masker.js';

export interface FieldRuleSpec {
  /** Rule id reported in findings and `data.masked` (e.g. `pii-email`). */
  readonly id: string;
  readonly strategy: StrategySpec;
}
export interface ColumnRuleSpec extends FieldRuleSpec {
  /** `schema.table.column`, `*` globs per segment. */
  readonly column: string;
}
export interface JsonPathRuleSpec extends FieldRuleSpec {
  /** `$.user.ssn`, `$.items[*].card`, `$..password`. */
  readonly path: string;
}

export interface MaskingPolicySpec {
  readonly columns?: readonly ColumnRuleSpec[];
  readonly jsonPaths?: readonly JsonPathRuleSpec[];
  /** Detector-driven masking of every value no field rule covers. Defaults: all detectors, redact. */
  readonly detection?: Omit<DetectionOptions, 'hmacKey' | 'tokenizer'>;
  /** Key for `hmac` strategies (field rules and detectors). Never logged. */
  readonly hmacKey?: Uint8Array | KeyObject;
}

/** A named rule resolved for one field; `mask` replaces the whole value. */
export interface FieldRule {
  readonly id: string;
  readonly strategy: StrategySpec;
  mask(value: string): string;
}

interface CompiledColumnRule {
  readonly pattern: ColumnPattern;
  readonly rule: FieldRule;
}
interface CompiledPathRule {
  readonly steps: readonly JsonPathPatternStep[];
  readonly specificity: number;
  readonly rule: FieldRule;
}

export interface JsonMaskOptions {
  /** Where the document sits, prefixed to reported paths (e.g. `response.body`); default none. */
  readonly location?: string;
  /** Accumulate into an existing summary. */
  readonly findings?: MaskingFindings;
}

/** A path shape no rule matches (cached as such). */
const NO_RULE = Symbol('no JSON-path rule');
/** Path shapes whose rule is kept per policy. */
const PATH_RULES_KEPT = 4096;

/**
 * Field rules by name (SQL columns, JSON paths) plus detectors for everything else. The caller
 * resolves the rule per column/field; values without a rule are scanned by the detectors.
 */
export class MaskingPolicy {
  readonly detection: DetectionProfile;
  /**
   * What this policy was made from, so another thread can make the same policy (a worker that
   * masks large values off the event loop). Holds the HMAC key: never log or record it.
   */
  readonly spec: MaskingPolicySpec;
  readonly #columns: readonly CompiledColumnRule[];
  readonly #paths: readonly CompiledPathRule[];
  /** Whether a path rule names an array index: then indices are part of a path's shape. */
  readonly #indexSensitive: boolean;
  /** forJsonPath's answer by path shape (bounded: cleared when full). */
  readonly #pathRules = new Map<string, FieldRule | typeof NO_RULE>();

  private constructor(spec: MaskingPolicySpec) {
    this.spec = spec;
    const tokenizer = spec.hmacKey ? new HmacTokenizer(spec.hmacKey) : undefined;
    const fieldRule = (s: FieldRuleSpec): FieldRule => {
      if (!s.id) throw new MaskingError('MASKING_INVALID_OPTION', 'field rule needs an id');
      const fn = compileStrategy(s.strategy, tokenizer);
      return { id: s.id, strategy: s.strategy, mask: (value) => fn(value, { label: s.id }) };
    };
    this.#columns = (spec.columns ?? []).map((c) => ({ pattern: new ColumnPattern(c.column), rule: fieldRule(c) }));
    this.#paths = (spec.jsonPaths ?? []).map((p) => {
      const steps = parseJsonPath(p.path);
      return { steps, specificity: jsonPathSpecificity(steps), rule: fieldRule(p) };
    });
    this.#indexSensitive = this.#paths.some((p) => p.steps.some((step) => step.kind === 'index'));
    this.detection = new DetectionProfile(tokenizer ? { ...spec.detection, tokenizer } : { ...spec.detection });
  }

  static create(spec: MaskingPolicySpec = {}): MaskingPolicy {
    return new MaskingPolicy(spec);
  }

  /** The most specific column rule for `schema.table.column` (ties: first declared). */
  forColumn(qualifiedName: string): FieldRule | undefined {
    let best: CompiledColumnRule | undefined;
    for (const c of this.#columns) if (c.pattern.matches(qualifiedName) && (!best || c.pattern.specificity > best.pattern.specificity)) best = c;
    return best?.rule;
  }

  /** The most specific JSON-path rule for a concrete path (`$.items[2].card` or its segments). */
  forJsonPath(path: string | readonly JsonPathSegment[]): FieldRule | undefined {
    const segments = typeof path === 'string' ? concreteJsonPath(path) : path;
    if (this.#paths.length === 0) return undefined;
    // Matched once per path shape: every row of a JSON array asks for the same paths but its own index.
    const key = this.#shapeKey(segments);
    const cached = this.#pathRules.get(key);
    if (cached !== undefined) return cached === NO_RULE ? undefined : cached;
    let best: CompiledPathRule | undefined;
    for (const p of this.#paths) if (jsonPathMatches(p.steps, segments) && (!best || p.specificity > best.specificity)) best = p;
    if (this.#pathRules.size >= PATH_RULES_KEPT) this.#pathRules.clear();
    this.#pathRules.set(key, best?.rule ?? NO_RULE);
    return best?.rule;
  }

  /**
   * What a rule lookup depends on in a path: each key, and of each array index only that it is
   * one, unless a rule names a specific index (`$.items[0]`). Keys are length-prefixed, so no two
   * paths share a shape by accident.
   */
  #shapeKey(segments: readonly JsonPathSegment[]): string {
    let key = '';
    for (const segment of segments) key += typeof segment === 'number' ? (this.#indexSensitive ? `[${segment}]` : '[]') : `.${segment.length}:${segment}`;
    return key;
  }

  /** Whether any JSON-path rule is configured (adapters then mask JSON values by path, not only by detectors). */
  get hasJsonPathRules(): boolean {
    return this.#paths.length > 0;
  }

  /**
   * Masks JSON text (a json/jsonb value, an HTTP or MCP body): path rules replace the values they
   * match, the detectors scan every other string and long number, and the rest of the text is kept
   * byte for byte. Never throws on the input: `invalid` means not JSON (scan it as text instead);
   * `refused` means beyond the size or depth limit, and its `text` replaces the whole document.
   */
  maskJsonText(text: string, options: JsonTextMaskOptions & { readonly findings?: MaskingFindings } = {}): JsonTextMaskResult & { readonly findings: MaskingFindings } {
    const findings = options.findings ?? new MaskingFindings();
    return { ...maskJsonTextWith(this.#jsonTarget, text, findings, options), findings };
  }

  /**
   * A streaming JSON masker with the same rules as maskJsonText (path rules, detectors on other
   * strings and long numbers) for documents of any size: memory bounded by the largest value, the
   * output re-serialised compact. Throws JsonStreamError on input that is not one JSON document.
   */
  createJsonStreamMasker(options: JsonStreamMaskOptions = {}): JsonStreamMasker {
    return createJsonStreamMasker(this.#jsonTarget, options);
  }

  get #jsonTarget(): JsonTextMaskTarget {
    const indexSensitive = this.#indexSensitive;
    return {
      ruleFor: (path) => (this.#paths.length === 0 ? undefined : this.forJsonPath(path)),
      scan: (value, field, into) => this.maskText(value, field, into),
      indexSensitive,
    };
  }

  /** Masks free text with the detectors; findings are reported under `field`. */
  maskText(text: string, field: string, findings: MaskingFindings = new MaskingFindings()): string {
    return maskText(text, { profile: this.detection, location: field, findings }).text;
  }

  createStreamMasker(location: string, findings?: MaskingFindings): StreamMasker {
    return createStreamMasker(findings ? { profile: this.detection, location, findings } : { profile: this.detection, location });
  }

  /**
   * Masks one SQL result cell: the column's rule if any (whole value), else the detectors over
   * its text. Non-string scalars are scanned as text only when a rule or detector could apply.
   */
  maskCell(qualifiedColumn: string, value: unknown, findings: MaskingFindings): unknown {
    const rule = this.forColumn(qualifiedColumn);
    if (value === null || value === undefined) return value;
    if (rule) {
      if (typeof value === 'object') return this.#maskTree(value, rule, qualifiedColumn, findings);
      findings.add(qualifiedColumn, rule.id);
      return rule.mask(String(value));
    }
    return this.#scanScalar(value, qualifiedColumn, findings);
  }

  /** Masks a result row `{column: value}` of `schema.table`. */
  maskRow(schemaTable: string, row: Readonly<Record<string, unknown>>, findings: MaskingFindings): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(row)) out[column] = this.maskCell(`${schemaTable}.${column}`, value, findings);
    return out;
  }

  /**
   * Walks a parsed JSON value: nodes matched by a path rule are masked whole (every scalar leaf
   * under an object/array), other strings (and long numbers) are scanned by the detectors.
   * Returns a new value; object keys are kept. Findings use paths with indices as `[*]`.
   */
  maskJson(value: unknown, options: JsonMaskOptions = {}): { value: unknown; findings: MaskingFindings } {
    const findings = options.findings ?? new MaskingFindings();
    const prefix = options.location ?? '';
    const walk = (node: unknown, path: JsonPathSegment[]): unknown => {
      const field = (): string => prefix + formatJsonPath(path, { wildcardIndices: true });
      const rule = this.forJsonPath(path);
      if (rule) return node !== null && typeof node === 'object' ? this.#maskTree(node, rule, field(), findings) : this.#maskScalar(node, rule, field(), findings);
      if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
      if (node !== null && typeof node === 'object') {
        return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
      }
      return this.#scanScalar(node, field(), findings);
    };
    return { value: walk(value, []), findings };
  }

  #maskScalar(node: unknown, rule: FieldRule, field: string, findings: MaskingFindings): unknown {
    if (node === null || node === undefined || typeof node === 'boolean') return node;
    findings.add(field, rule.id);
    return rule.mask(String(node));
  }

  #maskTree(node: object, rule: FieldRule, field: string, findings: MaskingFindings): unknown {
    if (Array.isArray(node)) return node.map((item) => (item !== null && typeof item === 'object' ? this.#maskTree(item, rule, field, findings) : this.#maskScalar(item, rule, field, findings)));
    // fromEntries defines own properties, so a `__proto__` member stays a member.
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, v !== null && typeof v === 'object' ? this.#maskTree(v, rule, field, findings) : this.#maskScalar(v, rule, field, findings)]));
  }

  #scanScalar(node: unknown, field: string, findings: MaskingFindings): unknown {
    if (typeof node === 'string') return this.maskText(node, field, findings);
    // JSON numbers can carry card numbers or SSNs; short numbers cannot match any detector.
    if ((typeof node === 'number' || typeof node === 'bigint') && String(node).length >= 9) {
      const text = String(node);
      const masked = this.maskText(text, field, findings);
      return masked === text ? node : masked;
    }
    if (typeof node === 'object' && node !== null) return this.maskJson(node, { findings, location: field }).value;
    return node;
  }
}

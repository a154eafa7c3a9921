// Conditions on values, shared by the HTTP language (query, headers, JSON body) and the MCP
// language (tool arguments): JSON paths select values (the JSONPath subset of
// @custodian/masking), a condition tests them. Walks are iterative and bounded, so hostile JSON
// (deep nesting, huge arrays) costs bounded work and never overflows the stack.
import { posix } from 'node:path';
import { MaskingError, parseJsonPath, type JsonPathPatternStep } from '@custodian/masking';
import { NamePatternList, PolicyMatchError, type JsonScalar, type TextCondition, type ValueCondition } from '@custodian/policy';

/** Deepest JSON nesting a language accepts; deeper documents are not classified (fail closed). */
export const MAX_JSON_DEPTH = 64;
/** Most JSON nodes (values of any kind) a language accepts in one document. */
export const MAX_JSON_NODES = 100_000;

/** Most steps one path selection may take; past it the selection throws (the engine then blocks). */
const MAX_SELECTION_STEPS = 2_000_000;

export type JsonShapeProblem = 'too-deep' | 'too-many-nodes' | 'not-json';

/** Why a parsed value is outside what conditions evaluate, or undefined when it is fine. */
export function jsonShapeProblem(root: unknown): JsonShapeProblem | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
  let nodes = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (++nodes > MAX_JSON_NODES) return 'too-many-nodes';
    if (value === null || typeof value === 'string' || typeof value === 'boolean') continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return 'not-json';
      continue;
    }
    if (typeof value !== 'object') return 'not-json';
    if (depth >= MAX_JSON_DEPTH) return 'too-deep';
    const children = Array.isArray(value) ? value : isPlainObject(value) ? Object.values(value) : undefined;
    if (children === undefined) return 'not-json';
    for (const child of children) stack.push({ value: child, depth: depth + 1 });
  }
  return undefined;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** A compiled JSON path (`$.a.b`, `$.items[*].x`, `$..token`, `$['odd key']`). */
export class JsonPathSelector {
  private readonly steps: readonly JsonPathPatternStep[];

  /** Throws PolicyMatchError (keys: `[path]`) for a path outside the supported subset. */
  constructor(readonly path: string) {
    try {
      this.steps = parseJsonPath(path);
    } catch (error) {
      if (error instanceof MaskingError) throw new PolicyMatchError([path], `is not a supported JSON path (${error.message.replace(/^invalid JSON path "[^"]*": /, '')})`);
      throw error;
    }
  }

  /**
   * Every value the path selects in `root` (which must have passed jsonShapeProblem). Order is
   * unspecified; a value reached twice (`$..a..b`) may appear twice.
   */
  select(root: unknown): unknown[] {
    const out: unknown[] = [];
    const stack: { node: unknown; step: number }[] = [{ node: root, step: 0 }];
    let budget = MAX_SELECTION_STEPS;
    while (stack.length > 0) {
      // Repeated `..` can revisit nodes; bound the work rather than trust the document.
      if (--budget < 0) throw new RangeError(`JSON path ${this.path} needs more than ${MAX_SELECTION_STEPS} steps on this document`);
      const { node, step } = stack.pop()!;
      if (step === this.steps.length) {
        out.push(node);
        continue;
      }
      const current = this.steps[step]!;
      switch (current.kind) {
        case 'key':
          if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.hasOwn(node, current.key)) {
            stack.push({ node: (node as Record<string, unknown>)[current.key], step: step + 1 });
          }
          break;
        case 'index':
          if (Array.isArray(node) && current.index < node.length) stack.push({ node: node[current.index], step: step + 1 });
          break;
        case 'wildcard':
          for (const child of childrenOf(node)) stack.push({ node: child, step: step + 1 });
          break;
        case 'descendant':
          // `..`: the next step applies here and at every depth below.
          stack.push({ node, step: step + 1 });
          for (const child of childrenOf(node)) stack.push({ node: child, step });
          break;
      }
    }
    return out;
  }
}

function childrenOf(node: unknown): readonly unknown[] {
  if (Array.isArray(node)) return node;
  if (node !== null && typeof node === 'object') return Object.values(node);
  return [];
}

/** One condition (see ValueCondition), compiled. */
export class ValueConditionMatcher {
  private readonly equals: { readonly value: JsonScalar } | undefined;
  private readonly oneOf: readonly JsonScalar[] | undefined;
  private readonly pattern: NamePatternList | undefined;
  private readonly exists: boolean | undefined;
  private readonly quantifier: 'all' | 'any';

  constructor(condition: ValueCondition) {
    this.equals = condition.equals === undefined ? undefined : { value: condition.equals };
    this.oneOf = condition.oneOf;
    this.pattern = condition.pattern === undefined ? undefined : new NamePatternList(typeof condition.pattern === 'string' ? [condition.pattern] : condition.pattern);
    this.exists = condition.exists;
    this.quantifier = condition.values ?? 'all';
  }

  /** A header or query condition: a glob or list of globs is `{ pattern }`. */
  static ofText(condition: TextCondition): ValueConditionMatcher {
    return new ValueConditionMatcher(typeof condition === 'string' || Array.isArray(condition) ? { pattern: condition as string | readonly string[] } : (condition as ValueCondition));
  }

  /** Whether the values selected (by a path, a header name, a parameter name) satisfy the condition. */
  test(values: readonly unknown[]): boolean {
    if (this.exists !== undefined && this.exists !== values.length > 0) return false;
    if (this.equals === undefined && this.oneOf === undefined && this.pattern === undefined) return true;
    return this.quantifier === 'all' ? values.length > 0 && values.every((value) => this.passes(value)) : values.some((value) => this.passes(value));
  }

  private passes(value: unknown): boolean {
    if (this.equals !== undefined && value !== this.equals.value) return false;
    if (this.oneOf !== undefined && !this.oneOf.includes(value as JsonScalar)) return false;
    if (this.pattern !== undefined && (typeof value !== 'string' || !this.pattern.matches(withoutDotSegments(value)))) return false;
    return true;
  }
}

const DOT_SEGMENT = /(^|\/)\.{1,2}(\/|$)|\/\//;

/**
 * A value with `.`/`..` segments or doubled slashes is matched as the path it resolves to, so
 * `/srv/reports/../../etc/passwd` is not under `/srv/reports/*` and `/tmp/../etc/shadow` is under
 * `/etc/*`: a pattern names where the value leads, not how it is spelled. (Symbolic links are the
 * server's to resolve; a pattern cannot see them.)
 */
export function withoutDotSegments(value: string): string {
  return DOT_SEGMENT.test(value) ? posix.normalize(value) : value;
}

/** `path → condition` over one JSON document; every entry must hold. */
export class JsonConditions {
  private readonly entries: readonly { readonly selector: JsonPathSelector; readonly condition: ValueConditionMatcher }[];

  /** `key`: the block's key holding the conditions (`body`, `arguments`), for errors. */
  constructor(conditions: Readonly<Record<string, ValueCondition>>, key: string) {
    this.entries = Object.entries(conditions).map(([path, condition]) => {
      try {
        return { selector: new JsonPathSelector(path), condition: new ValueConditionMatcher(condition) };
      } catch (error) {
        if (error instanceof PolicyMatchError) throw new PolicyMatchError([key, ...error.keys], error.message);
        throw error;
      }
    });
  }

  /** `document` undefined (absent, unparseable): no path selects anything. */
  matches(document: unknown): boolean {
    return this.entries.every(({ selector, condition }) => condition.test(document === undefined ? [] : selector.select(document)));
  }
}

/** `name → condition` over multi-valued text fields (headers, query parameters). */
export class TextConditions {
  private readonly entries: readonly { readonly name: string; readonly condition: ValueConditionMatcher }[];

  constructor(
    conditions: Readonly<Record<string, TextCondition>>,
    private readonly normaliseName: (name: string) => string = (name) => name,
  ) {
    this.entries = Object.entries(conditions).map(([name, condition]) => ({ name: normaliseName(name), condition: ValueConditionMatcher.ofText(condition) }));
  }

  matches(fields: ReadonlyMap<string, readonly string[]>): boolean {
    return this.entries.every(({ name, condition }) => condition.test(fields.get(name) ?? []));
  }
}

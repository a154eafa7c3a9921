import { MaskingError } from './errors.js';

/** A concrete location in a JSON document: object keys and array indices from the root. */
export type JsonPathSegment = string | number;

/** Pattern step: a key, an index, any one step (`*`, `[*]`) or any number of steps (`..`). */
export type JsonPathPatternStep =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'wildcard' }
  | { readonly kind: 'descendant' };

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

function fail(path: string, why: string): never {
  throw new MaskingError('MASKING_INVALID_PATTERN', `invalid JSON path ${JSON.stringify(path)}: ${why}`);
}

/**
 * Parses the subset of JSONPath used for field rules: `$`, `.name`, `['name']`, `["name"]`,
 * `[3]`, `[*]`, `.*` and `..name` (recursive descent). Filters and slices are not supported.
 */
export function parseJsonPath(path: string): JsonPathPatternStep[] {
  if (!path.startsWith('$')) fail(path, 'must start with $');
  const steps: JsonPathPatternStep[] = [];
  let i = 1;
  while (i < path.length) {
    const ch = path[i];
    if (ch === '.') {
      if (path[i + 1] === '.') {
        steps.push({ kind: 'descendant' });
        i += 2;
        if (path[i] === '[') continue;
      } else {
        i += 1;
      }
      const m = /^(\*|[A-Za-z_$][A-Za-z0-9_$-]*)/.exec(path.slice(i));
      if (!m) fail(path, `expected a name at offset ${i}`);
      const name = m[1] as string;
      steps.push(name === '*' ? { kind: 'wildcard' } : { kind: 'key', key: name });
      i += name.length;
    } else if (ch === '[') {
      const rest = path.slice(i);
      const m = /^\[(?:(\*)|(\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]/.exec(rest);
      if (!m) fail(path, `bad bracket at offset ${i}`);
      if (m[1]) steps.push({ kind: 'wildcard' });
      else if (m[2] !== undefined) steps.push({ kind: 'index', index: Number(m[2]) });
      else steps.push({ kind: 'key', key: (m[3] ?? m[4] ?? '').replace(/\\(.)/g, '$1') });
      i += m[0].length;
    } else {
      fail(path, `unexpected ${JSON.stringify(ch)} at offset ${i}`);
    }
  }
  return steps;
}

/** Concrete path of a node, e.g. `$.user.ssn` or `$.items[2].card`. */
export function formatJsonPath(segments: readonly JsonPathSegment[], options: { readonly wildcardIndices?: boolean } = {}): string {
  let out = '$';
  for (const s of segments) {
    if (typeof s === 'number') out += options.wildcardIndices ? '[*]' : `[${s}]`;
    else out += IDENTIFIER.test(s) ? `.${s}` : `['${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
  }
  return out;
}

/** Converts a concrete path string (no wildcards) into segments. */
export function concreteJsonPath(path: string): JsonPathSegment[] {
  return parseJsonPath(path).map((step) => {
    if (step.kind === 'key') return step.key;
    if (step.kind === 'index') return step.index;
    return fail(path, 'a concrete path has no wildcards');
  });
}

export function jsonPathMatches(pattern: readonly JsonPathPatternStep[], path: readonly JsonPathSegment[]): boolean {
  const match = (pi: number, si: number): boolean => {
    if (pi === pattern.length) return si === path.length;
    const step = pattern[pi] as JsonPathPatternStep;
    if (step.kind === 'descendant') {
      for (let k = si; k <= path.length; k++) if (match(pi + 1, k)) return true;
      return false;
    }
    if (si === path.length) return false;
    const seg = path[si] as JsonPathSegment;
    const ok =
      step.kind === 'wildcard' ||
      (step.kind === 'key' && typeof seg === 'string' && seg === step.key) ||
      (step.kind === 'index' && typeof seg === 'number' && seg === step.index);
    return ok && match(pi + 1, si + 1);
  };
  return match(0, 0);
}

/** Literal steps count for specificity: `$.user.ssn` beats `$..ssn` beats `$.*.*`. */
export function jsonPathSpecificity(pattern: readonly JsonPathPatternStep[]): number {
  return pattern.reduce((n, s) => n + (s.kind === 'key' || s.kind === 'index' ? 2 : s.kind === 'wildcard' ? 1 : 0), 0);
}

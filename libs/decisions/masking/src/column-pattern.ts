import { MaskingError } from './errors.js';

/**
 * `schema.table.column` patterns with `*` globs per segment (`*.users.email`, `public.*.ssn`,
 * `*.*.card_*`). A pattern with fewer segments is matched against the rightmost segments
 * (`users.email` matches `public.users.email`). SQL identifiers compare case-insensitively.
 */
export class ColumnPattern {
  readonly #segments: readonly RegExp[];
  readonly specificity: number;
  readonly pattern: string;

  constructor(pattern: string) {
    this.pattern = pattern;
    const parts = pattern.split('.');
    if (parts.length === 0 || parts.length > 4 || parts.some((p) => p.length === 0)) {
      throw new MaskingError('MASKING_INVALID_PATTERN', `invalid column pattern ${JSON.stringify(pattern)}`);
    }
    this.#segments = parts.map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`, 'i'));
    this.specificity = parts.reduce((n, p) => n + (p === '*' ? 0 : p.includes('*') ? 1 : 2), 0);
  }

  matches(qualifiedName: string): boolean {
    const parts = qualifiedName.split('.');
    if (parts.length < this.#segments.length) return false;
    const offset = parts.length - this.#segments.length;
    return this.#segments.every((re, i) => re.test(parts[offset + i] as string));
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

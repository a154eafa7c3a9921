import type { DataMasked } from '@custodian/event-contracts';

/** One row of a masking summary: where, which rule, which detector, how many. Never the value. */
export interface MaskingFinding {
  /** Column name, JSON path (indices as `[*]`) or stream location. */
  readonly field: string;
  /** Masking rule id (a named field rule, or `detector:<id>` for detector-driven masking). */
  readonly rule: string;
  /** Detector that recognised the value; absent for field rules applied by name. */
  readonly detector?: string;
  readonly count: number;
}

export type DataMaskedMaskings = DataMasked['maskings'];

/** Counts maskings per (field, rule, detector); the caller turns a non-empty summary into `data.masked`. */
export class MaskingFindings {
  /** field → rule → detector → row: no key string built per masking (this runs once per masked value). */
  readonly #counts = new Map<string, Map<string, Map<string | undefined, { field: string; rule: string; detector: string | undefined; count: number }>>>();

  add(field: string, rule: string, detector?: string, count = 1): void {
    let byRule = this.#counts.get(field);
    if (!byRule) this.#counts.set(field, (byRule = new Map()));
    let byDetector = byRule.get(rule);
    if (!byDetector) byRule.set(rule, (byDetector = new Map()));
    const row = byDetector.get(detector);
    if (row) row.count += count;
    else byDetector.set(detector, { field, rule, detector, count });
  }

  merge(other: MaskingFindings): void {
    for (const f of other.toArray()) this.add(f.field, f.rule, f.detector, f.count);
  }

  get total(): number {
    let n = 0;
    for (const row of this.#rows()) n += row.count;
    return n;
  }

  *#rows(): Generator<{ field: string; rule: string; detector: string | undefined; count: number }> {
    for (const byRule of this.#counts.values()) for (const byDetector of byRule.values()) yield* byDetector.values();
  }

  get isEmpty(): boolean {
    return this.#counts.size === 0;
  }

  toArray(): MaskingFinding[] {
    return [...this.#rows()]
      .map(({ field, rule, detector, count }) => (detector === undefined ? { field, rule, count } : { field, rule, detector, count }))
      .sort((a, b) => a.field.localeCompare(b.field) || a.rule.localeCompare(b.rule) || (a.detector ?? '').localeCompare(b.detector ?? ''));
  }

  /**
   * The `maskings` array of a `data.masked` v1 payload, or `undefined` when nothing was masked
   * (the schema requires at least one entry, and no event should be emitted then).
   */
  toDataMaskedMaskings(): DataMaskedMaskings | undefined {
    const rows = this.toArray();
    return rows.length === 0 ? undefined : (rows as unknown as DataMaskedMaskings);
  }
}

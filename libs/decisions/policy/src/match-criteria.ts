// Criteria shapes several languages share: flag sets ({ any, all, none }) and name sets
// ({ only, any }). Each language compiles its own block with these.
import type { NamePatternList } from './name-pattern.js';
import type { FlagMatch, NameSet } from './policy-document.js';

/** `flags`: a list means any; `{ any, all, none }` must all hold. */
export class FlagCriterion {
  private readonly any: readonly string[] | undefined;
  private readonly all: readonly string[] | undefined;
  private readonly none: readonly string[] | undefined;

  constructor(match: FlagMatch) {
    const normalised = isList(match) ? { any: match } : match;
    this.any = normalised.any;
    this.all = normalised.all;
    this.none = normalised.none;
  }

  /** `undefined` (no criterion) matches every unit; see FlagCriterion.names for the guard. */
  static of(match: FlagMatch | undefined): FlagCriterion | undefined {
    return match === undefined ? undefined : new FlagCriterion(match);
  }

  matches(flags: readonly string[]): boolean {
    if (this.any !== undefined && !this.any.some((flag) => flags.includes(flag))) return false;
    if (this.all !== undefined && !this.all.every((flag) => flags.includes(flag))) return false;
    if (this.none !== undefined && this.none.some((flag) => flags.includes(flag))) return false;
    return true;
  }

  /** Named in `any` or `all`: the rule is about units carrying this flag (a `none` is not). */
  names(flag: string): boolean {
    return this.any?.includes(flag) === true || this.all?.includes(flag) === true;
  }
}

/**
 * `only`/`any` name criteria: `only` (or a plain list) means every name must match one of the
 * globs (vacuously true for none), `any` that at least one does. Each name may have several
 * candidate spellings (an unqualified SQL relation); `only` needs all of them to pass, `any` one.
 */
export class NameCriterion {
  private readonly only: NamePatternList | undefined;
  private readonly any: NamePatternList | undefined;

  constructor(set: NameSet, patterns: (sources: readonly string[]) => NamePatternList) {
    const normalised = isList(set) ? { only: set } : set;
    this.only = normalised.only === undefined ? undefined : patterns(normalised.only);
    this.any = normalised.any === undefined ? undefined : patterns(normalised.any);
  }

  matches(names: readonly (readonly string[])[]): boolean {
    const { only, any } = this;
    if (only !== undefined && !names.every((candidates) => candidates.every((name) => only.matches(name)))) return false;
    if (any !== undefined && !names.some((candidates) => candidates.some((name) => any.matches(name)))) return false;
    return true;
  }
}

export function isList<T>(value: readonly T[] | object): value is readonly T[] {
  return Array.isArray(value);
}

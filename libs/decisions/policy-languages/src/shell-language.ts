// Shell command lines through the policy-language interface: every program a line would run,
// found by tree-sitter-bash (@custodian/shell-classification), matched by program and flags.
import { HttpPathPattern } from './http-language.js';
import { withoutDotSegments } from './value-conditions.js';
import { FlagCriterion, NamePattern, protocolsOfLanguage, type PolicyLanguage, type PolicyUnit, type ShellMatch, type UnitMatcher } from '@custodian/policy';
import {
  classifyShellSync,
  loadShellClassifier,
  type ShellClassification,
  type ShellClassifyOptions,
  type ShellFlag,
  type ShellProgram,
} from '@custodian/shell-classification';

export interface ShellPolicyInput extends ShellClassifyOptions {
  readonly command: string;
}

/** One program of the command line; `flags` are those of the whole line. */
export interface ShellUnit extends PolicyUnit {
  readonly program: ShellProgram;
}

/** Shell flags that only a rule naming them (in `shell.flags` any/all) can allow or hold. */
export const GUARDED_SHELL_FLAGS: readonly ShellFlag[] = ['dynamic-command', 'dynamic-code', 'shell-from-stdin'];

const MAX_SUMMARY_PROGRAMS = 50;

export const shellLanguage: PolicyLanguage<'shell', ShellPolicyInput, ShellClassification, ShellUnit> = {
  name: 'shell',
  protocols: protocolsOfLanguage('shell'),
  unitNoun: 'program',
  guardedFlags: GUARDED_SHELL_FLAGS,
  // Assignments alone (`PATH=/evil`) run nothing but change what later commands resolve to.
  whenEmpty: { decision: 'deny', reason: 'no program to decide (default deny)' },
  ready: loadShellClassifier,
  classify: ({ command, ...options }) => classifyShellSync(command, options),
  units: (classification) =>
    classification.ok
      ? { ok: true, units: classification.programs.map((program) => ({ command: program.name, flags: classification.flags, program })) }
      : { ok: false, code: classification.error.code, ...(classification.error.position === undefined ? {} : { position: classification.error.position }) },
  compileMatch: (match) => new ShellMatcher(match),
  summary: (classification) =>
    classification.ok
      ? { ok: true, programs: classification.programs.slice(0, MAX_SUMMARY_PROGRAMS).map((program) => program.name), flags: classification.flags }
      : { ok: false, error: classification.error.code },
};

class ShellMatcher implements UnitMatcher<ShellUnit> {
  private readonly programs: readonly { readonly pattern: NamePattern; readonly byPath: boolean }[] | undefined;
  private readonly flags: FlagCriterion | undefined;
  private readonly arguments: readonly HttpPathPattern[] | undefined;

  constructor(match: ShellMatch) {
    this.arguments = match.arguments?.map((source) => new HttpPathPattern(source));
    // A glob with `/` matches the path as written, `*` not crossing `/`; otherwise the basename.
    this.programs = match.programs?.map((source) =>
      source.includes('/') ? { pattern: new NamePattern(source, '/'), byPath: true } : { pattern: new NamePattern(source), byPath: false },
    );
    this.flags = FlagCriterion.of(match.flags);
  }

  matches({ program, flags }: ShellUnit): boolean {
    if (this.programs !== undefined && !this.programs.some(({ pattern, byPath }) => pattern.matches(byPath ? program.path : program.name))) return false;
    if (this.arguments !== undefined && !program.args.some((arg) => this.arguments!.some((pattern) => pattern.matches(withoutDotSegments(arg))))) return false;
    return this.flags === undefined || this.flags.matches(flags);
  }

  names(flag: string): boolean {
    return this.flags?.names(flag) === true;
  }
}

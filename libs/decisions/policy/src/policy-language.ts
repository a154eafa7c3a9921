// The one interface every policy language implements (SQL, shell, HTTP, MCP, LLM; the plugins
// live in @custodian/policy-languages), and the one table saying which language decides the
// commands of which protocol. The engine (CompiledPolicy) knows nothing else about a language.
import type { Protocol } from '@custodian/event-contracts';
import type { LanguageMatches, PolicyDefaults } from './policy-document.js';

export type PolicyLanguageName = keyof LanguageMatches;

export const POLICY_LANGUAGE_NAMES: readonly PolicyLanguageName[] = ['sql', 'shell', 'http', 'mcp', 'llm'];

/**
 * Which language decides the commands of each protocol. A rule whose match block is for one
 * language never authorizes a connection of a protocol another language serves.
 */
export const PROTOCOL_LANGUAGES: Readonly<Record<Protocol, PolicyLanguageName>> = {
  postgres: 'sql',
  ssh: 'shell',
  kubernetes: 'shell',
  http: 'http',
  anthropic: 'llm',
  mcp: 'mcp',
};

/** The language that decides the commands of a protocol. */
export function languageOfProtocol(protocol: Protocol): PolicyLanguageName {
  return PROTOCOL_LANGUAGES[protocol];
}

/** The protocols a language serves, in table order. */
export function protocolsOfLanguage(language: PolicyLanguageName): readonly Protocol[] {
  return (Object.keys(PROTOCOL_LANGUAGES) as Protocol[]).filter((protocol) => PROTOCOL_LANGUAGES[protocol] === language);
}

/** One unit a decision is made for: a SQL statement, a program, a request, a tool call, a message. */
export interface PolicyUnit {
  /** What a reader calls it: `SELECT`, `rm`, `POST /v1/orders`, `tools/call write_file`, the model. */
  readonly command: string;
  /** A language's own category (SQL: read, write, ddl…); shown with the unit. */
  readonly kind?: string;
  /** The unit's flags; the language's guarded flags among them need a rule that names them. */
  readonly flags: readonly string[];
}

/** The units of a classification, or why there are none to decide (the input is blocked). */
export type PolicyUnits<Unit extends PolicyUnit> =
  | { readonly ok: true; readonly units: readonly Unit[] }
  /** `code` only: a parser's message can quote the input (literals, secrets). */
  | { readonly ok: false; readonly code: string; readonly position?: number };

/** A rule's `match.<language>` block, compiled once. */
export interface UnitMatcher<Unit extends PolicyUnit> {
  matches(unit: Unit): boolean;
  /** Whether the block names the flag in `flags.any` / `flags.all` (or an equivalent criterion), so it may allow or hold it. */
  names(flag: string): boolean;
}

/** What a match block is compiled with besides itself. */
export interface MatchCompileContext {
  readonly defaults: PolicyDefaults;
}

/**
 * A policy language. Decisions are synchronous once `ready()` has resolved (parsers are WASM
 * modules loaded once per process). `classify` never throws on hostile input: a failure is a
 * classification whose `units` is `{ ok: false, code }`, and the engine blocks it (fail closed).
 */
export interface PolicyLanguage<Name extends PolicyLanguageName = PolicyLanguageName, Input = never, Classification = unknown, Unit extends PolicyUnit = PolicyUnit> {
  readonly name: Name;
  /** The protocols whose commands it decides (agrees with PROTOCOL_LANGUAGES). */
  readonly protocols: readonly Protocol[];
  /** What one unit is called in reasons: `statement`, `program`, `request`, `tool call`, `message`. */
  readonly unitNoun: string;
  /** Flags only a non-block rule that names them can allow or hold; otherwise the built-in guard blocks. */
  readonly guardedFlags: readonly string[];
  /**
   * Input with no unit to decide: `allow-if-unconditional` allows it when an `allow` rule with no
   * language block covers the identity and connection (SQL's empty query, a driver's liveness
   * probe); `deny` applies the default deny with `reason` (a shell line of assignments only).
   */
  readonly whenEmpty: { readonly decision: 'allow-if-unconditional' | 'deny'; readonly reason: string };
  /** Loads what classification needs (parsers, detectors). Idempotent. */
  ready(): Promise<void>;
  classify(input: Input): Classification;
  units(classification: Classification): PolicyUnits<Unit>;
  /** Compiles a rule's block; throws PolicyMatchError for a criterion that cannot be compiled. */
  compileMatch(match: LanguageMatches[Name], context: MatchCompileContext): UnitMatcher<Unit>;
  /** A literal-free description of the classification for `command.issued` (`classification`). */
  summary(classification: Classification): Record<string, unknown>;
}

/**
 * Any language, for registries and options that hold several. Its methods are typed loosely on
 * purpose: call `decide` with a specific language to get typed input and classification.
 */
export interface AnyPolicyLanguage {
  readonly name: PolicyLanguageName;
  readonly protocols: readonly Protocol[];
  readonly unitNoun: string;
  readonly guardedFlags: readonly string[];
  readonly whenEmpty: PolicyLanguage['whenEmpty'];
  ready(): Promise<void>;
  // Method syntax keeps parameters bivariant, so every PolicyLanguage<…> is assignable here.
  classify(input: never): unknown;
  units(classification: never): PolicyUnits<PolicyUnit>;
  compileMatch(match: never, context: MatchCompileContext): UnitMatcher<never>;
  summary(classification: never): Record<string, unknown>;
}

/** A match block criterion that cannot be compiled; `keys` is relative to the block. */
export class PolicyMatchError extends Error {
  override readonly name = 'PolicyMatchError';
  readonly code = 'POLICY_MATCH_INVALID';
  constructor(
    readonly keys: readonly string[],
    message: string,
  ) {
    super(message);
  }
}

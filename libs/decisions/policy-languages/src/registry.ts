// The five policy languages, by name, and the one that decides each protocol's commands
// (PROTOCOL_LANGUAGES in @custodian/policy is the table).
import type { Protocol } from '@custodian/event-contracts';
import { PROTOCOL_LANGUAGES, type AnyPolicyLanguage } from '@custodian/policy';
import { httpLanguage } from './http-language.js';
import { llmLanguage } from './llm-language.js';
import { mcpLanguage } from './mcp-language.js';
import { shellLanguage } from './shell-language.js';
import { sqlLanguage } from './sql-language.js';

export const POLICY_LANGUAGES = {
  sql: sqlLanguage,
  shell: shellLanguage,
  http: httpLanguage,
  mcp: mcpLanguage,
  llm: llmLanguage,
} as const;

export type PolicyLanguages = typeof POLICY_LANGUAGES;

/** Every language, e.g. for `ParsePolicyOptions.languages` / `PolicyWatcherOptions.languages`. */
export const ALL_POLICY_LANGUAGES: readonly AnyPolicyLanguage[] = Object.values(POLICY_LANGUAGES);

/** The language that decides the commands of a protocol. */
export function languageFor<P extends Protocol>(protocol: P): PolicyLanguages[(typeof PROTOCOL_LANGUAGES)[P]] {
  return POLICY_LANGUAGES[PROTOCOL_LANGUAGES[protocol]] as PolicyLanguages[(typeof PROTOCOL_LANGUAGES)[P]];
}

/** Loads every language's parsers and detectors (once per process; idempotent). */
export async function readyPolicyLanguages(languages: readonly AnyPolicyLanguage[] = ALL_POLICY_LANGUAGES): Promise<void> {
  await Promise.all(languages.map((language) => language.ready()));
}

import { SqlClassificationError } from './errors.js';
import { checkedSqlText, DEFAULT_MAX_SQL_LENGTH, loadPostgresParser, scanPostgres } from './postgres-parser.js';

// Normalisation for the command.issued event: the statement's shape without literal values,
// which may be personal data or secrets. libpg-query's own `normalize` keeps literals in utility
// statements (`ALTER SYSTEM SET x = 'v'`, `COPY … PROGRAM 'cmd'`, `DO $$ body $$`) and keeps
// comments, so this works on the PostgreSQL lexer's tokens instead: every string, number, bit
// string and dollar-quoted body becomes `$n`, comments are dropped, whitespace collapses.

const LITERAL_TOKENS = new Set(['SCONST', 'USCONST', 'ICONST', 'FCONST', 'BCONST', 'XCONST']);
const COMMENT_TOKENS = new Set(['C_COMMENT', 'SQL_COMMENT']);

export type SqlNormalization = { ok: true; normalized: string } | { ok: false; error: SqlClassificationError };

export async function normalizeSql(input: string | Uint8Array, options: { maxLength?: number } = {}): Promise<SqlNormalization> {
  await loadPostgresParser();
  return normalizeSqlSync(input, options);
}

/** As normalizeSql, once `loadSqlClassifier()` has resolved. Works on text that lexes but does not parse. */
export function normalizeSqlSync(input: string | Uint8Array, options: { maxLength?: number } = {}): SqlNormalization {
  try {
    const text = checkedSqlText(input, options.maxLength ?? DEFAULT_MAX_SQL_LENGTH);
    return { ok: true, normalized: normalizeCheckedText(text) };
  } catch (error) {
    if (error instanceof SqlClassificationError) return { ok: false, error };
    throw error;
  }
}

export function normalizeCheckedText(text: string): string {
  const tokens = scanPostgres(text);
  const bytes = Buffer.from(text, 'utf8');
  let parameter = highestParameter(tokens.map((token) => token.text));
  let output = '';
  let previousEnd = 0;
  for (const token of tokens) {
    if (COMMENT_TOKENS.has(token.kind)) continue;
    const gap = bytes.subarray(previousEnd, token.start).toString('utf8');
    // Any gap (whitespace or a dropped comment) becomes one space; `DELETE/**/FROM` → `DELETE FROM`.
    if (output !== '' && (gap.length > 0 || previousEnd !== token.start)) output += ' ';
    output += isLiteral(token.kind, token.text) ? `$${(parameter += 1)}` : token.text;
    previousEnd = token.end;
  }
  return output;
}

function isLiteral(kind: string, text: string): boolean {
  // B'…', X'…', U&'…' and N'…' are reported as UNKNOWN tokens; anything quoted with ' is a literal.
  return LITERAL_TOKENS.has(kind) || (kind !== 'IDENT' && text.includes("'"));
}

/** Start numbering after the highest `$n` already in the text, as pg_stat_statements does. */
function highestParameter(texts: string[]): number {
  let highest = 0;
  for (const text of texts) {
    const match = /^\$(\d+)$/.exec(text);
    if (match?.[1] !== undefined) highest = Math.max(highest, Number(match[1]));
  }
  return highest;
}

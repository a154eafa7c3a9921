import { fingerprintSync, loadModule, parseSync, scanSync, SqlError } from 'libpg-query';
import { SqlClassificationError } from './errors.js';

// The real PostgreSQL grammar (libpg-query, PostgreSQL 18, WebAssembly). The module loads once
// per process; the synchronous calls below require `loadPostgresParser()` to have resolved.

let loading: Promise<void> | undefined;
let loaded = false;

export async function loadPostgresParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  await loading;
}

export function isPostgresParserLoaded(): boolean {
  return loaded;
}

function assertLoaded(): void {
  if (!loaded) throw new Error('libpg-query is not loaded: await loadSqlClassifier() first');
}

export const DEFAULT_MAX_SQL_LENGTH = 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** In a `u` regex, a surrogate pair is one code point; only unpaired halves match \p{Cs}. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Turns caller input into text the parser and the server will read identically, or refuses it.
 * The parser receives a C string: a NUL would end it early and hide everything after it from
 * classification (`SELECT 1\0; DROP TABLE t`), so NUL is refused, as are invalid UTF-8 and lone
 * surrogates (which would be replaced by U+FFFD on the way in).
 */
export function checkedSqlText(input: string | Uint8Array, maxLength: number): string {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = utf8.decode(input);
    } catch (cause) {
      throw new SqlClassificationError('SQL_INVALID_INPUT', 'SQL text is not valid UTF-8', undefined, { cause });
    }
  }
  if (text.length > maxLength) {
    throw new SqlClassificationError('SQL_INPUT_TOO_LARGE', `SQL text is ${text.length} characters; the limit is ${maxLength}`);
  }
  const nul = text.indexOf('\u0000');
  if (nul !== -1) throw new SqlClassificationError('SQL_INVALID_INPUT', 'SQL text contains a NUL character', nul);
  if (LONE_SURROGATE.test(text)) throw new SqlClassificationError('SQL_INVALID_INPUT', 'SQL text contains a lone UTF-16 surrogate');
  return text;
}

export interface ParsedSql {
  /** Top-level statements (each `{ NodeType: fields }`), empty for blank input or `;;`. */
  statements: unknown[];
}

export function parsePostgres(text: string): ParsedSql {
  assertLoaded();
  // libpg-query refuses the empty string; PostgreSQL accepts it as an empty query.
  if (text.trim() === '') return { statements: [] };
  let tree: unknown;
  try {
    tree = parseSync(text);
  } catch (cause) {
    if (cause instanceof SqlError) {
      const position = cause.sqlDetails === undefined ? undefined : codePointToUtf16Offset(text, cause.sqlDetails.cursorPosition);
      throw new SqlClassificationError('SQL_PARSE_ERROR', cause.message, position, { cause });
    }
    // Out of memory in the WebAssembly heap, deep recursion and the like: still a refusal.
    throw new SqlClassificationError('SQL_PARSE_ERROR', cause instanceof Error ? cause.message : String(cause), undefined, { cause });
  }
  const stmts = typeof tree === 'object' && tree !== null && 'stmts' in tree && Array.isArray(tree.stmts) ? tree.stmts : [];
  return {
    statements: stmts.map((raw: unknown) => (typeof raw === 'object' && raw !== null && 'stmt' in raw ? raw.stmt : undefined)),
  };
}

export function fingerprintPostgres(text: string): string | null {
  assertLoaded();
  try {
    return text.trim() === '' ? null : fingerprintSync(text);
  } catch {
    return null;
  }
}

export interface SqlToken {
  /** libpg-query token name (`SCONST`, `IDENT`, `C_COMMENT`…; some literal kinds report `UNKNOWN`). */
  kind: string;
  text: string;
  /** UTF-8 byte offsets, as the scanner reports them. */
  start: number;
  end: number;
}

/** The PostgreSQL lexer's tokens; throws SQL_PARSE_ERROR when the text does not even tokenise. */
export function scanPostgres(text: string): SqlToken[] {
  assertLoaded();
  if (text.trim() === '') return [];
  try {
    return scanSync(text).tokens.map((token) => ({ kind: token.tokenName, text: token.text, start: token.start, end: token.end }));
  } catch (cause) {
    // libpg-query 18 reports some lexer errors as text that is not JSON; either way: refused.
    throw new SqlClassificationError('SQL_PARSE_ERROR', 'SQL text could not be tokenised', undefined, { cause });
  }
}

/** PostgreSQL reports positions in characters (code points); JavaScript strings index UTF-16 units. */
function codePointToUtf16Offset(text: string, codePoints: number): number {
  let offset = 0;
  let seen = 0;
  for (const char of text) {
    if (seen >= codePoints) break;
    offset += char.length;
    seen += 1;
  }
  return offset;
}

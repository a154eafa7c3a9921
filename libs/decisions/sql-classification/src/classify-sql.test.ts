import { beforeAll, describe, expect, it } from 'vitest';
import { classifySql, classifySqlSync, loadSqlClassifier, SqlClassificationError, type SqlStatementClassification } from './index.js';

beforeAll(async () => {
  await loadSqlClassifier();
});

describe('classifySql', () => {
  it('describes a simple read fully', async () => {
    const result = await classifySql('SELECT id, email FROM public.users WHERE id = 7');
    expect(result).toMatchObject({
      ok: true,
      kind: 'read',
      multiStatement: false,
      flags: [],
      statements: [{ kind: 'read', command: 'SELECT', nodeType: 'SelectStmt', objects: [{ schema: 'public', name: 'users', access: 'read' }], functions: [] }],
    });
  });

  it('records written columns for INSERT and UPDATE', () => {
    const insert = classifySqlSync("INSERT INTO users (email, name) VALUES ('a', 'b')");
    const update = classifySqlSync("UPDATE users SET email = 'x' WHERE id = 1");
    expect(insert.ok && insert.statements[0]?.objects).toEqual([{ name: 'users', access: 'write', columns: ['email', 'name'] }]);
    expect(update.ok && update.statements[0]?.objects).toEqual([{ name: 'users', access: 'write', columns: ['email'] }]);
  });

  it('returns a typed parse error with the position of the failure', () => {
    const text = 'SELECT 1 FROM t WHERE DEL/**/ETE';
    const result = classifySqlSync(text);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(SqlClassificationError);
    expect(result.error.code).toBe('SQL_PARSE_ERROR');
    expect(result.error.message).toMatch(/syntax error/);
    // `DEL` is read as a column name; the grammar fails at `ETE`.
    expect(result.error.position).toBe(text.indexOf('ETE'));
  });

  it('reports parse error positions in UTF-16 units after non-BMP characters', () => {
    const text = "SELECT '😀😀' FROM WHERE";
    const result = classifySqlSync(text);
    expect(!result.ok && result.error.position).toBe(text.indexOf('WHERE'));
  });

  it('refuses invalid UTF-8 given as bytes and accepts valid bytes', () => {
    const invalid = classifySqlSync(new Uint8Array([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54, 0x20, 0xff, 0xfe]));
    expect(!invalid.ok && invalid.error.code).toBe('SQL_INVALID_INPUT');
    const valid = classifySqlSync(new TextEncoder().encode('DELETE FROM t'));
    expect(valid.ok && valid.kind).toBe('write');
  });

  it('honours a custom length limit', () => {
    const result = classifySqlSync('SELECT 1', { maxLength: 4 });
    expect(!result.ok && result.error.code).toBe('SQL_INPUT_TOO_LARGE');
  });

  it('stays usable after hostile input', () => {
    classifySqlSync(`SELECT ${'('.repeat(50000)}1${')'.repeat(50000)}`);
    classifySqlSync(`SELECT ${'f('.repeat(5000)}1${')'.repeat(5000)}`);
    const after = classifySqlSync('DELETE FROM t');
    expect(after.ok && after.kind).toBe('write');
  });

  it('classifies EXECUTE with statements prepared earlier in the session', () => {
    const prepare = classifySqlSync('PREPARE wipe AS DELETE FROM users');
    expect(prepare.ok).toBe(true);
    if (!prepare.ok) return;
    const prepared = new Map<string, SqlStatementClassification>([['wipe', prepare.statements[0] as SqlStatementClassification]]);
    const execute = classifySqlSync('EXECUTE wipe', { preparedStatements: prepared });
    expect(execute).toMatchObject({ ok: true, kind: 'write', statements: [{ command: 'EXECUTE', objects: [{ name: 'users', access: 'write' }] }] });
    expect(execute.ok && execute.flags).not.toContain('unknown-prepared-statement');
  });

  it('says which prepared statement DEALLOCATE and DISCARD ALL drop, also within one text', () => {
    const named = classifySqlSync('DEALLOCATE PREPARE "Wipe"');
    expect(named.ok && named.statements[0]?.deallocates).toBe('Wipe');
    for (const all of ['DEALLOCATE ALL', 'DISCARD ALL']) {
      const result = classifySqlSync(all);
      expect(result.ok && result.statements[0]?.deallocates).toBe('*');
    }
    const plans = classifySqlSync('DISCARD PLANS');
    expect(plans.ok && plans.statements[0]?.deallocates).toBeUndefined();
    // The session's map still knows `wipe`, but an earlier statement of the same text dropped it.
    const prepare = classifySqlSync('PREPARE wipe AS DELETE FROM users');
    if (!prepare.ok) throw new Error('PREPARE did not classify');
    const prepared = new Map<string, SqlStatementClassification>([['wipe', prepare.statements[0] as SqlStatementClassification]]);
    const dropped = classifySqlSync('DEALLOCATE wipe; EXECUTE wipe', { preparedStatements: prepared });
    expect(dropped.ok && dropped.statements[1]?.flags).toContain('unknown-prepared-statement');
    const droppedAll = classifySqlSync('DISCARD ALL; EXECUTE wipe', { preparedStatements: prepared });
    expect(droppedAll.ok && droppedAll.statements[1]?.flags).toContain('unknown-prepared-statement');
    // The session's own map is never changed by classification.
    expect(prepared.has('wipe')).toBe(true);
  });

  it('gives an unknown statement shape the most privileged kind', async () => {
    // PL/pgSQL assignment nodes never appear at the top level of SQL; simulate an unknown type.
    const { StatementAnalysis } = await import('./statement-analysis.js');
    const unknown = StatementAnalysis.classify({ FutureStmt: { x: 1 } }, new Map());
    expect(unknown).toMatchObject({ kind: 'utility', flags: ['unknown-statement'] });
    const notANode = StatementAnalysis.classify('garbage', new Map());
    expect(notANode).toMatchObject({ kind: 'utility', flags: ['unknown-statement'] });
  });

  it('reports the overall kind as the most privileged statement kind', () => {
    const result = classifySqlSync('SHOW x; BEGIN; INSERT INTO t VALUES (1); GRANT SELECT ON t TO bob; COMMIT');
    expect(result.ok && result.kind).toBe('dcl');
    expect(result.ok && result.statements.map((s) => s.kind)).toEqual(['read', 'transaction', 'write', 'dcl', 'transaction']);
  });

  it('computes a fingerprint that ignores literal values', () => {
    const a = classifySqlSync('SELECT * FROM users WHERE id = 1');
    const b = classifySqlSync('SELECT * FROM users WHERE id = 99');
    const c = classifySqlSync('SELECT * FROM orders WHERE id = 1');
    expect(a.ok && a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.ok && b.ok && a.fingerprint === b.fingerprint).toBe(true);
    expect(a.ok && c.ok && a.fingerprint === c.fingerprint).toBe(false);
  });
});

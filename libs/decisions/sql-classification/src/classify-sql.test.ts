import { beforeAll, describe, expect, it } from 'vitest';
import {
  classifySql,
  classifySqlCachedSync,
  classifySqlSync,
  fingerprintSqlSync,
  loadSqlClassifier,
  SqlClassificationCache,
  SqlClassificationError,
  type SqlStatementClassification,
} from './index.js';

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

  it('computes a fingerprint that ignores literal values, outside the classification', () => {
    const a = fingerprintSqlSync('SELECT * FROM users WHERE id = 1');
    const b = fingerprintSqlSync('SELECT * FROM users WHERE id = 99');
    const c = fingerprintSqlSync('SELECT * FROM orders WHERE id = 1');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(fingerprintSqlSync('SELEC nope')).toBeNull();
    expect('fingerprint' in classifySqlSync('SELECT 1')).toBe(false);
  });
});

describe('classifySqlCachedSync', () => {
  it('keys by the exact text: literals that change the classification never share an entry', () => {
    const cache = new SqlClassificationCache();
    const tautology = classifySqlCachedSync('DELETE FROM orders WHERE 1=1', {}, cache);
    const contradiction = classifySqlCachedSync('DELETE FROM orders WHERE 1=2', {}, cache);
    expect(tautology.ok && tautology.flags).toContain('constant-true-where');
    expect(contradiction.ok && contradiction.flags).not.toContain('constant-true-where');
    expect(cache.size).toBe(2);
    // Hits return the same (frozen) result; nobody can alter it for the next caller.
    const again = classifySqlCachedSync('DELETE FROM orders WHERE 1=1', {}, cache);
    expect(again).toBe(tautology);
    expect(Object.isFrozen(again.ok && again.flags)).toBe(true);
    expect(again).toEqual(classifySqlSync('DELETE FROM orders WHERE 1=1'));
  });

  it('makes the literal-free text only when read, also for a cached (frozen) result', () => {
    const cache = new SqlClassificationCache();
    const result = classifySqlCachedSync("ALTER ROLE app PASSWORD 'hunter2'", {}, cache);
    expect(Object.isFrozen(result)).toBe(true);
    // An accessor until read: freezing the cached result did not compute it.
    expect(typeof Object.getOwnPropertyDescriptor(result, 'normalized')?.get).toBe('function');
    expect(result.ok && result.normalized).toBe('ALTER ROLE app PASSWORD $1');
    expect(result.ok && result.normalized).toBe('ALTER ROLE app PASSWORD $1');
    expect(JSON.stringify(result)).not.toContain('hunter2');
  });

  it('does not cache what depends on the session prepared statements', () => {
    const cache = new SqlClassificationCache();
    const prepared = classifySqlSync('PREPARE q AS DELETE FROM orders');
    const readQ = new Map<string, SqlStatementClassification>(prepared.ok ? [['q', prepared.statements[0]!]] : []);
    const first = classifySqlCachedSync('EXECUTE q', { preparedStatements: readQ }, cache);
    expect(first.ok && first.kind).toBe('write');
    expect(cache.size).toBe(0);
    const unknown = classifySqlCachedSync('EXECUTE q', { preparedStatements: new Map() }, cache);
    expect(unknown.ok && unknown.flags).toContain('unknown-prepared-statement');
    // Prepared and executed in the same text: independent of the session, so cacheable.
    const inText = classifySqlCachedSync('PREPARE r AS SELECT 1; EXECUTE r', { preparedStatements: readQ }, cache);
    expect(inText.ok && inText.kind).toBe('read');
    expect(cache.size).toBe(1);
  });

  it('is bounded in entries and text length, evicting the least recently used', () => {
    const cache = new SqlClassificationCache(3, 40);
    for (const n of [1, 2, 3]) classifySqlCachedSync(`SELECT ${n}`, {}, cache);
    classifySqlCachedSync('SELECT 1', {}, cache);
    classifySqlCachedSync('SELECT 4', {}, cache);
    expect(cache.size).toBe(3);
    const hit = classifySqlCachedSync('SELECT 1', {}, cache);
    expect(classifySqlCachedSync('SELECT 1', {}, cache)).toBe(hit);
    const evicted = classifySqlCachedSync('SELECT 2', {}, cache);
    expect(classifySqlCachedSync('SELECT 2', {}, cache)).toBe(evicted);
    classifySqlCachedSync(`SELECT '${'x'.repeat(50)}'`, {}, cache);
    expect(cache.size).toBe(3);
    // Refusals before parsing are never cached either.
    expect(classifySqlCachedSync('SELECT 1\u0000', {}, cache).ok).toBe(false);
  });
});

describe('operators and attribute notation (resolved through the catalog by the PostgreSQL gateway)', () => {
  function first(sql: string): SqlStatementClassification {
    const result = classifySqlSync(sql);
    if (!result.ok) throw result.error;
    return result.statements[0]!;
  }

  it('records every operator an expression names, qualified ones with their schema', () => {
    expect(first('SELECT id ## 1 FROM customers WHERE id OPERATOR(public.#>#) 2').operators).toEqual(['##', 'public.#>#']);
    expect(first("SELECT 1 WHERE 'a' LIKE 'b' AND 1 IN (1, 2) AND 2 = ANY ('{1}')").operators).toEqual(['=', '~~']);
  });

  it('BETWEEN runs the comparison operators', () => {
    expect(first('SELECT 1 FROM t WHERE a BETWEEN 1 AND 2').operators).toEqual(['<=', '>=']);
  });

  it('records the last name of qualified column references and indirections (c.touch_row, (c).touch_row)', () => {
    expect(first('SELECT c.touch_row, (c).other, plain FROM customers c').attributeNames).toEqual(['other', 'touch_row']);
    expect(first('SELECT c.* FROM customers c').attributeNames).toBeUndefined();
  });

  it('records the types a statement casts to', () => {
    expect(first("SELECT 1::int, '5'::public.positive_int, CAST('x' AS text) FROM t").typeNames).toEqual(['pg_catalog.int4', 'public.positive_int', 'text']);
  });

  it('carries them through EXPLAIN, CTEs and PREPARE', () => {
    expect(first('EXPLAIN SELECT a ## b FROM t').operators).toEqual(['##']);
    expect(first('WITH x AS (SELECT c.touch_row FROM customers c) SELECT * FROM x').attributeNames).toEqual(['touch_row']);
    expect(first('PREPARE p AS SELECT a ## $1 FROM t').operators).toEqual(['##']);
  });
});

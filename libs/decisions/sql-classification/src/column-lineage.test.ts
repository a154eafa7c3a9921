// Issue 19 §1: a column's value reaching the client through an expression is listed; a plain
// output column, a filter operand, a sort or group key is not.
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlClassificationCache, classifySqlCachedSync, classifySqlSync, loadSqlClassifier } from './index.js';

beforeAll(async () => {
  await loadSqlClassifier();
});

function derived(sql: string): string[] {
  const classification = classifySqlSync(sql);
  if (!classification.ok) throw classification.error;
  return classification.statements.flatMap((statement) => statement.derivedColumns ?? []);
}

describe('derivedColumnReferences', () => {
  it('plain output columns, filters, sorts and groups are not derivations', () => {
    expect(derived('SELECT id, email, c.notes, c.* FROM customers c WHERE email = $1 AND id IN (1, 2) AND notes IS NULL GROUP BY id ORDER BY name')).toEqual([]);
    expect(derived('SELECT * FROM customers JOIN orders o ON o.customer_id = customers.id')).toEqual([]);
    expect(derived('EXPLAIN SELECT upper(email) FROM customers')).toEqual([]);
    expect(derived('SELECT count(*) FROM customers')).toEqual([]);
  });

  it('expressions, aggregates, set operations, subqueries, casts and whole rows are', () => {
    const cases: [string, string[]][] = [
      ['SELECT upper(email) FROM customers', ['email']],
      ["SELECT email || '' FROM customers", ['email']],
      ["SELECT concat(name, email), format('%s', notes) FROM customers", ['email', 'name', 'notes']],
      ['SELECT email::bytea FROM customers', ['email']],
      ["SELECT encode(email::bytea, 'base64') FROM customers", ['email']],
      ['SELECT string_agg(email, \',\') FROM customers', ['email']],
      ['SELECT array_agg(c.email) FROM customers c', ['email']],
      ['SELECT CASE WHEN id > 0 THEN email END FROM customers', ['email', 'id']],
      ['SELECT COALESCE(email, name) FROM customers', ['email', 'name']],
      ['SELECT email FROM customers UNION SELECT name FROM orders', ['email', 'name']],
      ['SELECT (SELECT email FROM customers LIMIT 1)', ['email']],
      ['SELECT * FROM (SELECT email FROM customers) s', ['email']],
      ['WITH x AS (SELECT email FROM customers) SELECT * FROM x', ['email']],
      ['SELECT row_to_json(c) FROM customers c', ['*']],
      ['SELECT c FROM customers c', ['*']],
      ['SELECT json_agg(customers.*) FROM customers', ['*']],
      ["SELECT 1 FROM customers WHERE email::int = 1", ['email']],
      ["SELECT 1 FROM customers WHERE email LIKE 'a%'", ['email']],
      ['DECLARE k CURSOR FOR SELECT reverse(email) FROM customers', ['email']],
      ['PREPARE p AS SELECT translate(email, \'a\', \'b\') FROM customers', ['email']],
    ];
    for (const [sql, expected] of cases) expect(derived(sql), sql).toEqual(expected);
  });

  it('a DECLARE CURSOR or PREPARE of a plain SELECT derives nothing', () => {
    expect(derived('DECLARE k CURSOR FOR SELECT email FROM customers')).toEqual([]);
    expect(derived('PREPARE p AS SELECT email FROM customers WHERE id = $1')).toEqual([]);
  });
});

describe('column lineage skipped, and EXECUTE (issue 12: the walk only where column rules read it)', () => {
  it('EXECUTE lists what its prepared statement derives, in the same text and from the session', () => {
    const both = classifySqlSync('PREPARE p AS SELECT upper(email) FROM customers; EXECUTE p');
    if (!both.ok) throw both.error;
    expect(both.statements.map((statement) => statement.derivedColumns)).toEqual([['email'], ['email']]);
    const prepare = both.statements[0]!;
    const later = classifySqlSync('EXECUTE p', { preparedStatements: new Map([['p', prepare]]) });
    if (!later.ok) throw later.error;
    expect(later.statements[0]!.derivedColumns).toEqual(['email']);
  });

  it('columnLineage: false marks every statement as derivations unknown, and so does an EXECUTE of one', () => {
    const skipped = classifySqlSync('SELECT upper(email) FROM customers; PREPARE q AS SELECT email FROM customers', { columnLineage: false });
    if (!skipped.ok) throw skipped.error;
    for (const statement of skipped.statements) {
      expect(statement.derivedColumns).toBeUndefined();
      expect(statement.derivedColumnsUnknown).toBe(true);
    }
    const executed = classifySqlSync('EXECUTE q', { preparedStatements: new Map([['q', skipped.statements[1]!]]) });
    if (!executed.ok) throw executed.error;
    expect(executed.statements[0]!.derivedColumnsUnknown).toBe(true);
  });

  it('a cached classification made without lineage does not serve a caller that needs it', () => {
    const cache = new SqlClassificationCache();
    const sql = 'SELECT lower(email) FROM customers WHERE id = 7';
    const without = classifySqlCachedSync(sql, { columnLineage: false }, cache);
    if (!without.ok) throw without.error;
    expect(without.statements[0]!.derivedColumnsUnknown).toBe(true);
    const withLineage = classifySqlCachedSync(sql, {}, cache);
    if (!withLineage.ok) throw withLineage.error;
    expect(withLineage.statements[0]!.derivedColumns).toEqual(['email']);
    expect(withLineage.statements[0]!.derivedColumnsUnknown).toBeUndefined();
    // The entry was replaced: both kinds of caller now get the one with lineage.
    expect(classifySqlCachedSync(sql, { columnLineage: false }, cache)).toBe(withLineage);
    expect(cache.size).toBe(1);
  });
});

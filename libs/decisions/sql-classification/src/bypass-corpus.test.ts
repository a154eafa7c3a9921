import { beforeAll, describe, expect, it } from 'vitest';
import { BYPASS_CORPUS } from './corpus/bypass-corpus.js';
import { classifySqlCachedSync, classifySqlSync, loadSqlClassifier, SqlClassificationCache } from './index.js';

beforeAll(async () => {
  await loadSqlClassifier();
});

describe('SQL bypass corpus', () => {
  it('holds at least 150 cases with unique names', () => {
    expect(BYPASS_CORPUS.length).toBeGreaterThanOrEqual(150);
    expect(new Set(BYPASS_CORPUS.map((c) => c.name)).size).toBe(BYPASS_CORPUS.length);
  });

  it.each(BYPASS_CORPUS.map((c) => [c.name, c] as const))('%s', (_name, testCase) => {
    const result = classifySqlSync(testCase.sql);
    const expected = testCase.expect;
    if (!expected.ok) {
      expect(result.ok, JSON.stringify(result)).toBe(false);
      if (!result.ok) expect(result.error.code).toBe(expected.code);
      return;
    }
    if (!result.ok) throw new Error(`expected a classification, got ${result.error.code}: ${result.error.message}`);
    expect(result.kind).toBe(expected.kind);
    if (expected.commands !== undefined) expect(result.statements.map((s) => s.command)).toEqual(expected.commands);
    if (expected.multiStatement !== undefined) expect(result.multiStatement).toBe(expected.multiStatement);
    for (const flag of expected.flags ?? []) expect(result.flags).toContain(flag);
    for (const flag of expected.absentFlags ?? []) expect(result.flags).not.toContain(flag);
    const objects = result.statements.flatMap((s) => s.objects.map((o) => ({ schema: o.schema, name: o.name, access: o.access })));
    for (const object of expected.objects ?? []) expect(objects).toContainEqual({ schema: object.schema, ...object });
    const functions = result.statements.flatMap((s) => s.functions);
    for (const name of expected.functions ?? []) expect(functions).toContain(name);
  });

  it('never classifies a corpus statement with a write, DDL or dangerous flag as read', () => {
    const risky = new Set(['dangerous-function', 'do-block', 'copy-program', 'dml-in-cte', 'nested-dml', 'delete-without-where', 'update-without-where']);
    for (const testCase of BYPASS_CORPUS) {
      const result = classifySqlSync(testCase.sql);
      if (!result.ok) continue;
      for (const statement of result.statements) {
        if (statement.command === 'EXPLAIN') continue; // plain EXPLAIN plans without executing
        if (statement.flags.some((flag) => risky.has(flag))) expect(statement.kind, testCase.name).not.toBe('read');
      }
    }
  });
});

describe('SQL bypass corpus through the classification cache', () => {
  it('classifies every case twice through the cache exactly as without it', () => {
    const cache = new SqlClassificationCache();
    for (const testCase of BYPASS_CORPUS) {
      const uncached = classifySqlSync(testCase.sql);
      const first = classifySqlCachedSync(testCase.sql, {}, cache);
      const second = classifySqlCachedSync(testCase.sql, {}, cache);
      expect(first, testCase.name).toEqual(uncached);
      expect(second, testCase.name).toEqual(uncached);
    }
    expect(cache.size).toBeGreaterThan(BYPASS_CORPUS.length / 2);
  });
});

import { MaskingFindings, MaskingPolicy } from '@custodian/masking';
import { classifySqlSync, loadSqlClassifier } from '@custodian/sql-classification';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffloadPool, OffloadRefusal } from './offload-pool.js';

// Worker threads started from the TypeScript sources (see typescript-source-hooks.ts): the same
// classifier and detectors as the event loop, with bounded queues and a time budget.
const inList = (count: number): string => `SELECT 1 WHERE 'x' IN (${Array.from({ length: count }, (_, i) => `'v${i}'`).join(',')})`;
const masking = MaskingPolicy.create({ detection: { enabled: ['email', 'card'] } });

describe('OffloadPool', () => {
  const pool = new OffloadPool({ threads: 1, maxPerOwner: 2, maxQueued: 3 });
  beforeAll(loadSqlClassifier);
  afterAll(() => pool.close());

  it('classifies a large statement in a worker exactly as the event loop does, and masks its text for the record', async () => {
    const sql = `${inList(5_000)} AND 'alice@example.com' = 'alice@example.com'`;
    const result = await pool.classify('s1', { text: sql, maxLength: 1 << 20, prepared: [] }, { masking, field: 'statement' });
    const inline = classifySqlSync(sql);
    expect(result.classification.ok).toBe(true);
    if (!result.classification.ok || !inline.ok) throw new Error('unreachable');
    expect(result.classification.statements).toEqual(inline.statements);
    expect(result.classification.flags).toEqual(inline.flags);
    expect(result.classification.normalized).toBe(inline.normalized);
    const findings = new MaskingFindings();
    expect(result.recorded?.text).toBe(masking.maskText(sql, 'statement', findings));
    expect(result.recorded?.text).not.toContain('alice@example.com');
    expect(result.recorded?.findings).toEqual(findings.toArray());
  });

  it('resolves EXECUTE against the prepared statements it is given, and reports parse errors with their position', async () => {
    const prepared = classifySqlSync('PREPARE p AS DELETE FROM orders');
    if (!prepared.ok) throw new Error('unreachable');
    const execute = await pool.classify('s1', { text: 'EXECUTE p', maxLength: 1 << 20, prepared: [['p', prepared.statements[0]!]] });
    expect(execute.classification.ok && execute.classification.kind).toBe('write');
    const broken = await pool.classify('s1', { text: 'SELECT FROM WHERE', maxLength: 1 << 20, prepared: [] }, { masking, field: 'statement' });
    expect(broken.classification.ok).toBe(false);
    if (broken.classification.ok) throw new Error('unreachable');
    expect(broken.classification.error.code).toBe('SQL_PARSE_ERROR');
    expect(broken.classification.error.position).toBeTypeOf('number');
  });

  it('masks values with the detectors and json documents with the path rules', async () => {
    const withPaths = MaskingPolicy.create({ jsonPaths: [{ path: '$.ssn', id: 'ssn', strategy: { kind: 'redact' } }], detection: { enabled: ['email'] } });
    const text = await pool.mask('s1', masking, 'text', 'card 4111 1111 1111 1111 for bob@example.com', 'notes');
    expect(text.text).toBe(masking.maskText('card 4111 1111 1111 1111 for bob@example.com', 'notes'));
    expect(text.findings.map((finding) => finding.detector).sort()).toEqual(['card', 'email']);
    const json = await pool.mask('s1', withPaths, 'json', '{"ssn":"123-45-6789","note":"mail bob@example.com"}', 'doc');
    expect(json.text).not.toContain('123-45-6789');
    expect(json.text).not.toContain('bob@example.com');
    expect(json.findings.map((finding) => finding.rule).sort()).toEqual(['detector:email', 'ssn']);
  });

  it('refuses work past a session\'s share and past the queue, serving other sessions meanwhile', async () => {
    const big = inList(20_000);
    const first = pool.classify('greedy', { text: big, maxLength: 1 << 20, prepared: [] });
    const second = pool.classify('greedy', { text: big, maxLength: 1 << 20, prepared: [] });
    const third = pool.classify('greedy', { text: big, maxLength: 1 << 20, prepared: [] });
    await expect(third).rejects.toMatchObject({ code: 'OFFLOAD_BUSY' });
    const other = pool.classify('other', { text: 'SELECT 1', maxLength: 1 << 20, prepared: [] });
    const overQueue = pool.classify('late', { text: 'SELECT 1', maxLength: 1 << 20, prepared: [] });
    await expect(overQueue).rejects.toBeInstanceOf(OffloadRefusal);
    await expect(overQueue).rejects.toMatchObject({ code: 'OFFLOAD_BUSY' });
    await expect(Promise.all([first, second, other])).resolves.toHaveLength(3);
    expect(pool.stats.refused.OFFLOAD_BUSY).toBeGreaterThanOrEqual(2);
  });

  it('refuses a task past its time budget, replaces the worker and goes on', async () => {
    const strict = new OffloadPool({ threads: 1, taskTimeoutMs: 1 });
    try {
      await expect(strict.classify('s', { text: inList(40_000), maxLength: 1 << 20, prepared: [] })).rejects.toMatchObject({ code: 'OFFLOAD_TIMEOUT' });
      expect(strict.stats.refused.OFFLOAD_TIMEOUT).toBe(1);
    } finally {
      await strict.close();
    }
    const patient = new OffloadPool({ threads: 1 });
    try {
      const result = await patient.classify('s', { text: 'SELECT 1', maxLength: 1 << 20, prepared: [] });
      expect(result.classification.ok).toBe(true);
    } finally {
      await patient.close();
    }
  });

  it('refuses work after close', async () => {
    const closing = new OffloadPool({ threads: 1 });
    await closing.close();
    await expect(closing.mask('s', masking, 'text', 'x', 'f')).rejects.toMatchObject({ code: 'OFFLOAD_FAILED' });
  });
});

// Keeps the benchmark suite from rotting: runs the whole suite in --quick mode (three to four minutes;
// real PostgreSQL, PgBouncer and pgbench from the harness) into a temp dir and checks the shape of
// what it reports. Asserts no timing: figures only have to be real measurements.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Figure } from './benchmark.ts';
import type { BenchmarkReport } from './report.ts';

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const EXPECTED_BENCHMARKS = ['event-validation', 'sql-classification', 'masking', 'merkle-log', 'evidence-pack', 'event-store-append', 'event-store-postgres', 'pipeline', 'pipeline-kafka', 'postgres-pooling', 'postgres-under-attack', 'custodian-start', 'mcp-gateway', 'kubernetes-exec', 'ssh-gateway', 'http-gateway'];

describe('benchmark runner (--quick)', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'custodian-bench-test-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('runs every benchmark and writes latest.json / latest.md with baselines and consistent ratios', { timeout: 480_000 }, async () => {
    const { stdout } = await run(process.execPath, ['bench/run.ts', '--quick', '--out', outDir], {
      cwd: REPO_ROOT,
      timeout: 470_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const report = JSON.parse(readFileSync(join(outDir, 'latest.json'), 'utf8')) as BenchmarkReport;
    const markdown = readFileSync(join(outDir, 'latest.md'), 'utf8');

    expect(report.formatVersion).toBe(1);
    expect(report.mode).toBe('quick');
    expect(Number.isNaN(Date.parse(report.timestamp))).toBe(false);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.memoryBytes).toBeGreaterThan(0);
    expect(report.machine.node).toMatch(/^v24\./);
    expect(report.machine.versions.sqlite).toMatch(/^3\.\d+\.\d+$/);
    expect(report.machine.versions.postgresql).toMatch(/PostgreSQL\) \d+/);
    expect(report.machine.versions.pgbouncer).toMatch(/PgBouncer \d+/);
    expect(report.machine.versions.kafka).toMatch(/^\d+\.\d+\.\d+$/);

    expect(report.benchmarks.map((b) => [b.name, b.status, b.error])).toEqual(EXPECTED_BENCHMARKS.map((name) => [name, 'ok', undefined]));
    for (const name of EXPECTED_BENCHMARKS) expect(report.figures.filter((f) => f.benchmark === name).length).toBeGreaterThan(0);

    for (const f of report.figures as Figure[]) {
      expect(f.metric.length, JSON.stringify(f)).toBeGreaterThan(0);
      expect(f.unit.length, JSON.stringify(f)).toBeGreaterThan(0);
      expect(['higher', 'lower']).toContain(f.better);
      expect(f.baseline.name.length, JSON.stringify(f)).toBeGreaterThan(0);
      for (const v of [f.value, f.baseline.value, f.ratio]) {
        expect(Number.isFinite(v), JSON.stringify(f)).toBe(true);
        expect(v, JSON.stringify(f)).toBeGreaterThan(0);
      }
      expect(f.ratio, JSON.stringify(f)).toBeCloseTo(f.value / f.baseline.value, 9);
    }

    // Direct vs pgbouncer vs the Custodian gateway, side by side in the same run.
    const pooling = report.figures.filter((f) => f.benchmark === 'postgres-pooling');
    const subjects = new Set(pooling.map((f) => f.subject ?? ''));
    expect([...subjects].some((s) => s.startsWith('PgBouncer'))).toBe(true);
    expect([...subjects].some((s) => s.startsWith('Custodian gateway (strict'))).toBe(true);
    expect(pooling.map((f) => f.metric)).toEqual(expect.arrayContaining([expect.stringMatching(/select-only .*1 client: throughput/), expect.stringMatching(/read\/write .*8 clients: latency p99/)]));

    expect(stdout).toBe(markdown);
    for (const name of EXPECTED_BENCHMARKS) expect(markdown).toContain(`## ${name}`);
    expect(markdown).toContain('Custodian gateway');
  });
});

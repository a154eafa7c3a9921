// Runs the selected benchmarks one after another (never in parallel: they would measure each
// other), then writes <out>/latest.json and <out>/latest.md and prints the markdown.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchmarkError, type Benchmark, type Figure } from './benchmark.ts';
import { BENCHMARKS, PLANNED_BENCHMARKS } from './benchmarks/index.ts';
import { LazyHarnessServices } from './harness-services.ts';
import { collectMachineInfo } from './machine-info.ts';
import { nowNs, secondsSince } from './measurement.ts';
import { renderMarkdown, type BenchmarkOutcome, type BenchmarkReport } from './report.ts';

const DEFAULT_OUT_DIR = new URL('./results/', import.meta.url).pathname;

const USAGE = `Usage: npm run bench -- [--only <name>[,<name>…]] [--quick] [--out <dir>]
  --only   run only these benchmarks (repeatable or comma-separated)
  --quick  short measurements (whole suite in under 3 minutes); figures are noisier
  --out    directory for latest.json and latest.md (default bench/results)
Benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}`;

export interface RunOptions {
  readonly quick: boolean;
  readonly selected: readonly Benchmark[];
  readonly outDir: string;
}

export function parseRunOptions(argv: readonly string[]): RunOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        only: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new BenchmarkError('BENCH_USAGE', `${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) return 'help';
  const names = (values.only ?? []).flatMap((v) => v.split(',')).map((n) => n.trim()).filter((n) => n !== '');
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length > 0) throw new BenchmarkError('BENCH_UNKNOWN_BENCHMARK', `unknown benchmark(s): ${unknown.join(', ')}\n${USAGE}`);
  return {
    quick: values.quick ?? false,
    selected: names.length === 0 ? BENCHMARKS : BENCHMARKS.filter((b) => names.includes(b.name)),
    outDir: resolve(values.out ?? DEFAULT_OUT_DIR),
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: RunOptions | 'help';
  try {
    options = parseRunOptions(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const runStart = nowNs();
  const timestamp = new Date().toISOString();
  const machine = await collectMachineInfo();
  const harness = new LazyHarnessServices();
  const outcomes: BenchmarkOutcome[] = [];
  const figures: Figure[] = [];
  log(`${options.quick ? 'quick' : 'full'} run: ${options.selected.map((b) => b.name).join(', ')}`);

  try {
    for (const benchmark of options.selected) {
      const workDir = mkdtempSync(join(tmpdir(), `custodian-bench-${benchmark.name}-`));
      const start = nowNs();
      log(`${benchmark.name}: ${benchmark.description}`);
      try {
        const produced = await benchmark.run({
          quick: options.quick,
          harness,
          workDir,
          log: (message) => log(`${benchmark.name}: ${message}`),
        });
        const foreign = produced.find((f) => f.benchmark !== benchmark.name);
        if (foreign) throw new BenchmarkError('BENCH_INVALID_FIGURE', `figure "${foreign.metric}" claims benchmark ${foreign.benchmark}`);
        if (produced.length === 0) throw new BenchmarkError('BENCH_INVALID_FIGURE', 'produced no figures');
        figures.push(...produced);
        outcomes.push({ name: benchmark.name, description: benchmark.description, status: 'ok', durationSeconds: secondsSince(start) });
        log(`${benchmark.name}: done in ${secondsSince(start).toFixed(1)} s`);
      } catch (error) {
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        log(`${benchmark.name}: FAILED ${error instanceof Error ? (error.stack ?? message) : message}`);
        outcomes.push({ name: benchmark.name, description: benchmark.description, status: 'failed', durationSeconds: secondsSince(start), error: message });
      } finally {
        rmSync(workDir, { recursive: true, force: true });
      }
    }
  } finally {
    await harness.stop();
  }

  const report: BenchmarkReport = {
    formatVersion: 1,
    timestamp,
    mode: options.quick ? 'quick' : 'full',
    durationSeconds: secondsSince(runStart),
    machine,
    loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    servicesStarted: harness.started(),
    benchmarks: outcomes,
    figures,
    planned: PLANNED_BENCHMARKS,
  };
  const markdown = renderMarkdown(report);
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(options.outDir, 'latest.md'), markdown);
  process.stdout.write(markdown);
  log(`wrote ${join(options.outDir, 'latest.json')} and latest.md`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

// The result file (bench/results/latest.json) and its markdown table (latest.md).
import type { Figure } from './benchmark.ts';
import type { MachineInfo } from './machine-info.ts';

export interface BenchmarkOutcome {
  readonly name: string;
  readonly description: string;
  readonly status: 'ok' | 'failed';
  readonly durationSeconds: number;
  readonly error?: string;
}

export interface PlannedBenchmark {
  readonly name: string;
  readonly status: string;
}

export interface BenchmarkReport {
  /** Bumped when the shape of this file changes. */
  readonly formatVersion: 1;
  readonly timestamp: string;
  readonly mode: 'quick' | 'full';
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  /** 1/5/15-minute load averages when the run ended (compare with machine.loadAverageAtStart). */
  readonly loadAverageAtEnd: readonly number[];
  /** Harness services this run started. */
  readonly servicesStarted: readonly string[];
  readonly benchmarks: readonly BenchmarkOutcome[];
  readonly figures: readonly Figure[];
  /** Benchmarks that later issues will add (not measured, never faked). */
  readonly planned: readonly PlannedBenchmark[];
}

/** Three significant digits, thousands separated; enough for figures that move by percents between runs. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  const decimals = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function formatRatio(ratio: number): string {
  return `${ratio >= 10 ? ratio.toFixed(1) : ratio >= 0.1 ? ratio.toFixed(2) : ratio.toFixed(3)}×`;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function uniform<T>(values: readonly T[]): T | undefined {
  return values.length > 0 && values.every((v) => v === values[0]) ? values[0] : undefined;
}

/** One table per benchmark. When every figure shares a baseline (or subject) name, the name goes in the header. */
function figureTable(figures: readonly Figure[]): string[] {
  const baselineName = uniform(figures.map((f) => f.baseline.name));
  const subject = uniform(figures.map((f) => f.subject));
  const pendingNames = [...new Set(figures.flatMap((f) => (f.pending ?? []).map((p) => p.name)))];
  const header = [
    'Metric',
    'Unit',
    baselineName === undefined ? 'Baseline' : `Baseline: ${baselineName}`,
    subject ?? 'Measured',
    ...pendingNames,
    'Ratio (measured / baseline)',
    'Better',
    'Notes',
  ];
  const rows = figures.map((f) => [
    f.metric,
    f.unit,
    baselineName === undefined ? `${f.baseline.name}: ${formatNumber(f.baseline.value)}` : formatNumber(f.baseline.value),
    subject === undefined && f.subject !== undefined ? `${f.subject}: ${formatNumber(f.value)}` : formatNumber(f.value),
    ...pendingNames.map((name) => f.pending?.find((p) => p.name === name)?.status ?? ''),
    formatRatio(f.ratio),
    f.better,
    f.notes ?? '',
  ]);
  const align = header.map((h) => (['Unit', 'Metric', 'Notes', 'Better', ...pendingNames].includes(h) ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`);
}

export function renderMarkdown(report: BenchmarkReport): string {
  const m = report.machine;
  const lines: string[] = [
    `# Custodian benchmarks (${report.mode} run)`,
    '',
    `${report.timestamp}, ${report.durationSeconds.toFixed(0)} s. ${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB, ${m.os}, Node ${m.node}, load average ${m.loadAverageAtStart.join(' / ')} at start, ${report.loadAverageAtEnd.join(' / ')} at end.`,
    `PostgreSQL: ${m.versions.postgresql ?? 'not installed'}; pgbench: ${m.versions.pgbench ?? 'not installed'}; PgBouncer: ${m.versions.pgbouncer ?? 'not installed'}; SQLite ${m.versions.sqlite} (better-sqlite3 ${m.versions.betterSqlite3 ?? '?'}); libpg-query ${m.versions.libpgQuery ?? '?'}; Kafka ${m.versions.kafka} (harness${report.servicesStarted.includes('kafka') ? '' : ', not started by this run'}).`,
    `Temp files on ${m.tmpDir.path} (${m.tmpDir.filesystem ?? 'file system unknown'}). Commit ${m.git.commit ?? 'unknown'}${m.git.dirty ? ' + uncommitted changes' : ''}.`,
    '',
    'Ratios compare figures measured in this run on this machine; absolute values move with machine load.',
  ];
  for (const outcome of report.benchmarks) {
    lines.push('', `## ${outcome.name}`, '', `${outcome.description} (${outcome.durationSeconds.toFixed(0)} s)`, '');
    if (outcome.status === 'failed') {
      lines.push(`**Failed:** ${outcome.error ?? 'unknown error'}`);
      continue;
    }
    lines.push(...figureTable(report.figures.filter((f) => f.benchmark === outcome.name)));
  }
  if (report.planned.length > 0) {
    lines.push('', '## Not measured yet', '', ...report.planned.map((p) => `- \`${p.name}\`: ${p.status}`));
  }
  return `${lines.join('\n')}\n`;
}

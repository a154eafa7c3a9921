// CPU time of the PostgreSQL gateway's row masking alone (maskDataRow, no sockets, no recording)
// on the rows of the postgres-pooling benchmark's masked SELECT (`g`, `'user' || g ||
// '@example.com'`, `repeat('x', 80)`, text format) under its masking rule (detectors card and
// email, redact). CPU µs per row is the figure to compare under machine load.
//   scripts/node24 node bench/probes/row-masking-cpu.ts [rows] [detectors, comma-separated]
import type { DetectorId } from '@custodian/masking';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { MaskingFindings, MaskingPolicy } = await import('@custodian/masking');
const { encodeDataRow } = await import('@custodian/postgres-wire');
const { maskDataRow, planRows } = await import('../../libs/protocols/postgres-gateway/src/row-masking.ts');
type CatalogResolver = Parameters<typeof planRows>[2];

const rows = Number(process.argv[2] ?? 300_000);
const enabled = (process.argv[3] ?? 'card,email').split(',') as DetectorId[];
const redact = { kind: 'redact', label: 'bench-detectors' } as const;
const masking = MaskingPolicy.create({
  detection: { enabled, strategies: Object.fromEntries(enabled.map((id) => [id, redact])), ruleIds: Object.fromEntries(enabled.map((id) => [id, 'bench-detectors'])) },
});
const field = (name: string, typeOid: number) => ({ name, tableOid: 0, columnAttribute: 0, typeOid, typeSize: -1, typeModifier: -1, format: 0 as const });
const plan = planRows([field('g', 23), field('email', 25), field('filler', 25)], masking, { cached: () => undefined } as unknown as CatalogResolver, false);
const frames = Array.from({ length: 1000 }, (_, i) => {
  const raw = encodeDataRow([Buffer.from(String(i + 1)), Buffer.from(`user${i + 1}@example.com`), Buffer.from('x'.repeat(80))]);
  return { type: raw[0] as number, raw, body: raw.subarray(5) };
});
const limits = { maxScannedValueBytes: 256 * 1024 };
let bytes = 0;
for (let round = 0; round < 3; round++) {
  const findings = new MaskingFindings();
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let i = 0; i < rows; i++) bytes += maskDataRow(frames[i % frames.length]!, plan, masking, findings, limits).length;
  const used = process.cpuUsage(cpu);
  const wallNs = Number(process.hrtime.bigint() - wall);
  const masked = findings.toArray().reduce((sum, f) => sum + f.count, 0);
  process.stdout.write(`round ${round}: CPU ${((used.user + used.system) / rows).toFixed(3)} µs/row, wall ${(wallNs / rows / 1000).toFixed(3)} µs/row; ${masked} values masked\n`);
}
process.stdout.write(`(${bytes} bytes out)\n`);

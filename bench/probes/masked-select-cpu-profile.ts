// A CPU profile of the PostgreSQL gateway (strict recording, masking on: the postgres-pooling
// benchmark's configuration) while psql streams the benchmark's masked SELECT through it.
// Prints direct and gateway seconds, and the functions with the most self time.
//   scripts/node24 node bench/probes/masked-select-cpu-profile.ts <rows> <out dir> [label]
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { startOidcProvider, startPostgres } = await import('@custodian/test-harness');
const { startBenchGateway, streamThroughPsql, maskedStreamSql } = await import('../benchmarks/postgres-pooling.ts');
const { summarizeProfile } = await import('./profile-summary.ts');

const [rowsText, outDir, label = 'masked-select'] = process.argv.slice(2);
const rows = Number(rowsText);
if (!(rows >= 1) || outDir === undefined) {
  process.stderr.write('usage: masked-select-cpu-profile.ts <rows> <out dir> [label]\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const postgres = await startPostgres();
const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 }] });
const direct = { label: 'direct', host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: postgres.database };
try {
  const gateway = await startBenchGateway(postgres, outDir, true, oidc);
  const session = new Session();
  session.connect();
  try {
    const sql = maskedStreamSql(rows);
    await streamThroughPsql(postgres.binDir, gateway.endpoint, await gateway.token(), maskedStreamSql(Math.min(rows, 20_000))); // warm-up
    const directSeconds = await streamThroughPsql(postgres.binDir, direct, direct.password, sql);
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
    const cpuBefore = process.cpuUsage();
    const gatewaySeconds = await streamThroughPsql(postgres.binDir, gateway.endpoint, await gateway.token(), sql);
    const cpu = process.cpuUsage(cpuBefore);
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Parameters<typeof summarizeProfile>[0] };
    writeFileSync(join(outDir, `${label}.cpuprofile`), JSON.stringify(profile));
    const header = `masked SELECT of ${rows} rows: direct ${directSeconds.toFixed(2)} s, gateway ${gatewaySeconds.toFixed(2)} s (${(directSeconds / gatewaySeconds).toFixed(3)}× direct); process CPU (all threads) ${((cpu.user + cpu.system) / rows).toFixed(2)} µs/row`;
    const lines = [header, ...summarizeProfile(profile)];
    writeFileSync(join(outDir, `${label}.top.txt`), lines.join('\n') + '\n');
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    session.disconnect();
    await gateway.stop();
  }
} finally {
  await oidc.stop();
  await postgres.stop();
}

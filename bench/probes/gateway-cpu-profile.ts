// A CPU profile of the PostgreSQL gateway (the benchmark's configuration: OIDC login,
// classification, masking, recording into SQLite) while pgbench runs select-only through it.
// Writes the .cpuprofile (open it in Chrome DevTools or speedscope) and prints the functions with
// the most self time, as a share of the sampled time, grouped by function and file.
// Mode `start`: `custodian start` (the embedded host: gateway + projector + evidence log, strict).
//   scripts/node24 node bench/probes/gateway-cpu-profile.ts <strict|relaxed|start> <clients> <seconds> <out dir> [simple|prepared]
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';
import { perThreadMicros, summarizeProfile, threadCpuTicks, type Profile } from './profile-summary.ts';

registerWorkspaceSources();
const { runCommand, startOidcProvider, startPostgres } = await import('@custodian/test-harness');
const { startBenchGateway, libpqEnv, connectionArgs } = await import('../benchmarks/postgres-pooling.ts');
const { startCustodianStart } = await import('../benchmarks/custodian-start.ts');

const [mode, clientsText, secondsText, outDir, protocol = 'simple'] = process.argv.slice(2);
const clients = Number(clientsText);
const seconds = Number(secondsText);
if ((mode !== 'strict' && mode !== 'relaxed' && mode !== 'start') || !(clients >= 1) || !(seconds >= 1) || outDir === undefined || (protocol !== 'simple' && protocol !== 'prepared')) {
  process.stderr.write('usage: gateway-cpu-profile.ts <strict|relaxed|start> <clients> <seconds> <out dir> [simple|prepared]\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const postgres = await startPostgres();
const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 }] });
const pgbench = join(postgres.binDir, 'pgbench');
const direct = { label: 'direct', host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: postgres.database };
try {
  await runCommand(pgbench, ['-i', '-q', '-s', '1', ...connectionArgs(direct), direct.database], { env: libpqEnv(direct.password), timeoutMs: 300_000 });
  const gateway = mode === 'start' ? await startCustodianStart(postgres, oidc, outDir) : await startBenchGateway(postgres, outDir, mode === 'strict', oidc);
  const session = new Session();
  session.connect();
  try {
    const argsFor = (runSeconds: number): string[] =>
      ['-n', '-b', 'select-only', '-M', protocol, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(runSeconds), ...connectionArgs(gateway.endpoint), gateway.endpoint.database];
    // Warm-up (JIT, caches), then the profiled run.
    await runCommand(pgbench, argsFor(2), { env: libpqEnv(await gateway.token()), timeoutMs: 60_000 });
    const args = argsFor(seconds);
    // CUSTODIAN_PROBE_PROFILE=off: the figures without the profiler's own cost (no profile written).
    const profiling = process.env['CUSTODIAN_PROBE_PROFILE'] !== 'off';
    if (profiling) {
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
    }
    const cpuBefore = process.cpuUsage();
    const threadsBefore = threadCpuTicks();
    const run = await runCommand(pgbench, args, { env: libpqEnv(await gateway.token()), timeoutMs: (seconds + 60) * 1000 });
    const cpu = process.cpuUsage(cpuBefore);
    const threadsAfter = threadCpuTicks();
    const { profile } = profiling ? ((await session.post('Profiler.stop')) as unknown as { profile: Profile }) : { profile: { nodes: [], samples: [], timeDeltas: [] } satisfies Profile };
    const file = join(outDir, `gateway-${mode}-${protocol}-c${clients}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const tps = Number(/^tps = ([0-9.]+)/m.exec(run.stdout)?.[1]);
    const transactions = Number(/^number of transactions actually processed: ([0-9]+)/m.exec(run.stdout)?.[1]);
    // The whole process (every thread: main, store writer, libuv pool), user and system time.
    const cpuLine = `process CPU per transaction (all threads${profiling ? ', profiler on' : ''}): ${(cpu.user / transactions).toFixed(0)} µs user + ${(cpu.system / transactions).toFixed(0)} µs system`;

    const lines = [
      `gateway ${mode}, pgbench -S -M ${protocol} -c ${clients}, ${seconds} s: ${tps.toFixed(0)} tps`,
      cpuLine,
      `per thread, µs per transaction: ${perThreadMicros(threadsBefore, threadsAfter, transactions)}`,
      ...(profiling ? summarizeProfile(profile) : []),
    ];
    writeFileSync(join(outDir, `gateway-${mode}-${protocol}-c${clients}.top.txt`), lines.join('\n') + '\n');
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    session.disconnect();
    await gateway.stop();
  }
} finally {
  await oidc.stop();
  await postgres.stop();
}

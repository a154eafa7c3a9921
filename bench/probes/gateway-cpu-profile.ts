// A CPU profile of the PostgreSQL gateway (the benchmark's configuration: OIDC login,
// classification, masking, recording into SQLite) while pgbench runs select-only through it.
// Writes the .cpuprofile (open it in Chrome DevTools or speedscope) and prints the functions with
// the most self time, as a share of the sampled time, grouped by function and file.
// Mode `start`: `custodian start` (the embedded host: gateway + projector + evidence log, strict).
//   scripts/node24 node bench/probes/gateway-cpu-profile.ts <strict|relaxed|start> <clients> <seconds> <out dir> [simple|prepared]
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';

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

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** CPU ticks (user + system, 1/100 s) per thread name of this process, from /proc (Linux). */
function threadTicks(): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      ticks.set(name, (ticks.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]));
    } catch {
      // The thread ended while being read.
    }
  }
  return ticks;
}

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
    const threadsBefore = threadTicks();
    const run = await runCommand(pgbench, args, { env: libpqEnv(await gateway.token()), timeoutMs: (seconds + 60) * 1000 });
    const cpu = process.cpuUsage(cpuBefore);
    const threadsAfter = threadTicks();
    const { profile } = profiling ? ((await session.post('Profiler.stop')) as unknown as { profile: Profile }) : { profile: { nodes: [], samples: [], timeDeltas: [] } satisfies Profile };
    const file = join(outDir, `gateway-${mode}-${protocol}-c${clients}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const tps = Number(/^tps = ([0-9.]+)/m.exec(run.stdout)?.[1]);
    const transactions = Number(/^number of transactions actually processed: ([0-9]+)/m.exec(run.stdout)?.[1]);
    // The whole process (every thread: main, store writer, libuv pool), user and system time.
    const cpuLine = `process CPU per transaction (all threads${profiling ? ', profiler on' : ''}): ${(cpu.user / transactions).toFixed(0)} µs user + ${(cpu.system / transactions).toFixed(0)} µs system`;

    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let total = 0;
    profile.samples.forEach((id, i) => {
      const node = byId.get(id)!;
      const delta = profile.timeDeltas[i] ?? 0;
      const url = node.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/)/, '$1').replace(/^.*\/(libs|services|bench)\//, '$1/');
      const key = `${node.callFrame.functionName || '(anonymous)'} ${url}${url ? `:${node.callFrame.lineNumber + 1}` : ''}`;
      self.set(key, (self.get(key) ?? 0) + delta);
      total += delta;
    });
    // The inspector's own work (serialising the profile at Profiler.stop) is not the gateway's.
    const notGateway = new Set(['(idle) ', ...[...self.keys()].filter((k) => k.startsWith('post node:inspector'))]);
    const idle = [...notGateway].reduce((sum, k) => sum + (self.get(k) ?? 0), 0);
    const busy = total - idle;
    const top = [...self.entries()].filter(([k]) => !notGateway.has(k)).sort((a, b) => b[1] - a[1]).slice(0, 30);
    const lines = [
      `gateway ${mode}, pgbench -S -M ${protocol} -c ${clients}, ${seconds} s: ${tps.toFixed(0)} tps; main thread busy ${((busy / total) * 100).toFixed(0)} % of ${(total / 1e6).toFixed(1)} s sampled`,
      cpuLine,
      `per thread, µs per transaction: ${[...threadsAfter].map(([name, t]) => [name, ((t - (threadsBefore.get(name) ?? 0)) * 10_000) / transactions] as const).filter(([, us]) => us >= 1).sort((a, b) => b[1] - a[1]).map(([name, us]) => `${name} ${us.toFixed(0)}`).join(', ')}`,
      'self time, % of busy:',
      ...top.map(([k, v]) => `${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`),
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

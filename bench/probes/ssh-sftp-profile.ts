// A CPU profile of the SSH gateway's thread during SFTP transfers (the ssh-gateway benchmark's
// configuration: OIDC login, recording into SQLite, strict): one transfer direct, then one through
// the gateway profiled, each by the child probe bench/probes/sftp-transfer.ts. Prints both rates,
// their ratio and the functions with the most self time; writes the .cpuprofile (Chrome DevTools,
// speedscope) and the summary into <out dir>.
//   scripts/node24 node bench/probes/ssh-sftp-profile.ts <put|get> <MiB> <out dir>
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';
import { summarizeProfile, type Profile } from './profile-summary.ts';

registerWorkspaceSources();
const { startSshBenchTarget, sftpTransfer } = await import('../benchmarks/ssh-gateway.ts');
const { sshNativeCrypto } = await import('@custodian/ssh-gateway');

const [direction, mibText, outDir] = process.argv.slice(2);
const mib = Number(mibText);
if ((direction !== 'put' && direction !== 'get') || !(mib >= 1) || outDir === undefined) {
  process.stderr.write('usage: ssh-sftp-profile.ts <put|get> <MiB> <out dir>\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const target = await startSshBenchTarget(outDir);
try {
  const local = join(outDir, 'local.bin');
  const remote = join(target.sshd.dir, 'remote.bin');
  await writeFile(direction === 'put' ? local : remote, randomBytes(mib * 1024 * 1024));
  const run = async (config: object): Promise<{ rate: number; clientCpuSeconds: number }> => {
    const { seconds, clientCpuSeconds } = await sftpTransfer(direction, config, local, remote);
    await rm(direction === 'put' ? remote : local, { force: true });
    return { rate: mib / seconds, clientCpuSeconds };
  };
  const load = loadavg()[0]!.toFixed(1);
  const direct = await run(target.direct);
  // Warm-up through the gateway (login, schema compilation, JIT), not profiled.
  const warmMiB = Math.min(mib, 4);
  await writeFile(direction === 'put' ? local : remote, randomBytes(warmMiB * 1024 * 1024));
  await run(target.through);
  await writeFile(direction === 'put' ? local : remote, randomBytes(mib * 1024 * 1024));
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const cpuBefore = process.cpuUsage();
  const through = await run(target.through);
  const cpu = process.cpuUsage(cpuBefore);
  const gatewayCpuMsPerMiB = (cpu.user + cpu.system) / 1000 / mib;
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  session.disconnect();
  writeFileSync(join(outDir, `ssh-sftp-${direction}.cpuprofile`), JSON.stringify(profile));
  const lines = [
    `sftp ${direction} ${mib} MiB (load ${load} → ${loadavg()[0]!.toFixed(1)}, native crypto ${sshNativeCrypto() ? 'yes' : 'no'}): direct ${direct.rate.toFixed(1)} MiB/s, through the gateway ${through.rate.toFixed(1)} MiB/s = ${(through.rate / direct.rate).toFixed(2)}×`,
    `CPU per MiB: gateway process (all threads, profiler included) ${gatewayCpuMsPerMiB.toFixed(1)} ms; the client ${((direct.clientCpuSeconds * 1000) / mib).toFixed(1)} ms direct, ${((through.clientCpuSeconds * 1000) / mib).toFixed(1)} ms through`,
    ...summarizeProfile(profile, 40),
  ];
  writeFileSync(join(outDir, `ssh-sftp-${direction}.top.txt`), `${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await target.stop();
}

// A CPU profile of the embedded evidence pipeline (the pipeline benchmark's embedded workload:
// sessions in strict mode, publisher → StoreEvidencePipeline → SQLite, a live subscription seeing
// every event). Writes the main thread's .cpuprofile and prints the functions with the most self
// time, as a share of the sampled busy time. CPU µs per event (all threads) is the figure to
// compare under machine load: events/s here is bounded by the disk's fsync rate. Event ids are
// minted in publish order unless the last argument is `session` (see buildWorkload).
//   scripts/node24 node bench/probes/pipeline-cpu-profile.ts <sessions> <commands per session> <out dir> <label> [publish|session]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { SqliteEventStore } = await import('@custodian/event-store-sqlite');
const { StoreEvidencePipeline } = await import('@custodian/evidence-pipeline');
const { buildWorkload, drive } = await import('../benchmarks/pipeline.ts');
const { summarizeProfile } = await import('./profile-summary.ts');
const { percentile } = await import('../measurement.ts');

const [sessionsText, commandsText, outDir, label = 'pipeline', idOrder = 'publish'] = process.argv.slice(2);
const sessions = Number(sessionsText);
const commands = Number(commandsText);
if (!(sessions >= 1) || !(commands >= 1) || outDir === undefined || (idOrder !== 'publish' && idOrder !== 'session')) {
  process.stderr.write('usage: pipeline-cpu-profile.ts <sessions> <commands per session> <out dir> [label] [publish|session]\n');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'custodian-pipeline-profile-'));
const store = await SqliteEventStore.open({ path: join(work, 'embedded.db'), pollIntervalMs: 10 });
const session = new Session();
session.connect();
try {
  const pipeline = new StoreEvidencePipeline({ store, instance: 'bench' });
  await drive(store, buildWorkload(Math.min(sessions, 20), 5), (batch) => pipeline.accept(batch)); // warm-up
  const workload = buildWorkload(sessions, commands, idOrder);
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const cpuBefore = process.cpuUsage();
  const result = await drive(store, workload, (batch) => pipeline.accept(batch));
  const cpu = process.cpuUsage(cpuBefore);
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Parameters<typeof summarizeProfile>[0] };
  await pipeline.close();
  writeFileSync(join(outDir, `${label}.cpuprofile`), JSON.stringify(profile));
  const header =
    `embedded pipeline, ${sessions} sessions × ${commands} commands × 2 events (ids in ${idOrder} order): ${Math.round(result.events / result.seconds)} events/s; ` +
    `process CPU (all threads, profiler included) ${((cpu.user + cpu.system) / result.events).toFixed(1)} µs/event; ` +
    `publish-to-stored p50 ${percentile(result.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(result.latenciesMs, 99).toFixed(1)} ms`;
  const lines = [header, ...summarizeProfile(profile)];
  writeFileSync(join(outDir, `${label}.top.txt`), lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  session.disconnect();
  await store.close();
  rmSync(work, { recursive: true, force: true });
}

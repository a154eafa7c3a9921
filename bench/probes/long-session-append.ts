// Appends to one long stream (a long session): CPU per append, per thread, early and late in the
// stream. Each append is two small events, awaited (strict: COMMIT and fsync before the next), so
// the figures are per commit. A lookup that reads every row of the stream makes the late figure
// grow with the stream's length; an index seek keeps early and late alike.
//   scripts/node24 node bench/probes/long-session-append.ts [appends, default 6000]
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { SqliteEventStore } = await import('@custodian/event-store-sqlite');
const { buildWorkload } = await import('../benchmarks/pipeline.ts');

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

const appends = Number(process.argv[2] ?? 6000);
const work = mkdtempSync(join(tmpdir(), 'custodian-long-session-'));
const store = await SqliteEventStore.open({ path: join(work, 'events.db') });
try {
  const commands = buildWorkload(1, appends)[0]!;
  const part = Math.floor(appends / 5);
  const measure = async (from: number, to: number, label: string): Promise<void> => {
    const before = threadTicks();
    const start = performance.now();
    for (const events of commands.slice(from, to)) await store.append(events[0]!.stream, events, { expectedRevision: 'any' });
    const wallUs = ((performance.now() - start) * 1000) / (to - from);
    const after = threadTicks();
    const perThread = [...after]
      .map(([name, t]) => [name, ((t - (before.get(name) ?? 0)) * 10_000) / (to - from)] as const)
      .filter(([, us]) => us >= 1)
      .map(([name, us]) => `${name} ${us.toFixed(0)}`)
      .join(', ');
    process.stdout.write(`${label} (events ${2 * from}–${2 * to} of the stream): ${wallUs.toFixed(0)} µs wall per append; CPU µs per append: ${perThread}\n`);
  };
  await measure(0, part, 'early');
  for (const events of commands.slice(part, appends - part)) await store.append(events[0]!.stream, events, { expectedRevision: 'any' });
  await measure(appends - part, appends, 'late');
} finally {
  await store.close();
  rmSync(work, { recursive: true, force: true });
}

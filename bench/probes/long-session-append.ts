// Appends to one long stream (a long session): CPU per append, per thread, early and late in the
// stream. Each append is two small events, awaited (strict: COMMIT and fsync before the next), so
// the figures are per commit. A lookup that reads every row of the stream makes the late figure
// grow with the stream's length; an index seek keeps early and late alike.
//   scripts/node24 node bench/probes/long-session-append.ts [appends, default 6000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerWorkspaceSources } from '../workspace-sources.ts';
import { perThreadMicros, threadCpuTicks } from './profile-summary.ts';

registerWorkspaceSources();
const { SqliteEventStore } = await import('@custodian/event-store-sqlite');
const { buildWorkload } = await import('../benchmarks/pipeline.ts');

const appends = Number(process.argv[2] ?? 6000);
const work = mkdtempSync(join(tmpdir(), 'custodian-long-session-'));
const store = await SqliteEventStore.open({ path: join(work, 'events.db') });
try {
  const commands = buildWorkload(1, appends)[0]!;
  const part = Math.floor(appends / 5);
  const measure = async (from: number, to: number, label: string): Promise<void> => {
    const before = threadCpuTicks();
    const start = performance.now();
    for (const events of commands.slice(from, to)) await store.append(events[0]!.stream, events, { expectedRevision: 'any' });
    const wallUs = ((performance.now() - start) * 1000) / (to - from);
    const after = threadCpuTicks();
    const perThread = perThreadMicros(before, after, to - from);
    process.stdout.write(`${label} (events ${2 * from}–${2 * to} of the stream): ${wallUs.toFixed(0)} µs wall per append; CPU µs per append: ${perThread}\n`);
  };
  await measure(0, part, 'early');
  for (const events of commands.slice(part, appends - part)) await store.append(events[0]!.stream, events, { expectedRevision: 'any' });
  await measure(appends - part, appends, 'late');
} finally {
  await store.close();
  rmSync(work, { recursive: true, force: true });
}

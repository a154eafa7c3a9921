// Child process of the event-store-append benchmark: peak RSS is a whole-process figure, so each
// variant runs alone in a fresh process. Prints one JSON line.
//   scripts/node24 node bench/probes/append-peak-rss.ts <store|raw> <count> <database path>
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { SqliteEventStore } = await import('@custodian/event-store-sqlite');
const { makeAppends, RawSqliteTable } = await import('../benchmarks/append-workload.ts');

const [mode, countText, path] = process.argv.slice(2);
const count = Number(countText);
if ((mode !== 'store' && mode !== 'raw') || !Number.isSafeInteger(count) || count < 1 || path === undefined) {
  process.stderr.write('usage: append-peak-rss.ts <store|raw> <count> <database path>\n');
  process.exit(2);
}

const appends = makeAppends(count);
const rssBeforeAppendBytes = process.memoryUsage.rss();
let appended: number;
if (mode === 'store') {
  const store = await SqliteEventStore.open({ path });
  // All in flight at once: the store queues every pending append (the worst case for memory).
  await Promise.all(appends.map((a) => store.append(a.stream, [a.event], { expectedRevision: 'no-stream' })));
  await store.close();
  appended = count;
} else {
  // Commits of 1000 rows, like the store's group commit (the default maxGroupSize).
  const table = new RawSqliteTable(path);
  const jsons = appends.map((a) => JSON.stringify(a.event));
  for (let i = 0; i < jsons.length; i += 1000) table.insertMany(jsons.slice(i, i + 1000));
  appended = table.count();
  table.close();
}
// resourceUsage().maxRSS is in KiB.
process.stdout.write(`${JSON.stringify({ mode, appended, peakRssBytes: process.resourceUsage().maxRSS * 1024, rssBeforeAppendBytes })}\n`);

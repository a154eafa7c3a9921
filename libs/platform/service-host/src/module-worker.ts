// Worker threads that run workspace modules, from sources (tests, benchmarks, `node` on src/*.ts)
// as well as built (dist/*.js). Built, a worker loads its entry like any module. From sources, a
// bare worker can load only `node:` built-ins and third-party packages: workspace packages
// resolve to dist/ (missing or stale) without the `@custodian/source` export condition, the
// sources' NodeNext `./x.js` specifiers name files that do not exist, and Node's type stripping
// refuses parameter properties (EventFactory, SqliteEventStore). Such a worker is started on
// module-worker.bootstrap.ts, which installs resolve and load hooks for exactly this, then
// imports the entry.
import { createRequire } from 'node:module';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const FROM_SOURCES = import.meta.url.endsWith('.ts');
const BOOTSTRAP = new URL(FROM_SOURCES ? './module-worker.bootstrap.ts' : './module-worker.bootstrap.js', import.meta.url);

let swcPinned = false;

/**
 * The bootstrap compiles with SWC, a native addon, which crashes the process (SIGSEGV) when a
 * worker loads it again after another worker that had loaded it ended, unless some thread that
 * lives on keeps it loaded: this one does (from sources only; absent, the bootstrap falls back).
 */
function pinSwc(): void {
  if (swcPinned) return;
  swcPinned = true;
  try {
    createRequire(import.meta.url)('@swc/core');
  } catch {
    // Not installed: the bootstrap uses Node's own transform instead.
  }
}

/**
 * Starts `entry` (a module URL: `new URL('./x.worker.js', import.meta.url)`, or `.ts` from
 * sources) in a worker thread. An entry named `.js` next to a `.ts` caller is taken as its `.ts`
 * source, so callers name their workers once, as the build output names them. `options` are
 * Worker's own; `workerData` and `argv` reach the entry unchanged.
 */
export function startModuleWorker(entry: URL, options: WorkerOptions = {}): Worker {
  const target = FROM_SOURCES && entry.protocol === 'file:' && entry.pathname.endsWith('.js') ? new URL(entry.href.replace(/\.js$/, '.ts')) : entry;
  if (!target.pathname.endsWith('.ts')) return new Worker(target, options);
  pinSwc();
  // The entry goes last in argv; the bootstrap takes it off before the entry runs.
  return new Worker(BOOTSTRAP, { ...options, argv: [...(options.argv ?? []), target.href] });
}

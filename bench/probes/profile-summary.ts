// What the probes print: self time per function of a V8 CPU profile, as a share of the busy
// (non-idle) sampled time, and CPU time per thread of this process.
import { readFileSync, readdirSync } from 'node:fs';

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
export interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export function summarizeProfile(profile: Profile, top = 30): string[] {
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
  // The inspector's own work (serialising the profile at Profiler.stop) is not the measured code's.
  const notMeasured = new Set(['(idle) ', ...[...self.keys()].filter((k) => k.startsWith('post node:inspector'))]);
  const idle = [...notMeasured].reduce((sum, k) => sum + (self.get(k) ?? 0), 0);
  const busy = total - idle;
  const rows = [...self.entries()].filter(([k]) => !notMeasured.has(k)).sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `main thread busy ${((busy / total) * 100).toFixed(0)} % of ${(total / 1e6).toFixed(1)} s sampled; self time, % of busy:`,
    ...rows.map(([k, v]) => `${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`),
  ];
}

/** CPU ticks (user + system, 1/100 s) per thread name of this process, from /proc (Linux). */
export function threadCpuTicks(): Map<string, number> {
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

/** CPU µs per operation of each thread between two threadCpuTicks() readings, busiest first ("MainThread 446, WorkerThread 121"). */
export function perThreadMicros(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, operations: number): string {
  return [...after]
    .map(([name, t]) => [name, ((t - (before.get(name) ?? 0)) * 10_000) / operations] as const)
    .filter(([, us]) => us >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => `${name} ${us.toFixed(0)}`)
    .join(', ');
}

// Two threads write long log lines (far over PIPE_BUF) to one pipe, as the embedded host's two
// threads write to stdout: under the shared lock every line arrives whole.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startModuleWorker } from '@custodian/service-host';
import { lockedFdDestination, newLogLock } from './locked-fd-destination.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-log-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lockedFdDestination', () => {
  it('keeps 200 KiB lines of two threads whole on one pipe', async () => {
    const fifo = join(dir, 'stdout.fifo');
    const out = join(dir, 'out.txt');
    execFileSync('mkfifo', [fifo]);
    // A separate reader drains the pipe, in 64 KiB reads: each long write is taken in pieces.
    const reader = spawn('sh', ['-c', `cat "${fifo}" > "${out}"`]);
    const fd = openSync(fifo, 'w');
    const lock = newLogLock();
    const lines = 40;
    const bytes = 200 * 1024;
    const worker = startModuleWorker(new URL('./testing/locked-log-lines.worker.js', import.meta.url), { workerData: { fd, lock, lines, bytes, char: 'b' } });
    try {
      await once(worker, 'message');
      const destination = lockedFdDestination(lock, fd);
      for (let i = 0; i < lines; i++) destination.write(`${'a'.repeat(bytes)}\n`);
      const [done] = (await once(worker, 'message')) as [string];
      expect(done).toBe('done');
    } finally {
      await worker.terminate();
      closeSync(fd);
    }
    await once(reader, 'close');
    const written = readFileSync(out, 'utf8').split('\n').slice(0, -1);
    expect(written).toHaveLength(2 * lines);
    const whole = written.filter((line) => line === 'a'.repeat(bytes) || line === 'b'.repeat(bytes));
    expect(whole).toHaveLength(2 * lines);
  });
});

// Both threads of the embedded host write their JSON log lines to stdout themselves (the services
// thread's lines do not pass through the gateway's event loop). One write() of a line is atomic on
// a pipe only up to PIPE_BUF (4 KiB), and a line can be longer (an error with its stack): a lock
// shared by the threads keeps each line whole, whoever writes it.
import { writeSync } from 'node:fs';
import type { LogDestination } from '@custodian/observability';

const UNLOCKED = 0;
const LOCKED = 1;

/** The lock two threads share (through workerData): one Int32 in shared memory. */
export function newLogLock(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
}

/** A log destination that writes each line to `fd` whole, under `lock` (synchronously, as the default one does). */
export function lockedFdDestination(lock: SharedArrayBuffer, fd = 1): LogDestination {
  const state = new Int32Array(lock);
  return {
    write(line: string): void {
      const bytes = Buffer.from(line, 'utf8');
      while (Atomics.compareExchange(state, 0, UNLOCKED, LOCKED) !== UNLOCKED) Atomics.wait(state, 0, LOCKED, 10);
      try {
        for (let written = 0; written < bytes.length; ) {
          try {
            written += writeSync(fd, bytes, written);
          } catch (error) {
            // A non-blocking pipe that is full: try again (what pino's synchronous destination does).
            if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
          }
        }
      } finally {
        Atomics.store(state, 0, UNLOCKED);
        Atomics.notify(state, 0, 1);
      }
    },
  };
}

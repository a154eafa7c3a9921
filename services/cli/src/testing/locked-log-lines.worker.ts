// Test fixture (locked-fd-destination.test.ts): writes long log lines to a file descriptor under
// the lock it is given, as the services thread does, while the test's thread does the same.
import { parentPort, workerData } from 'node:worker_threads';
import { lockedFdDestination } from '../locked-fd-destination.js';

const { fd, lock, lines, bytes, char } = workerData as { fd: number; lock: SharedArrayBuffer; lines: number; bytes: number; char: string };
const destination = lockedFdDestination(lock, fd);
parentPort!.postMessage('ready');
for (let i = 0; i < lines; i++) destination.write(`${char.repeat(bytes)}\n`);
parentPort!.postMessage('done');

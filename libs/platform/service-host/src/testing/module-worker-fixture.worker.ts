// A worker for module-worker's test: imports a workspace package (resolved to its sources when
// run from them; EventFactory has parameter properties) and answers with what it computed.
import { parentPort, workerData } from 'node:worker_threads';
import { EventFactory, ManualClock, jcsCanonicalJson } from '@custodian/event-contracts';

const factory = new EventFactory({ service: 'gateway', instance: 'worker' }, new ManualClock(1_800_000_000_000_000n));
const sessionId = '0190c8e2-1111-7aaa-8bbb-0123456789ab';
const event = factory.create({
  type: 'frame.recorded',
  stream: `session-${sessionId}`,
  sequence: 0,
  identity: null,
  payload: { sessionId, direction: 'upstream-to-client', offsetMicros: 0, data: Buffer.from(String(workerData)).toString('base64'), byteLength: String(workerData).length },
});
parentPort!.postMessage({ canonical: jcsCanonicalJson(event), argv: process.argv.slice(2), url: import.meta.url });

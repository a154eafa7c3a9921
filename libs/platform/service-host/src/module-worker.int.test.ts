import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { EventFactory, ManualClock, jcsCanonicalJson } from '@custodian/event-contracts';
import { startModuleWorker } from './module-worker.js';

describe('startModuleWorker', () => {
  it('runs a worker from sources that imports workspace packages (parameter properties included), with its workerData and argv', async () => {
    // Named as the build names it (.js): from sources the .ts beside it runs.
    const worker = startModuleWorker(new URL('./testing/module-worker-fixture.worker.js', import.meta.url), { workerData: 'hello', argv: ['--flag'] });
    try {
      const [message] = (await once(worker, 'message')) as [{ canonical: string; argv: string[]; url: string }];
      const factory = new EventFactory({ service: 'gateway', instance: 'worker' }, new ManualClock(1_800_000_000_000_000n));
      const sessionId = '0190c8e2-1111-7aaa-8bbb-0123456789ab';
      const here = factory.create({
        type: 'frame.recorded',
        stream: `session-${sessionId}`,
        sequence: 0,
        identity: null,
        payload: { sessionId, direction: 'upstream-to-client', offsetMicros: 0, data: Buffer.from('hello').toString('base64'), byteLength: 5 },
      });
      // Same clock, same input: the worker made the same event, except its random UUID part.
      const strip = (json: string) => json.replace(/"(id|correlationId)":"[0-9a-f-]{36}"/g, '"$1":"…"');
      expect(strip(message.canonical)).toBe(strip(jcsCanonicalJson(here)));
      expect(message.argv).toEqual(['--flag']);
      expect(message.url).toMatch(/\/src\/testing\/module-worker-fixture\.worker\.ts$/);
    } finally {
      await worker.terminate();
    }
  });

  it('starts a JavaScript entry (what a build runs) as it is, without the bootstrap', async () => {
    const worker = startModuleWorker(new URL('./testing/plain-worker-fixture.mjs', import.meta.url), { argv: ['--x'] });
    try {
      const [message] = (await once(worker, 'message')) as [{ argv: string[]; url: string }];
      expect(message).toEqual({ argv: ['--x'], url: new URL('./testing/plain-worker-fixture.mjs', import.meta.url).href });
    } finally {
      await worker.terminate();
    }
  });

  it('a worker whose entry fails to load reports the error', async () => {
    const worker = startModuleWorker(new URL('./testing/no-such-worker.js', import.meta.url));
    const [error] = (await once(worker, 'error')) as [Error];
    expect(error.message).toMatch(/no-such-worker/);
  });
});

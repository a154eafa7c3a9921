import { describe, expect, it } from 'vitest';
import { HealthError, HealthRegistry } from './index.js';

describe('HealthRegistry', () => {
  it('ready runs live and ready checks; live runs only live checks', async () => {
    const registry = new HealthRegistry();
    registry.register({ name: 'event-loop', kind: 'live', check: () => undefined });
    registry.register({ name: 'event-store', kind: 'ready', check: () => Promise.reject(new Error('connect ECONNREFUSED esdb://admin:hunter2@db:2113')) });
    const live = await registry.run('live');
    expect(live).toEqual({ kind: 'live', ok: true, checks: [{ name: 'event-loop', ok: true }], failing: [] });
    const ready = await registry.run('ready');
    expect(ready.ok).toBe(false);
    expect(ready.failing).toEqual(['event-store']);
    expect(ready.checks[1]?.error).toContain('ECONNREFUSED');
    expect(ready.checks[1]?.error).not.toContain('hunter2');
  });

  it('a check that never settles fails by its timeout', async () => {
    const registry = new HealthRegistry();
    registry.register({ name: 'hangs', kind: 'ready', timeoutMs: 20, check: () => new Promise<void>(() => undefined) });
    const report = await registry.run('ready');
    expect(report.failing).toEqual(['hangs']);
    expect(report.checks[0]?.error).toBe('HealthError: no answer within 20 ms');
  });

  it('a synchronous throw is a failure, and checks can be removed', async () => {
    const registry = new HealthRegistry();
    const remove = registry.register({ name: 'sync', kind: 'live', check: () => { throw new Error('broken'); } });
    expect((await registry.run('live')).failing).toEqual(['sync']);
    remove();
    expect(await registry.run('live')).toMatchObject({ ok: true, checks: [] });
  });

  it('names are unique', () => {
    const registry = new HealthRegistry();
    registry.register({ name: 'x', kind: 'live', check: () => undefined });
    expect(() => registry.register({ name: 'x', kind: 'ready', check: () => undefined })).toThrow(HealthError);
  });

  it('readiness fails once shutdown begins', async () => {
    const registry = new HealthRegistry();
    registry.register({ name: 'ok', kind: 'ready', check: () => undefined });
    registry.markShuttingDown();
    expect((await registry.run('ready')).failing).toEqual(['shutting-down']);
    expect((await registry.run('live')).ok).toBe(true);
  });
});

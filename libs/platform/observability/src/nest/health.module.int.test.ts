import { describe, expect, it, afterEach } from 'vitest';
import { Module, type DynamicModule } from '@nestjs/common';
import { createLogger, HealthRegistry } from '../index.js';
import { HealthModule, startNestService, type RunningNestService } from '../nest.js';

@Module({})
class ProbeAppModule {
  static register(registry: HealthRegistry, logger: ReturnType<typeof createLogger>): DynamicModule {
    return { module: ProbeAppModule, imports: [HealthModule.register({ registry, logger })] };
  }
}

let running: RunningNestService | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe('HealthModule over a real HTTP server', () => {
  it('answers live 200 and ready 503 with the failing check names only; Nest logs are pino JSON', async () => {
    const chunks: string[] = [];
    const logger = createLogger({ service: 'probe', level: 'info', destination: { write: (s: string) => void chunks.push(s) } });
    const registry = new HealthRegistry();
    let storeUp = true;
    registry.register({ name: 'event-store', kind: 'ready', check: () => { if (!storeUp) throw new Error('ECONNREFUSED esdb://admin:hunter2@db'); } });
    running = await startNestService({ module: ProbeAppModule.register(registry, logger), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });

    const live = await fetch(`${running.url}/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok', checks: [], failing: [] });
    expect((await fetch(`${running.url}/health/ready`)).status).toBe(200);

    storeUp = false;
    const ready = await fetch(`${running.url}/health/ready`);
    expect(ready.status).toBe(503);
    const text = await ready.text();
    expect(JSON.parse(text)).toEqual({ status: 'unavailable', checks: [{ name: 'event-store', ok: false }], failing: ['event-store'] });
    expect(text).not.toContain('ECONNREFUSED');

    const lines = chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.context === 'RoutesResolver' || l.context === 'NestApplication')).toBe(true);
    expect(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('ready checks failing: event-store'))).toBe(true);
    expect(chunks.join('')).not.toContain('hunter2');
  });
});

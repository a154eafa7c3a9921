import { describe, expect, it } from 'vitest';
import { createLogger, type LogDestination } from '@custodian/observability';
import { gatewayLogger } from './gateway-logger.js';

describe('gatewayLogger', () => {
  it('maps the service logger onto the three levels adapters use, with bindings on every line', () => {
    const lines: Record<string, unknown>[] = [];
    const destination: LogDestination = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
    const logger = gatewayLogger(createLogger({ service: 'gateway', level: 'info', destination }), { gateway: 'postgres' });
    logger.info({ sessionId: 's-1' }, 'opened');
    logger.warn({ code: 'X' }, 'odd');
    logger.error({}, 'broken');
    expect(lines.map((l) => [l['level'], l['msg'], l['gateway']])).toEqual([
      ['info', 'opened', 'postgres'],
      ['warn', 'odd', 'postgres'],
      ['error', 'broken', 'postgres'],
    ]);
    expect(lines[0]).toMatchObject({ sessionId: 's-1', service: 'gateway' });
  });
});

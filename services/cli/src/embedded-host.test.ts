// The embedded host wires identity from the configuration; with none it still starts, says the
// API refuses every request, and the API does.
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@custodian/runtime-config';
import { NO_ISSUER_NOTICE } from '@custodian/service-host';
import { startEmbedded } from './embedded-host.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-embedded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('startEmbedded without an identity issuer', () => {
  it('boots, reports that the API refuses every request, and the API answers 401 IDENTITY_NOT_CONFIGURED', async () => {
    const lines: string[] = [];
    const loaded = loadConfig({
      cwd: dir,
      env: {
        CUSTODIAN_DATA_DIR: join(dir, 'data'),
        CUSTODIAN_SERVICES__GATEWAY__ENABLED: 'false',
        CUSTODIAN_SERVICES__INGEST__ENABLED: 'false',
        CUSTODIAN_SERVICES__PROJECTOR__ENABLED: 'false',
        CUSTODIAN_SERVICES__API__HTTP__PORT: '0',
      },
    });
    const host = await startEmbedded(loaded, { logDestination: { write: (line: string) => void lines.push(line) } });
    try {
      expect(host.notices).toEqual([`api: ${NO_ISSUER_NOTICE}`]);
      const warnings = lines.map((l) => JSON.parse(l) as { service: string; level: string; msg: string }).filter((l) => l.level === 'warn');
      expect(warnings).toContainEqual(expect.objectContaining({ service: 'api', msg: NO_ISSUER_NOTICE }));
      const api = host.services.find((s) => s.name === 'api')!;
      expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);
      const version = await fetch(`${api.url}/v1/version`);
      expect(version.status).toBe(401);
      expect(await version.json()).toMatchObject({ error: { code: 'IDENTITY_NOT_CONFIGURED' } });
    } finally {
      await host.stop();
    }
  });
});

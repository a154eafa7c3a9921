import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_PATH, renderConfigTypes } from './config-types.generator.js';
import { configSchema, loadConfig, type CustodianConfig } from './index.js';

describe('config types agree with the schema (one source of truth)', () => {
  it('the generated types are what the generator makes from the current schema', async () => {
    expect(readFileSync(GENERATED_PATH, 'utf8')).toBe(await renderConfigTypes());
  });

  it('every top-level schema key is present after loading, as the generated type promises', () => {
    const config: CustodianConfig = loadConfig({ env: {} }).config;
    expect(Object.keys(config).sort()).toEqual(Object.keys(configSchema().properties ?? {}).sort());
    const serviceKeys: (keyof CustodianConfig['services'])[] = ['gateway', 'ingest', 'projector', 'api'];
    expect(Object.keys(config.services).sort()).toEqual([...serviceKeys].sort());
  });
});

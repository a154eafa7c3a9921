// The dashboard's typed API client is generated from openapi.yaml (`npm run generate:api-client`);
// this fails when someone changes the contract without regenerating it.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const API_DIR = fileURLToPath(new URL('../..', import.meta.url));
const COMMITTED = join(API_DIR, 'web/src/generated/api-schema.ts');
// Resolved from this package (npm may nest it under services/api/node_modules).
const GENERATOR = join(dirname(createRequire(import.meta.url).resolve('openapi-typescript/package.json')), 'bin/cli.js');

describe('dashboard API client', () => {
  it('is generated from the current openapi.yaml', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-api-client-'));
    try {
      const fresh = join(dir, 'api-schema.ts');
      await promisify(execFile)(process.execPath, [GENERATOR, join(API_DIR, 'openapi.yaml'), '-o', fresh]);
      expect(readFileSync(COMMITTED, 'utf8'), 'run npm run generate:api-client').toBe(readFileSync(fresh, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

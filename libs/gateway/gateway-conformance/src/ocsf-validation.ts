// Validates OCSF objects with pydantic-ocsf (PyPI), through the same script and virtualenv the
// @custodian/siem-ocsf tests use (scripts/setup-python.sh provisions .tools/python).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { OcsfEvent } from '@custodian/siem-ocsf';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
export const OCSF_PYTHON = join(ROOT, '.tools/python/bin/python');
const VALIDATOR = join(ROOT, 'libs/evidence/siem-ocsf/scripts/validate-ocsf.py');

export interface OcsfValidationResult {
  readonly index: number;
  readonly class_uid: number;
  readonly class?: string;
  readonly ok: boolean;
  readonly errors: readonly string[];
}

/** Whether the pydantic-ocsf virtualenv is there (else the OCSF case is skipped, saying why). */
export function havePydanticOcsf(): boolean {
  return existsSync(OCSF_PYTHON);
}

export async function validateWithPydanticOcsf(events: readonly OcsfEvent[]): Promise<OcsfValidationResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'custodian-conformance-ocsf-'));
  try {
    const file = join(dir, 'events.json');
    await writeFile(file, JSON.stringify(events));
    const { stdout } = await promisify(execFile)(OCSF_PYTHON, [VALIDATOR, file], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return (JSON.parse(stdout) as { results: OcsfValidationResult[] }).results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

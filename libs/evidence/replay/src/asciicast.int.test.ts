// The exported v2 recording played by a real player: Debian's asciinema 2.2 (`asciinema cat`, which
// reads v1/v2; it needs a terminal, so it runs inside `script`). v3 is checked by the strict parser
// in asciicast.test.ts (Debian's asciinema predates v3).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { toAsciicast } from './asciicast.js';
import { SAMPLE_FRAMES } from './testing/sample-frames.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const asciinema = ['/usr/bin/asciinema', '/usr/local/bin/asciinema'].find((p) => existsSync(p));

describe('asciicast v2 export with asciinema', () => {
  it.skipIf(!asciinema)('asciinema cat prints the recording (needs asciinema: scripts/setup.sh --services)', async () => {
    const file = join(dir, 'session.cast');
    writeFileSync(file, toAsciicast(SAMPLE_FRAMES, { channel: 1, format: 'v2' }));
    const { stdout } = await promisify(execFile)('script', ['-qec', `${asciinema!} cat ${file}`, '/dev/null'], { timeout: 30_000 });
    expect(stdout).toContain('cost €5');
    expect(stdout).toContain('custodian: blocked (rule no-rm)');
  });

  it.skipIf(!asciinema)('asciinema rejects a broken recording (so a pass means something)', async () => {
    const file = join(dir, 'broken.cast');
    writeFileSync(file, '{"version": 7}\n');
    const result = await promisify(execFile)('script', ['-qec', `${asciinema!} cat ${file}`, '/dev/null'], { timeout: 30_000 }).then(
      (r) => r.stdout,
      (e: { stdout?: string }) => `failed ${e.stdout ?? ''}`,
    );
    expect(result).toMatch(/failed|not in asciicast|unsupported|Error/i);
  });
});

// `custodian completion bash`: the script, loaded into a real bash, completes commands, subcommands
// and options as the help texts document them, and file names elsewhere.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function script(): Promise<string> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: dir, waitForStop: () => new Promise(() => undefined) };
  expect(await runCli(['completion', 'bash'], io)).toBe(0);
  expect(stderr).toBe('');
  return stdout;
}

/** What bash offers for the words typed so far (the last one being completed). */
async function complete(words: string[]): Promise<string[]> {
  const file = join(dir, 'custodian.bash');
  writeFileSync(file, await script());
  const line = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _custodian; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const { stdout } = await promisify(execFile)('/bin/bash', ['-c', line], { cwd: dir });
  return stdout.split('\n').filter((w) => w !== '');
}

describe('custodian completion bash', () => {
  it('completes commands, subcommands and the options each command documents', async () => {
    expect(await complete(['custodian', 'ev'])).toEqual(['evidence']);
    expect(await complete(['custodian', ''])).toEqual(expect.arrayContaining(['start', 'config', 'policy', 'log', 'evidence', 'verify', 'store', 'approvals', 'version', 'completion']));
    expect(await complete(['custodian', 'approvals', ''])).toEqual(['list', 'show', 'approve', 'deny']);
    expect(await complete(['custodian', 'evidence', ''])).toEqual(['export', 'verify']);
    expect(await complete(['custodian', 'evidence', 'export', '--fr'])).toEqual(['--from']);
    expect(await complete(['custodian', 'log', 'verify', '--k'])).toEqual(['--key']);
    expect(await complete(['custodian', 'start', '--d'])).toEqual(['--demo']);
    expect(await complete(['custodian', 'config', ''])).toEqual(['check']);
    expect(await complete(['custodian', 'policy', 'test', '--iden'])).toEqual(['--identity']);
    expect(await complete(['custodian', 'store', ''])).toEqual(['copy']);
  });

  it('completes file names where a value goes', async () => {
    writeFileSync(join(dir, 'custodian.yaml'), '{}');
    expect(await complete(['custodian', 'start', '--config', 'custodian.y'])).toEqual(['custodian.yaml']);
  });

  it('refuses other shells with the usage', async () => {
    let stderr = '';
    const io: CliIo = { stdout: () => undefined, stderr: (t) => (stderr += t), env: {}, cwd: dir, waitForStop: () => new Promise(() => undefined) };
    expect(await runCli(['completion', 'fish'], io)).toBe(2);
    expect(stderr).toContain('completion supports bash only');
  });
});

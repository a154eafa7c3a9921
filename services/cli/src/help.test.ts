// Every subcommand answers --help (and -h) with its usage on stdout and exit 0, before doing anything.
import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from './index.js';

const SUBCOMMANDS = [
  ['start'],
  ['start', '--demo'],
  ['config', 'check'],
  ['policy', 'test'],
  ['log'],
  ['log', 'verify'],
  ['log', 'keygen'],
  ['evidence'],
  ['evidence', 'export'],
  ['evidence', 'verify'],
  ['verify'],
  ['approvals'],
  ['approvals', 'list'],
  ['approvals', 'show'],
  ['approvals', 'approve'],
  ['approvals', 'deny'],
  ['version'],
  ['completion'],
  ['completion', 'bash'],
];

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: '/nonexistent-cwd', waitForStop: () => new Promise(() => undefined) };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

describe('custodian <subcommand> --help', () => {
  for (const sub of SUBCOMMANDS) {
    for (const flag of ['--help', '-h']) {
      it(`${sub.join(' ')} ${flag}`, async () => {
        const { code, stdout, stderr } = await run([...sub, flag]);
        expect(stderr).toBe('');
        expect(code).toBe(0);
        expect(stdout).toMatch(/Usage|custodian/);
      });
    }
  }
});

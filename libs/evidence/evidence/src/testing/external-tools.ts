// Tools no one at Custodian wrote, used by the interop tests: the Go verifier built on
// golang.org/x/mod/sumdb/note + transparency-dev/merkle (tools/tlog-verify-go), cosign (built from
// the Go module proxy by tools/cosign/install.sh) and compliance-trestle (scripts/setup-python.sh).
// Each is optional: tests skip, saying why, when one is missing.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
const TLOG_TOOL_DIR = join(REPO_ROOT, 'tools/tlog-verify-go');

export function findGo(): string | undefined {
  for (const candidate of ['go', '/usr/local/go/bin/go', '/usr/lib/go/bin/go']) {
    if (spawnSync(candidate, ['version'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  return undefined;
}

/** Builds tools/tlog-verify-go (cached per source hash and Go version, as the transparency-log interop test does). */
export function buildTlogVerifyGo(go: string): string {
  const version = spawnSync(go, ['version'], { encoding: 'utf8' }).stdout.trim();
  const hash = createHash('sha256').update(version);
  for (const file of ['main.go', 'header.go', 'pack.go', 'go.mod', 'go.sum']) hash.update(file).update(readFileSync(join(TLOG_TOOL_DIR, file)));
  const dir = join(homedir(), '.cache', 'custodian', 'tlog-verify-go', hash.digest('hex').slice(0, 32));
  const binary = join(dir, 'tlog-verify-go');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  const built = spawnSync(go, ['build', '-mod=readonly', '-o', partial, '.'], { cwd: TLOG_TOOL_DIR, encoding: 'utf8', env: { ...process.env, GOFLAGS: '-buildvcs=false' } });
  if (built.status !== 0) throw new Error(`go build of ${TLOG_TOOL_DIR} failed:\n${built.stderr}`);
  renameSync(partial, binary);
  return binary;
}

export function findCosign(): string | undefined {
  for (const candidate of [join(REPO_ROOT, '.tools/go-bin/cosign'), 'cosign']) {
    if (spawnSync(candidate, ['version'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  return undefined;
}

export function findTrestlePython(): string | undefined {
  const python = join(REPO_ROOT, '.tools/python/bin/python');
  return spawnSync(python, ['-c', 'import trestle'], { encoding: 'utf8' }).status === 0 ? python : undefined;
}

export const unshareWorks = spawnSync('unshare', ['-n', 'true']).status === 0;

/** Runs a command with no network at all when the machine allows it (a new, empty network namespace). */
export function runOffline(command: string, args: readonly string[], options: { cwd?: string } = {}): SpawnSyncReturns<string> & { offline: boolean } {
  const result = unshareWorks ? spawnSync('unshare', ['-n', command, ...args], { ...options, encoding: 'utf8' }) : spawnSync(command, args, { ...options, encoding: 'utf8' });
  return Object.assign(result, { offline: unshareWorks });
}

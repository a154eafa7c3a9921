import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cliVersion, EXIT, runCli, type CliIo } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(env: Record<string, string> = {}, stop: Promise<string> = new Promise(() => undefined)) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env, cwd: dir, waitForStop: () => stop };
  return { io: value, stdout: () => out.join(''), stderr: () => err.join('') };
}

describe('custodian CLI (in process)', () => {
  it('--help and version', async () => {
    const help = io();
    expect(await runCli(['--help'], help.io)).toBe(EXIT.ok);
    expect(help.stdout()).toContain('custodian <command>');
    expect(help.stdout()).toContain('config check');
    const version = io();
    expect(await runCli(['version'], version.io)).toBe(EXIT.ok);
    expect(version.stdout()).toBe(`custodian ${cliVersion()}\n`);
  });

  it('unknown commands and options are usage errors (exit 2)', async () => {
    const unknown = io();
    expect(await runCli(['launch'], unknown.io)).toBe(EXIT.usage);
    expect(unknown.stderr()).toContain('unknown command: launch');
    const badOption = io();
    expect(await runCli(['start', '--colour'], badOption.io)).toBe(EXIT.usage);
    expect(badOption.stderr()).toContain('--colour');
    expect(await runCli([], io().io)).toBe(EXIT.usage);
  });

  it('config check prints the effective config with secrets redacted', async () => {
    const file = join(dir, 'custodian.yaml');
    writeFileSync(file, 'deployment: distributed\neventStore: { kind: eventstoredb, connectionString: "esdb://db:2113?tls=false&token=abc" }\n');
    const run = io({ CUSTODIAN_SERVICES__API__HTTP__PORT: '9000' });
    expect(await runCli(['config', 'check', '--config', file], run.io)).toBe(EXIT.ok);
    const effective = parse(run.stdout()) as Record<string, unknown>;
    expect(effective).toMatchObject({
      deployment: 'distributed',
      eventStore: { kind: 'eventstoredb', connectionString: '[redacted]' },
      services: { api: { http: { host: '127.0.0.1', port: 9000 } } },
    });
    expect(run.stdout()).not.toContain('token=abc');
    expect(run.stderr()).toContain(`config OK (${file}; overridden by CUSTODIAN_SERVICES__API__HTTP__PORT)`);
  });

  it('config check reports file, key and line of a bad key, exit 2, without echoing secrets', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'eventStore:\n  kind: eventstoredb\n  connectionString: esdb://admin:Very-Secret-1@db:2113\nlog:\n  levle: debug\n');
    const run = io();
    expect(await runCli(['config', 'check', '-c', file], run.io)).toBe(EXIT.usage);
    expect(run.stderr()).toContain(`${file}:5:3: log.levle`);
    expect(run.stderr()).toContain(`${file}:3:3: eventStore.connectionString`);
    expect(run.stderr()).not.toContain('Very-Secret-1');
    expect(run.stdout()).toBe('');
  });
});

describe('custodian start (in process)', () => {
  it('starts all four services on the configured ports, then stops on the stop signal', async () => {
    let requestStop!: (signal: string) => void;
    const stop = new Promise<string>((resolve) => (requestStop = resolve));
    const env = {
      CUSTODIAN_DATA_DIR: join(dir, 'data'),
      CUSTODIAN_LOG__LEVEL: 'warn',
      CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: '0',
      CUSTODIAN_SERVICES__INGEST__HTTP__PORT: '0',
      CUSTODIAN_SERVICES__PROJECTOR__HTTP__PORT: '0',
      CUSTODIAN_SERVICES__API__HTTP__PORT: '0',
    };
    const run = io(env, stop);
    const exit = runCli(['start'], run.io);
    const urls = await waitFor(() => {
      const found = [...run.stderr().matchAll(/^\s+(gateway|ingest|projector|api)\s+(http:\/\/\S+)/gm)].map((m) => [m[1], m[2]] as const);
      return found.length === 4 ? new Map(found) : undefined;
    });
    expect([...urls.keys()]).toEqual(['gateway', 'ingest', 'projector', 'api']);
    for (const url of urls.values()) expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect(run.stderr()).toContain(`event store: sqlite ${join(dir, 'data', 'events.sqlite')}`);
    requestStop('SIGTERM');
    expect(await exit).toBe(EXIT.ok);
    expect(run.stderr()).toContain('custodian: stopped');
    await expect(fetch(`${urls.get('api')}/health/live`)).rejects.toThrow();
  });
});

async function waitFor<T>(probe: () => T | undefined, attempts = 200): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met');
}

// Test-only: the official MCP Python SDK (mcp 2.x, provisioned into .tools/python by
// scripts/setup-python.sh), which speaks the stateless era (2026-07-28) that the TypeScript SDK 1.x
// does not: an upstream server (dual-era, on one endpoint) and a client scenario runner.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../../../..');
export const PYTHON_SDK_PYTHON = join(ROOT, '.tools/python/bin/python');
const SCRIPTS = join(here, 'python');
/** A stdio MCP server of both eras (Python SDK), for stdio connections: run with PYTHON_SDK_PYTHON. */
export const PYTHON_STDIO_SERVER = join(SCRIPTS, 'stdio_server.py');
/** The same server behind a stand-in that refuses `initialize` (-32022): a stdio server of the 2026-07-28 era only. */
export const PYTHON_STDIO_MODERN_ONLY_SERVER = join(SCRIPTS, 'stdio_modern_only.py');

/** Whether the Python SDK is installed (scripts/setup-python.sh). */
export function pythonSdkAvailable(): boolean {
  return existsSync(PYTHON_SDK_PYTHON);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  return typeof address === 'object' && address ? address.port : 0;
}

export interface PythonUpstream {
  readonly url: string;
  /** Every Authorization header value the server received. */
  readonly authorizations: string[];
  /** `<Mcp-Method header> <MCP-Protocol-Version header>` of every POST it received. */
  readonly posts: string[];
  stop(): Promise<void>;
}

/** Runs a Python server script on a free port until it prints `READY <port>`; `onLine` sees every other stdout line. */
async function spawnPythonServer(script: string, args: readonly string[], env: Readonly<Record<string, string>>, onLine: (line: string) => void): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(PYTHON_SDK_PYTHON, [join(SCRIPTS, script), String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  let pending = '';
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`the Python MCP server did not start: ${log}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line === `READY ${port}`) {
          clearTimeout(timer);
          ready();
        } else onLine(line);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.once('exit', (code) => fail(new Error(`the Python MCP server exited (${code}): ${log}`)));
  });
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `modernOnly`: the server refuses `initialize` (-32022), as a server of the 2026-07-28 era only does. */
export async function startPythonUpstream(options: { readonly modernOnly?: boolean } = {}): Promise<PythonUpstream> {
  const authorizations: string[] = [];
  const posts: string[] = [];
  const server = await spawnPythonServer('stateless_server.py', options.modernOnly ? ['modern-only'] : [], {}, (line) => {
    if (line.startsWith('AUTH ')) authorizations.push(line.slice(5));
    else if (line.startsWith('ERA ')) posts.push(line.slice(4));
  });
  return { url: `http://127.0.0.1:${server.port}/mcp`, authorizations, posts, stop: () => server.stop() };
}

export interface PythonConformanceUpstream {
  readonly url: string;
  /** `<tool> <JSON arguments>` of every tool call the server ran. */
  readonly calls: string[];
  stop(): Promise<void>;
}

/** The conformance suite's upstream in the stateless era (2026-07-28 only): accepts `credential` only, returns `piiValue` from lookup_customer. */
export async function startPythonConformanceUpstream(setup: { readonly credential: string; readonly piiValue: string }): Promise<PythonConformanceUpstream> {
  const calls: string[] = [];
  const server = await spawnPythonServer('conformance_server.py', [], { CONFORMANCE_CREDENTIAL: setup.credential, CONFORMANCE_PII: setup.piiValue }, (line) => {
    if (line.startsWith('CALL ')) calls.push(line.slice(5));
  });
  return { url: `http://127.0.0.1:${server.port}/mcp`, calls, stop: () => server.stop() };
}

export interface PythonClientCall {
  readonly tool: string;
  readonly result?: { readonly content?: { readonly type: string; readonly text?: string }[]; readonly isError?: boolean; readonly structuredContent?: unknown };
  readonly error?: { readonly code: number; readonly message: string; readonly data?: unknown };
}

export interface PythonClientRun {
  readonly protocolVersion: string;
  readonly tools: string[];
  readonly calls: PythonClientCall[];
  readonly elicitations: { readonly message?: string }[];
}

/** Runs the Python SDK client (mode auto) against an MCP endpoint: lists tools, then calls each `[tool, arguments]`. */
export async function runPythonClient(url: string, token: string, calls: readonly (readonly [string, Record<string, unknown>])[]): Promise<PythonClientRun> {
  const args = [join(SCRIPTS, 'client_scenario.py'), url, token, ...calls.flatMap(([tool, argumentsValue]) => [tool, JSON.stringify(argumentsValue)])];
  const { stdout } = await promisify(execFile)(PYTHON_SDK_PYTHON, args, { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 });
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as PythonClientRun;
}

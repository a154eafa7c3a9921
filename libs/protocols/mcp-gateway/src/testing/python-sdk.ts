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

/** `modernOnly`: the server refuses `initialize` (-32022), as a server of the 2026-07-28 era only does. */
export async function startPythonUpstream(options: { readonly modernOnly?: boolean } = {}): Promise<PythonUpstream> {
  const port = await freePort();
  const child: ChildProcess = spawn(PYTHON_SDK_PYTHON, [join(SCRIPTS, 'stateless_server.py'), String(port), ...(options.modernOnly ? ['modern-only'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const authorizations: string[] = [];
  const posts: string[] = [];
  let log = '';
  let pending = '';
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`the Python MCP server did not start: ${log}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('AUTH ')) authorizations.push(line.slice(5));
        else if (line.startsWith('ERA ')) posts.push(line.slice(4));
        else if (line === `READY ${port}`) {
          clearTimeout(timer);
          ready();
        }
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.once('exit', (code) => fail(new Error(`the Python MCP server exited (${code}): ${log}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    authorizations,
    posts,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      child.kill('SIGTERM');
      await exited;
    },
  };
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

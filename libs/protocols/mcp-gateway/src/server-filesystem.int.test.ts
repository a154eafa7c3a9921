// The MCP gateway running @modelcontextprotocol/server-filesystem (npm) as a stdio connection (one
// child process per session): reads allowed by annotation, a write inside the allowed path allowed by
// an argument rule, a write outside it refused by the gateway before the server sees it.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpFixture, type McpFixture } from './testing/gateway-fixture.js';

describe('MCP gateway running @modelcontextprotocol/server-filesystem over stdio', () => {
  let fx: McpFixture;
  let allowed: string;
  let outside: string;
  const serviceToken = `stdio-${randomBytes(16).toString('base64url')}`;
  beforeAll(async () => {
    allowed = mkdtempSync(join(tmpdir(), 'custodian-mcp-fs-'));
    outside = mkdtempSync(join(tmpdir(), 'custodian-mcp-outside-'));
    writeFileSync(join(allowed, 'notes.txt'), 'contact ann.smith@example.com\n');
    const require = createRequire(import.meta.url);
    const entry = join(dirname(require.resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
    fx = await startMcpFixture({
      extraConnections: [
        { name: 'files', upstream: { command: process.execPath, args: [entry, allowed], timeoutMs: 20_000 } },
        {
          name: 'env-probe',
          upstream: {
            command: process.execPath,
            args: [join(dirname(fileURLToPath(import.meta.url)), 'testing/stdio-env-server.mjs')],
            env: { LOG_LEVEL: 'warn' },
            credential: { env: 'SERVICE_TOKEN', ref: 'env:SERVICE_TOKEN', read: () => serviceToken },
          },
        },
      ],
      extraRules: `
  - id: files-writes-in-workdir
    match: { identity: { groups: [analysts] }, mcp: { servers: [files], tools: [write_file], arguments: { "$.path": { pattern: ["${allowed}/*"] } } } }
    decision: allow
`,
    });
  }, 60_000);
  afterAll(async () => {
    await fx?.stop();
    rmSync(allowed, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('reads (masked), writes inside the allowed path, and refuses a write outside it before the server sees it', async () => {
    const { client, transport } = await fx.connect(await fx.token('agent'), 'files');
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['read_text_file', 'write_file', 'list_directory']));
    const read = await client.callTool({ name: 'read_text_file', arguments: { path: join(allowed, 'notes.txt') } });
    expect(JSON.stringify(read.content)).toContain('contact [REDACTED:pii-email]');
    const written = await client.callTool({ name: 'write_file', arguments: { path: join(allowed, 'out.txt'), content: 'fine' } });
    expect(written.isError).not.toBe(true);
    expect(readFileSync(join(allowed, 'out.txt'), 'utf8')).toBe('fine');
    const refused = await client.callTool({ name: 'write_file', arguments: { path: join(outside, 'evil.txt'), content: 'nope' } }).catch((error: unknown) => error as McpError);
    expect(refused.message).toContain('(the default deny)');
    expect(existsSync(join(outside, 'evil.txt'))).toBe(false);
    // A path that only looks inside: the pattern is matched against where `<allowed>/../x` leads,
    // so the gateway refuses it (default deny) before the server's own allowed-directory check.
    const sneaky = await client
      .callTool({ name: 'write_file', arguments: { path: `${allowed}/../${outside.split('/').pop()}/evil2.txt`, content: 'nope' } })
      .catch((error: unknown) => error as McpError);
    expect((sneaky as McpError).message).toContain('(the default deny)');
    expect(existsSync(join(outside, 'evil2.txt'))).toBe(false);
    await transport.terminateSession();
    await client.close();
  });

  it('a stdio server gets its credential in its environment, and nothing of the gateway environment but PATH; the custody statement says it was not exposed', async () => {
    const { client, transport } = await fx.connect(await fx.token('agent'), 'env-probe');
    const result = await client.callTool({ name: 'environment', arguments: {} });
    const seen = JSON.parse((result.content as { text: string }[])[0]!.text) as { credentialSha256: string; names: string[] };
    expect(seen.credentialSha256).toBe(createHash('sha256').update(serviceToken).digest('hex'));
    expect(seen.names.filter((name) => !['PATH', 'LOG_LEVEL', 'SERVICE_TOKEN'].includes(name))).toEqual([]);
    await transport.terminateSession();
    await client.close();
    const events = await fx.events();
    const injected = events.filter((e) => e.type === 'credential.injected' && (e.payload as { credentialRef: string }).credentialRef === 'env:SERVICE_TOKEN');
    expect(injected.map((e) => (e.payload as { method: string }).method)).toEqual(['api-key']);
    const stream = injected[0]!.stream;
    const attested = events.filter((e) => e.type === 'custody.attested' && e.stream === stream);
    expect(attested.length).toBe(1);
    expect((attested[0]!.payload as { exposed?: unknown }).exposed).toBe(false);
    expect(JSON.stringify(events)).not.toContain(serviceToken);
  });
});

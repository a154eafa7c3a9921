// Test-only: an MCP server over stdio built with the official TypeScript SDK, reporting what the
// gateway put in its environment (a SHA-256 of the credential, never the value itself, and which
// of the gateway's own variables leaked in).
import { createHash } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const server = new McpServer({ name: 'custodian-stdio-env', version: '1.0.0' });
server.registerTool('environment', { description: 'Describes the environment.', annotations: { readOnlyHint: true } }, async () => ({
  content: [
    {
      type: 'text',
      text: JSON.stringify({
        credentialSha256: createHash('sha256').update(process.env['SERVICE_TOKEN'] ?? '').digest('hex'),
        names: Object.keys(process.env).sort(),
      }),
    },
  ],
}));
await server.connect(new StdioServerTransport());

// Tool-definition pinning ("rug pull" defence): each tool's name, description, input and output
// schema and annotations are fingerprinted; the pins themselves live in the event log
// (@custodian/tool-pins, stream `mcp-tools-<connection>`), so they survive restarts and a human
// accepts a changed definition through the API.
import { createHash } from 'node:crypto';
import { canonicalJson } from './json-rpc.js';

export function toolFingerprint(tool: Record<string, unknown>): string {
  const defining = { name: tool['name'], description: tool['description'], inputSchema: tool['inputSchema'], outputSchema: tool['outputSchema'], annotations: tool['annotations'] };
  return createHash('sha256').update(canonicalJson(defining)).digest('hex');
}

// JSON-RPC 2.0 as MCP uses it (no batches since 2025-06-18): the gateway parses every message to
// decide it and never forwards one it cannot classify.
import { McpGatewayError } from './gateway-errors.js';

export type JsonRpcId = string | number;

export type JsonRpcMessage =
  | { readonly kind: 'request'; readonly id: JsonRpcId; readonly method: string; readonly params: Record<string, unknown> | undefined }
  | { readonly kind: 'notification'; readonly method: string; readonly params: Record<string, unknown> | undefined }
  | { readonly kind: 'response'; readonly id: JsonRpcId | null; readonly result?: unknown; readonly error?: unknown };

/** JSON-RPC and MCP error codes the gateway answers with. */
export const JsonRpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** A call the policy (or the gateway) refused; `data.code` says why and `data.ruleId` which rule. */
  PolicyRefused: -32001,
  /** Stateless era: `Mcp-Method` / `Mcp-Name` headers that do not match the body. */
  HeaderMismatch: -32020,
  /** Stateless era: a protocol version the server (or the gateway for this connection) does not serve; `data.supported` lists what it does. */
  UnsupportedProtocolVersion: -32022,
} as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
}

/** Parses one message; throws McpGatewayError MESSAGE_MALFORMED naming what is wrong. */
export function parseJsonRpc(text: string): JsonRpcMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new McpGatewayError('MESSAGE_MALFORMED', 'the body is not JSON');
  }
  if (Array.isArray(value)) throw new McpGatewayError('MESSAGE_MALFORMED', 'JSON-RPC batches are not supported (removed in MCP 2025-06-18)');
  if (!isObject(value) || value['jsonrpc'] !== '2.0') throw new McpGatewayError('MESSAGE_MALFORMED', 'not a JSON-RPC 2.0 message');
  const { method, params, id } = value;
  if (method !== undefined) {
    if (typeof method !== 'string' || method === '') throw new McpGatewayError('MESSAGE_MALFORMED', 'method must be a non-empty string');
    if (params !== undefined && !isObject(params)) throw new McpGatewayError('MESSAGE_MALFORMED', 'params must be an object');
    if (id === undefined) return { kind: 'notification', method, params };
    if (!isId(id)) throw new McpGatewayError('MESSAGE_MALFORMED', 'id must be a string or an integer');
    return { kind: 'request', id, method, params };
  }
  if (id !== null && !isId(id)) throw new McpGatewayError('MESSAGE_MALFORMED', 'a response needs an id');
  if (!('result' in value) && !('error' in value)) throw new McpGatewayError('MESSAGE_MALFORMED', 'a message needs a method, a result or an error');
  return { kind: 'response', id: id as JsonRpcId | null, ...('result' in value ? { result: value['result'] } : {}), ...('error' in value ? { error: value['error'] } : {}) };
}

export function jsonRpcError(id: JsonRpcId | null, code: number, message: string, data?: Record<string, unknown>): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data ? { data } : {}) } });
}

/** Sorted keys, no whitespace: the same arguments always give the same text (approval digests bind it). */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
  return `{${entries.join(',')}}`;
}

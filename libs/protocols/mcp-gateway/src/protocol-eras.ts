// The two MCP protocol eras the gateway speaks. Session era (2025-03-26 … 2025-11-25): `initialize`,
// `Mcp-Session-Id`, a GET stream. Stateless era (2026-07-28): no handshake and no session; every
// request carries its protocol version and client capabilities in `params._meta`, and over HTTP the
// `MCP-Protocol-Version`, `Mcp-Method` and (for tools/call, prompts/get, resources/read) `Mcp-Name`
// headers, which must agree with the body. This module is the stateless request's validation ladder,
// in the order the 2026-07-28 servers apply it: envelope, headers, then the version.
import { JsonRpcErrorCode } from './json-rpc.js';

export const MODERN_PROTOCOL_VERSIONS: readonly string[] = ['2026-07-28'];
export const HANDSHAKE_PROTOCOL_VERSIONS: readonly string[] = ['2025-11-25', '2025-06-18', '2025-03-26'];
export const LATEST_MODERN_VERSION = '2026-07-28';

export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES_META_KEY = 'io.modelcontextprotocol/clientCapabilities';
export const CLIENT_INFO_META_KEY = 'io.modelcontextprotocol/clientInfo';

/** Method → the params key mirrored in the `Mcp-Name` header. */
export const NAME_BEARING_METHODS: Readonly<Record<string, string>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

const ROUTING_HEADERS = new Set(['mcp-protocol-version', 'mcp-method', 'mcp-name']);
const BASE64_SENTINEL = /^=\?base64\?(.*)\?=$/;
const HEADER_SAFE = /^[\x20-\x7E]*$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A header value as sent: verbatim when it survives HTTP, else wrapped as `=?base64?…?=`. */
export function encodeHeaderValue(value: string): string {
  if (HEADER_SAFE.test(value) && value === value.trim() && !BASE64_SENTINEL.test(value)) return value;
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The inverse of encodeHeaderValue; undefined for a malformed sentinel (so it never matches a body value). */
export function decodeHeaderValue(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = BASE64_SENTINEL.exec(value);
  if (!match) return value;
  const payload = match[1]!;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) return undefined;
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.toString('base64') !== payload) return undefined;
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}

/** The stateless era's routing headers for one message (what the gateway sends an upstream of that era). */
export function routingHeaders(method: string, params: Record<string, unknown> | undefined, version: string): Record<string, string> {
  const headers: Record<string, string> = { 'mcp-protocol-version': version, 'mcp-method': method };
  const key = NAME_BEARING_METHODS[method];
  const name = key === undefined ? undefined : params?.[key];
  if (typeof name === 'string') headers['mcp-name'] = encodeHeaderValue(name);
  return headers;
}

/** Whether a session-less message is of the stateless era (its `_meta` or its version header says so). */
export function isStatelessMessage(params: Record<string, unknown> | undefined, versionHeader: string | undefined): boolean {
  const meta = params?.['_meta'];
  if (isObject(meta) && PROTOCOL_VERSION_META_KEY in meta) return true;
  return versionHeader !== undefined && !HANDSHAKE_PROTOCOL_VERSIONS.includes(versionHeader) && versionHeader !== '2024-11-05';
}

export interface StatelessEnvelope {
  readonly protocolVersion: string;
  readonly clientCapabilities: unknown;
  readonly clientInfo: unknown;
}

export interface StatelessRejection {
  readonly status: number;
  readonly code: number;
  readonly message: string;
  readonly data?: Record<string, unknown>;
}

/**
 * The validation ladder of a stateless-era message: `_meta` carries the version and capabilities
 * (-32602); no routing header is repeated, and `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
 * equal the body (-32020: a client that disagrees with itself is told so before anything else);
 * the version is one the gateway serves (-32022 with `supported`). All are HTTP 400.
 */
export function checkStatelessMessage(method: string, params: Record<string, unknown> | undefined, rawHeaders: readonly string[], headers: Readonly<Record<string, string | string[] | undefined>>): StatelessEnvelope | StatelessRejection {
  const meta = params?.['_meta'];
  if (!isObject(meta) || !(PROTOCOL_VERSION_META_KEY in meta) || !(CLIENT_CAPABILITIES_META_KEY in meta)) {
    return { status: 400, code: JsonRpcErrorCode.InvalidParams, message: `params._meta must carry ${PROTOCOL_VERSION_META_KEY} and ${CLIENT_CAPABILITIES_META_KEY}` };
  }
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!ROUTING_HEADERS.has(name)) continue;
    if (seen.has(name)) return { status: 400, code: JsonRpcErrorCode.HeaderMismatch, message: `the ${name} header is sent more than once` };
    seen.add(name);
  }
  const version = meta[PROTOCOL_VERSION_META_KEY];
  const header = (name: string): string | undefined => {
    const value = headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  if (header('mcp-protocol-version') === undefined || header('mcp-protocol-version') !== version) {
    return { status: 400, code: JsonRpcErrorCode.HeaderMismatch, message: 'the MCP-Protocol-Version header does not match params._meta' };
  }
  if (header('mcp-method') !== method) return { status: 400, code: JsonRpcErrorCode.HeaderMismatch, message: 'the Mcp-Method header does not match the body\'s method' };
  const key = NAME_BEARING_METHODS[method];
  if (key !== undefined) {
    const bodyValue = params?.[key];
    if (bodyValue !== undefined && decodeHeaderValue(header('mcp-name')) !== bodyValue) {
      return { status: 400, code: JsonRpcErrorCode.HeaderMismatch, message: `the Mcp-Name header does not match the body's ${key}` };
    }
  }
  if (typeof version !== 'string') return { status: 400, code: JsonRpcErrorCode.InvalidParams, message: 'the protocol version in params._meta must be a string' };
  if (!MODERN_PROTOCOL_VERSIONS.includes(version)) {
    return { status: 400, code: JsonRpcErrorCode.UnsupportedProtocolVersion, message: 'Unsupported protocol version', data: { supported: [...MODERN_PROTOCOL_VERSIONS], requested: version } };
  }
  return { protocolVersion: version, clientCapabilities: meta[CLIENT_CAPABILITIES_META_KEY], clientInfo: meta[CLIENT_INFO_META_KEY] };
}

export function isRejection(value: StatelessEnvelope | StatelessRejection): value is StatelessRejection {
  return 'status' in value;
}

import { describe, expect, it } from 'vitest';
import { checkStatelessMessage, decodeHeaderValue, encodeHeaderValue, isRejection, isStatelessMessage, routingHeaders } from './protocol-eras.js';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

function raw(headers: Record<string, string>): string[] {
  return Object.entries(headers).flat();
}

describe('stateless-era routing headers', () => {
  it('header values round-trip: plain ASCII verbatim, anything else as =?base64?…?=', () => {
    for (const value of ['lookup', 'file:///srv/a b.txt', ' edge ', 'naïve🙂', 'line\nbreak', '=?base64?abc?=']) {
      const encoded = encodeHeaderValue(value);
      expect(encoded).toMatch(/^[\x20-\x7E]*$/);
      expect(decodeHeaderValue(encoded)).toBe(value);
    }
    expect(encodeHeaderValue('lookup')).toBe('lookup');
    // A malformed or non-canonical sentinel decodes to nothing, so it never matches a body value.
    expect(decodeHeaderValue('=?base64?not base64?=')).toBeUndefined();
    expect(decodeHeaderValue('=?base64?YR==?=')).toBeUndefined();
  });

  it('routingHeaders mirrors the method and the name-bearing parameter', () => {
    expect(routingHeaders('tools/call', { name: 'naïve' }, '2026-07-28')).toEqual({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': encodeHeaderValue('naïve') });
    expect(routingHeaders('resources/read', { uri: 'file:///a' }, '2026-07-28')['mcp-name']).toBe('file:///a');
    expect(routingHeaders('tools/list', {}, '2026-07-28')['mcp-name']).toBeUndefined();
  });

  it('a session-less message is stateless when its _meta or its version header says so', () => {
    expect(isStatelessMessage({ _meta: META }, undefined)).toBe(true);
    expect(isStatelessMessage({}, '2026-07-28')).toBe(true);
    expect(isStatelessMessage({}, '2025-11-25')).toBe(false);
    expect(isStatelessMessage(undefined, undefined)).toBe(false);
  });

  it('the ladder: envelope (-32602), duplicated or disagreeing headers (-32020), then the version (-32022)', () => {
    const good = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'lookup' };
    const params = { name: 'lookup', _meta: META };
    const ok = checkStatelessMessage('tools/call', params, raw(good), good);
    expect(isRejection(ok)).toBe(false);
    const code = (method: string, p: Record<string, unknown> | undefined, headers: Record<string, string>, rawHeaders = raw(headers)): number | undefined => {
      const outcome = checkStatelessMessage(method, p, rawHeaders, headers);
      return isRejection(outcome) ? outcome.code : undefined;
    };
    expect(code('tools/call', { name: 'lookup' }, good)).toBe(-32602);
    expect(code('tools/call', { name: 'lookup', _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } }, good)).toBe(-32602);
    expect(code('tools/call', params, { ...good, 'mcp-name': 'other' })).toBe(-32020);
    expect(code('tools/call', params, { ...good, 'mcp-method': 'tools/list' })).toBe(-32020);
    expect(code('tools/call', params, { 'mcp-method': 'tools/call', 'mcp-name': 'lookup' })).toBe(-32020);
    expect(code('tools/call', params, good, [...raw(good), 'Mcp-Name', 'lookup'])).toBe(-32020);
    expect(code('tools/call', { name: 'naïve', _meta: META }, { ...good, 'mcp-name': encodeHeaderValue('naïve') })).toBeUndefined();
    const future = { 'io.modelcontextprotocol/protocolVersion': '2099-01-01', 'io.modelcontextprotocol/clientCapabilities': {} };
    const outcome = checkStatelessMessage('tools/list', { _meta: future }, raw({ 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' }), { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' });
    expect(outcome).toMatchObject({ status: 400, code: -32022, data: { supported: ['2026-07-28'], requested: '2099-01-01' } });
  });
});

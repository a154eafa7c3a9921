import { describe, expect, it } from 'vitest';
import { GUARDED_FLAG_RULE_ID, parsePolicy, type CompiledPolicy, type PolicyContext } from '@custodian/policy';
import { identity } from '@custodian/policy/testing';
import { classifyHttp, decideHttp, httpBody, HttpPathPattern, normaliseHttpPath, type HttpPolicyInput } from './index.js';

const context: PolicyContext = { identity: identity('agent-7', ['analysts']), connection: 'orders-api', protocol: 'http' };

function policy(rules: string): CompiledPolicy {
  return parsePolicy(`name: http-test\nrules:\n${rules}`, 'http-test.yaml');
}

function request(overrides: Partial<HttpPolicyInput> = {}): HttpPolicyInput {
  return { host: 'api.example', method: 'GET', path: '/v1/orders', ...overrides };
}

describe('HTTP classification', () => {
  it('normalises the path: escapes decoded, dot segments resolved, separators kept encoded', () => {
    expect(normaliseHttpPath('/v1/orders/../admin')).toBe('/v1/admin');
    expect(normaliseHttpPath('/v1/./orders/')).toBe('/v1/orders/');
    expect(normaliseHttpPath('/v1/%6Frders')).toBe('/v1/orders');
    expect(normaliseHttpPath('/v1/%2e%2e/admin')).toBe('/admin');
    expect(normaliseHttpPath('/v1/caf%C3%A9')).toBe('/v1/café');
    expect(normaliseHttpPath('/projects/group%2fproject')).toBe('/projects/group%2Fproject');
    expect(normaliseHttpPath('/a/%252F')).toBe('/a/%252F');
  });

  it('fails closed on paths a server could read differently', () => {
    for (const path of ['v1/orders', '/../etc/passwd', '/a/%zz', '/a/%C3%28', '/a\\b', '/a/%00', '/a/%5C', '/a#frag']) {
      const classification = classifyHttp(request({ path }));
      if (path === '/a/%5C') {
        // An encoded backslash stays encoded, inside its segment.
        expect(classification.ok && classification.request.path).toBe('/a/%5C');
        continue;
      }
      expect({ path, result: classification }).toEqual({ path, result: { ok: false, error: { code: 'HTTP_INVALID_PATH' } } });
    }
  });

  it('rejects a malformed host or method, and splits the query from the path', () => {
    expect(classifyHttp(request({ host: 'api example' }))).toEqual({ ok: false, error: { code: 'HTTP_INVALID_REQUEST' } });
    expect(classifyHttp(request({ method: 'GET /x' }))).toEqual({ ok: false, error: { code: 'HTTP_INVALID_REQUEST' } });
    const classified = classifyHttp(request({ host: 'API.Example:8443', method: 'post', path: '/v1/orders?dry=1&tag=a&tag=b' }));
    expect(classified.ok).toBe(true);
    if (!classified.ok) return;
    expect(classified.request).toMatchObject({ host: 'api.example:8443', hostname: 'api.example', method: 'POST', path: '/v1/orders', bodyState: 'absent' });
    expect(classified.request.query.get('tag')).toEqual(['a', 'b']);
  });

  it('bounds the body: too deep or too many values is not classified', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { a: deep };
    expect(classifyHttp(request({ body: deep }))).toEqual({ ok: false, error: { code: 'HTTP_BODY_TOO_COMPLEX' } });
    expect(classifyHttp(request({ body: new Array(200_000).fill(0) }))).toEqual({ ok: false, error: { code: 'HTTP_BODY_TOO_COMPLEX' } });
    expect(classifyHttp(request({ body: { n: Number.NaN } }))).toEqual({ ok: false, error: { code: 'HTTP_BODY_TOO_COMPLEX' } });
  });

  it('httpBody: absent, parsed, too large, unparseable', () => {
    expect(httpBody(undefined)).toEqual({ bodyState: 'absent' });
    expect(httpBody('{"a":1}')).toEqual({ body: { a: 1 }, bodyState: 'parsed' });
    expect(httpBody(Buffer.from('{"a":1}'), { maxBytes: 3 })).toEqual({ bodyState: 'too-large' });
    expect(httpBody('a=1')).toEqual({ bodyState: 'unparseable' });
    expect(httpBody(Buffer.from([0x7b, 0xff, 0x7d]))).toEqual({ bodyState: 'unparseable' });
  });

  it('path patterns: `*` within a segment, `**` across segments', () => {
    const orders = new HttpPathPattern('/v1/orders/*');
    expect(orders.matches('/v1/orders/42')).toBe(true);
    expect(orders.matches('/v1/orders/42/refunds')).toBe(false);
    const tree = new HttpPathPattern('/v1/orders/**');
    expect(['/v1/orders', '/v1/orders/', '/v1/orders/42/refunds'].map((path) => tree.matches(path))).toEqual([true, true, true]);
    expect(tree.matches('/v1/ordersx')).toBe(false);
    expect(new HttpPathPattern('/v1/**/refunds').matches('/v1/orders/42/refunds')).toBe(true);
    expect(new HttpPathPattern('/v1/**/refunds').matches('/v1/refunds')).toBe(true);
    expect(new HttpPathPattern('/v?/x.json').matches('/v1/x.json')).toBe(true);
    expect(new HttpPathPattern('/v?/x.json').matches('/v1/xxjson')).toBe(false);
  });
});

describe('HTTP decisions', () => {
  const rules = policy(
    [
      '  - id: no-deletes',
      '    match: { http: { methods: [delete] } }',
      '    decision: block',
      '  - id: reads',
      '    match: { http: { hosts: ["api.example", "*.internal.example"], methods: [GET, HEAD], paths: ["/v1/orders/**"] } }',
      '    decision: allow',
      '  - id: json-orders',
      '    match:',
      '      http:',
      '        methods: [POST]',
      '        paths: [/v1/orders]',
      '        headers: { Content-Type: "application/json*" }',
      '        query: { dryRun: { equals: "true" } }',
      '        body:',
      '          "$.customer.id": { exists: true }',
      '          "$.items[*].sku": { pattern: "SKU-*" }',
      '          "$.items[*].qty": { oneOf: [1, 2, 3] }',
      '          "$.coupon": { exists: false }',
      '    decision: allow',
      '  - id: any-vip',
      '    match: { http: { methods: [POST], paths: [/v1/orders], body: { "$.items[*].sku": { equals: VIP, values: any } } } }',
      '    decision: require-approval',
      '    approval: { approverGroups: [sales], required: 1, timeoutSeconds: 60, grant: once }',
      '  - id: uploads',
      '    match: { http: { paths: [/v1/uploads], flags: [body-too-large] } }',
      '    decision: allow',
      '  - id: everything-else',
      '    match: {}',
      '    decision: allow',
      '',
    ].join('\n'),
  );
  const order = { customer: { id: 7 }, items: [{ sku: 'SKU-1', qty: 1 }, { sku: 'SKU-2', qty: 3 }] };
  const post = (overrides: Partial<HttpPolicyInput> = {}): HttpPolicyInput =>
    request({ method: 'POST', path: '/v1/orders?dryRun=true', headers: { 'content-type': 'application/json; charset=utf-8' }, body: order, ...overrides });

  it('host, method and path criteria; the first matching rule decides', () => {
    expect(decideHttp(rules, context, request({ path: '/v1/orders/42' }))).toMatchObject({ decision: 'allow', ruleId: 'reads', language: 'http', units: [{ command: 'GET /v1/orders/42' }] });
    expect(decideHttp(rules, context, request({ host: 'eu.internal.example:8443', method: 'head', path: '/v1/orders' })).ruleId).toBe('reads');
    expect(decideHttp(rules, context, request({ host: 'a.b.internal.example', path: '/v1/orders' })).ruleId).toBe('everything-else');
    expect(decideHttp(rules, context, request({ method: 'DELETE', path: '/v1/orders/42' }))).toMatchObject({ decision: 'block', ruleId: 'no-deletes' });
    // The path is matched normalised: /v1/orders/../admin is /v1/admin.
    expect(decideHttp(rules, context, request({ path: '/v1/orders/../admin' })).ruleId).toBe('everything-else');
  });

  it('headers (names case-insensitive), query and JSON body conditions', () => {
    expect(decideHttp(rules, context, post()).ruleId).toBe('json-orders');
    expect(decideHttp(rules, context, post({ headers: { 'Content-Type': 'text/plain' } })).ruleId).toBe('everything-else');
    expect(decideHttp(rules, context, post({ path: '/v1/orders' })).ruleId).toBe('everything-else');
    expect(decideHttp(rules, context, post({ body: { ...order, coupon: 'FREE' } })).ruleId).toBe('everything-else');
    expect(decideHttp(rules, context, post({ body: { items: order.items } })).ruleId).toBe('everything-else');
    // values: all (default): one item outside the condition is enough to fail it.
    expect(decideHttp(rules, context, post({ body: { ...order, items: [...order.items, { sku: 'SKU-3', qty: 9 }] } })).ruleId).toBe('everything-else');
    expect(decideHttp(rules, context, post({ body: { ...order, items: [...order.items, { sku: 'X-3', qty: 1 }] } })).ruleId).toBe('everything-else');
    // values: any: one VIP item among others is enough.
    const vip = decideHttp(rules, context, post({ path: '/v1/orders', body: { items: [{ sku: 'SKU-1' }, { sku: 'VIP' }] } }));
    expect(vip).toMatchObject({ decision: 'require-approval', ruleId: 'any-vip', approval: { approverGroups: ['sales'] } });
    // Strict JSON types: "1" is not 1.
    expect(decideHttp(rules, context, post({ body: { ...order, items: [{ sku: 'SKU-1', qty: '1' }] } })).ruleId).toBe('everything-else');
  });

  it('a body the gateway could not inspect is only allowed by a rule naming the flag (fail closed)', () => {
    const large = decideHttp(rules, context, request({ method: 'POST', path: '/v1/orders', bodyState: 'too-large' }));
    expect(large).toMatchObject({ decision: 'block', ruleId: GUARDED_FLAG_RULE_ID });
    expect(large.reason).toMatch(/body-too-large.*everything-else/);
    expect(decideHttp(rules, context, request({ method: 'POST', path: '/v1/uploads', bodyState: 'too-large' })).ruleId).toBe('uploads');
    expect(decideHttp(rules, context, request({ method: 'POST', path: '/v1/uploads', bodyState: 'unparseable' })).ruleId).toBe(GUARDED_FLAG_RULE_ID);
    // A block rule needs no naming.
    expect(decideHttp(rules, context, request({ method: 'DELETE', bodyState: 'unparseable' })).ruleId).toBe('no-deletes');
  });

  it('unclassifiable requests are blocked with the code only', () => {
    const decision = decideHttp(rules, context, request({ path: '/../secret-token-abc' }));
    expect(decision).toMatchObject({ decision: 'block', ruleId: null, units: [] });
    expect(decision.reason).toBe('HTTP_INVALID_PATH: the command could not be classified (fail closed)');
    expect(JSON.stringify(decision)).not.toContain('secret-token-abc');
  });

  it('a JSON path selection past its work budget blocks instead of running on', () => {
    const p = policy('  - { id: r, match: { http: { body: { "$..a..a..a..a": { exists: true } } } }, decision: allow }\n');
    // Within the shape limits (60 deep, ~180 values), but `..` four times revisits it combinatorially.
    let nested: unknown = 1;
    for (let i = 0; i < 60; i++) nested = { a: nested, b: [1, 2] };
    const decision = decideHttp(p, context, request({ body: nested }));
    expect(decision).toMatchObject({ decision: 'block', ruleId: null, reason: 'POLICY_EVALUATION_FAILED: the command could not be classified (fail closed)' });
    // The same rule decides a small body normally.
    expect(decideHttp(p, context, request({ body: { x: { a: { a: { a: { a: 1 } } } } } })).ruleId).toBe('r');
  });
});

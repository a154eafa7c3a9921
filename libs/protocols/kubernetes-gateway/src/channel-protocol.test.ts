import { describe, expect, it } from 'vitest';
import {
  Channel,
  ChannelProtocolError,
  JsonObjectStream,
  V4_PROTOCOL,
  V5_PROTOCOL,
  chooseProtocol,
  decodeChannelMessage,
  encodeChannelMessage,
  encodeCloseMessage,
  exitCodeOf,
  exitStatus,
  refusalStatus,
  terminalSizeOf,
} from './channel-protocol.js';
import { ApiRequestError, argvToShellText, execQuery, parseExecRequest, routeOf } from './exec-request.js';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof ChannelProtocolError || error instanceof ApiRequestError) return error.code;
    throw error;
  }
  return undefined;
}

describe('channel.k8s.io messages', () => {
  it('prefers v5, accepts v4, refuses the older and SPDY-era names', () => {
    expect(chooseProtocol(['v4.channel.k8s.io', 'v5.channel.k8s.io'])).toBe(V5_PROTOCOL);
    expect(chooseProtocol([' v4.channel.k8s.io'])).toBe(V4_PROTOCOL);
    expect(chooseProtocol(['v3.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'])).toBeUndefined();
  });

  it('encodes and decodes each direction’s channels', () => {
    const message = encodeChannelMessage(Channel.stdout, 'hi');
    expect([...message]).toEqual([1, 0x68, 0x69]);
    expect(decodeChannelMessage(message, V4_PROTOCOL, 'server')).toEqual({ channel: 1, payload: Buffer.from('hi') });
    expect(decodeChannelMessage(encodeChannelMessage(Channel.stdin, Buffer.from([0, 255])), V5_PROTOCOL, 'client').payload).toEqual(Buffer.from([0, 255]));
    expect(decodeChannelMessage(encodeCloseMessage(Channel.stdin), V5_PROTOCOL, 'client')).toEqual({ channel: 255, payload: Buffer.from([0]) });
  });

  it('refuses empty messages, unknown channels, wrong directions and malformed or v4 close messages', () => {
    expect(codeOf(() => decodeChannelMessage(Buffer.alloc(0), V5_PROTOCOL, 'client'))).toBe('CHANNEL_MESSAGE_EMPTY');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([7, 1]), V5_PROTOCOL, 'client'))).toBe('CHANNEL_UNKNOWN');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([1, 1]), V5_PROTOCOL, 'client'))).toBe('CHANNEL_WRONG_DIRECTION');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([3, 0x7b]), V5_PROTOCOL, 'client'))).toBe('CHANNEL_WRONG_DIRECTION');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([0, 1]), V5_PROTOCOL, 'server'))).toBe('CHANNEL_WRONG_DIRECTION');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([255, 0]), V4_PROTOCOL, 'client'))).toBe('CHANNEL_UNKNOWN');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([255]), V5_PROTOCOL, 'client'))).toBe('CHANNEL_CLOSE_MALFORMED');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([255, 0, 0]), V5_PROTOCOL, 'client'))).toBe('CHANNEL_CLOSE_MALFORMED');
    expect(codeOf(() => decodeChannelMessage(Buffer.from([255, 1]), V5_PROTOCOL, 'client'))).toBe('CHANNEL_CLOSE_MALFORMED');
  });

  it('reads exit codes from a Status and writes the kubelet’s shape', () => {
    expect(exitCodeOf({ metadata: {}, status: 'Success' })).toBe(0);
    expect(exitCodeOf(exitStatus(42, 'exit 42'))).toBe(42);
    expect(exitStatus(42, 'm')).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '42' }] } });
    expect(exitCodeOf({ status: 'Failure', reason: 'InternalError' })).toBeUndefined();
    expect(exitCodeOf(refusalStatus('no', 'Forbidden', 403))).toBe(1);
    expect(exitCodeOf(null)).toBeUndefined();
  });
});

describe('JsonObjectStream (resize and status channels) at every byte split', () => {
  const objects = [{ Width: 80, Height: 24 }, { Width: 120, Height: 40, note: 'has } and { and \\" inside' }, { nested: { a: [1, { b: 2 }] } }];
  const bytes = Buffer.from(objects.map((o) => JSON.stringify(o)).join('\n') + ' ');

  it('yields the same objects whichever two pieces the stream arrives in', () => {
    for (let split = 0; split <= bytes.length; split++) {
      const stream = new JsonObjectStream();
      const out = [...stream.push(bytes.subarray(0, split)), ...stream.push(bytes.subarray(split))];
      expect(out, `split at ${split}`).toEqual(objects);
      expect(stream.pending).toBe(0);
    }
  });

  it('yields the same objects fed one byte at a time', () => {
    const stream = new JsonObjectStream();
    const out: unknown[] = [];
    for (const byte of bytes) out.push(...stream.push(Buffer.from([byte])));
    expect(out).toEqual(objects);
  });

  it('bounds an object’s size and refuses non-objects and broken JSON', () => {
    const big = Buffer.from(`{"Width":${'1'.repeat(100)}`);
    expect(codeOf(() => new JsonObjectStream(64).push(big))).toBe('CHANNEL_JSON_TOO_LARGE');
    // Split at every byte, the bound holds too (the buffer never grows past it).
    for (let split = 1; split < big.length; split++) {
      const stream = new JsonObjectStream(64);
      expect(codeOf(() => (stream.push(big.subarray(0, split)), stream.push(big.subarray(split))))).toBe('CHANNEL_JSON_TOO_LARGE');
    }
    expect(codeOf(() => new JsonObjectStream().push(Buffer.from('[1]')))).toBe('CHANNEL_JSON_MALFORMED');
    expect(codeOf(() => new JsonObjectStream().push(Buffer.from('{"a":tru}')))).toBe('CHANNEL_JSON_MALFORMED');
  });

  it('validates resize sizes', () => {
    expect(terminalSizeOf({ Width: 80, Height: 24 })).toEqual({ width: 80, height: 24 });
    expect(codeOf(() => terminalSizeOf({ Width: -1, Height: 24 }))).toBe('CHANNEL_JSON_MALFORMED');
    expect(codeOf(() => terminalSizeOf({ Width: 70000, Height: 24 }))).toBe('CHANNEL_JSON_MALFORMED');
    expect(codeOf(() => terminalSizeOf({ width: 80, height: 24 }))).toBe('CHANNEL_JSON_MALFORMED');
  });
});

describe('exec requests', () => {
  it('routes exec, other pod subresources, pod GETs and discovery', () => {
    expect(routeOf('/api/v1/namespaces/default/pods/web-0/exec')).toEqual({ kind: 'exec', namespace: 'default', pod: 'web-0' });
    expect(routeOf('/api/v1/namespaces/default/pods/web-0/log')).toEqual({ kind: 'pod-subresource', namespace: 'default', pod: 'web-0', subresource: 'log' });
    expect(routeOf('/api/v1/namespaces/default/pods/web-0')).toEqual({ kind: 'pod', namespace: 'default', pod: 'web-0' });
    expect(routeOf('/api')).toEqual({ kind: 'discovery', path: '/api' });
    expect(routeOf('/apis/apps/v1/deployments')).toEqual({ kind: 'other', path: '/apis/apps/v1/deployments' });
  });

  it('parses the query as the API server does and keeps only what the upstream needs', () => {
    const query = new URLSearchParams('command=sh&command=-c&command=echo+%27a+b%27&container=app&stdin=true&stdout=1&stderr=false&tty=false&evil=x');
    const request = parseExecRequest('default', 'web-0', query);
    expect(request).toEqual({ namespace: 'default', pod: 'web-0', container: 'app', command: ['sh', '-c', "echo 'a b'"], stdin: true, stdout: true, stderr: false, tty: false });
    expect(execQuery(request)).toBe('command=sh&command=-c&command=echo+%27a+b%27&container=app&stdin=true&stdout=true&stderr=false&tty=false');
  });

  it('refuses bad names, no command, no streams, NUL bytes', () => {
    const ok = 'command=ls&stdout=true';
    expect(codeOf(() => parseExecRequest('Default', 'p', new URLSearchParams(ok)))).toBe('REQUEST_INVALID');
    expect(codeOf(() => parseExecRequest('default', '../x', new URLSearchParams(ok)))).toBe('REQUEST_INVALID');
    expect(codeOf(() => parseExecRequest('default', 'p', new URLSearchParams(`${ok}&container=A_B`)))).toBe('REQUEST_INVALID');
    expect(codeOf(() => parseExecRequest('default', 'p', new URLSearchParams('stdout=true')))).toBe('COMMAND_MISSING');
    expect(codeOf(() => parseExecRequest('default', 'p', new URLSearchParams('command=ls')))).toBe('REQUEST_INVALID');
    expect(codeOf(() => parseExecRequest('default', 'p', new URLSearchParams('command=l%00s&stdout=true')))).toBe('REQUEST_INVALID');
    expect(codeOf(() => parseExecRequest('default', 'p', new URLSearchParams(`command=${'a'.repeat(70_000)}&stdout=true`)))).toBe('COMMAND_TOO_LARGE');
  });

  it('joins argv into a shell line that splits back into the same words', () => {
    expect(argvToShellText(['ls', '-la', '/tmp'])).toBe('ls -la /tmp');
    expect(argvToShellText(['sh', '-c', "echo 'hi'; rm x"])).toBe(`sh -c 'echo '\\''hi'\\''; rm x'`);
    expect(argvToShellText(['echo', '', '$HOME', 'a b'])).toBe(`echo '' '$HOME' 'a b'`);
  });
});

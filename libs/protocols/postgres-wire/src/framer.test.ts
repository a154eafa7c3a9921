import { Parser } from 'pg-protocol/dist/parser.js';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import {
  BackendType,
  MessageFramer,
  WireProtocolError,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeBind,
  decodeClose,
  decodeCommandComplete,
  decodeCopyFail,
  decodeCopyResponse,
  decodeDataRow,
  decodeDescribe,
  decodeExecute,
  decodeFunctionCall,
  decodeNoticeFields,
  decodeParameterStatus,
  decodeParse,
  decodePasswordMessage,
  decodeQuery,
  decodeReadyForQuery,
  decodeRowDescription,
  decodeStartupPhaseMessage,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationMd5Password,
  encodeAuthenticationOk,
  encodeAuthenticationSasl,
  encodeAuthenticationSaslContinue,
  encodeBackendKeyData,
  encodeBind,
  encodeCancelRequest,
  encodeClose,
  encodeCommandComplete,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeDataRow,
  encodeDescribe,
  encodeErrorResponse,
  encodeExecute,
  encodeFlush,
  encodeGssEncRequest,
  encodeParameterStatus,
  encodeParse,
  encodePasswordMessage,
  encodeQuery,
  encodeReadyForQuery,
  encodeRowDescription,
  encodeSslRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
  type Frame,
  type FieldDescription,
} from './index.js';

const MAX = 1 << 20;

/** Every frame from the given byte pieces, pushed one after another. */
function frames(pieces: readonly Buffer[], side: 'frontend' | 'backend', startupMessages = 0): Frame[] {
  const framer = new MessageFramer({ side, maxMessageBytes: MAX });
  const out: Frame[] = [];
  let startupLeft = startupMessages;
  if (side === 'frontend') framer.inStartupPhase = startupLeft > 0;
  for (const piece of pieces) {
    framer.push(piece);
    for (let frame = framer.next(); frame; frame = framer.next()) {
      out.push({ type: frame.type, body: Buffer.from(frame.body), raw: Buffer.from(frame.raw) });
      if (side === 'frontend' && startupLeft > 0) {
        startupLeft -= 1;
        framer.inStartupPhase = startupLeft > 0;
      }
    }
  }
  expect(framer.bufferedBytes).toBe(0);
  return out;
}

/** The same stream split into two pieces at every byte boundary, and fed byte by byte: always the same frames. */
function expectSplitInvariant(stream: Buffer, side: 'frontend' | 'backend', startupMessages = 0): Frame[] {
  const whole = frames([stream], side, startupMessages);
  for (let cut = 0; cut <= stream.length; cut++) {
    const split = frames([stream.subarray(0, cut), stream.subarray(cut)], side, startupMessages);
    expect(split.map((f) => f.raw.toString('hex'))).toEqual(whole.map((f) => f.raw.toString('hex')));
  }
  const byteByByte = frames([...stream].map((b) => Buffer.from([b])), side, startupMessages);
  expect(byteByByte.map((f) => f.raw.toString('hex'))).toEqual(whole.map((f) => f.raw.toString('hex')));
  return whole;
}

const ROW_FIELDS: FieldDescription[] = [
  { name: 'id', tableOid: 16384, columnAttribute: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
  { name: 'email', tableOid: 16384, columnAttribute: 2, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
  { name: 'blob', tableOid: 0, columnAttribute: 0, typeOid: 17, typeSize: -1, typeModifier: -1, format: 1 },
];

describe('frontend framer', () => {
  const startup = encodeStartupMessage(new Map([['user', 'agent-7'], ['database', 'orders-prod'], ['application_name', 'psql']]));
  const messages: Buffer[] = [
    encodeQuery('SELECT 1; SELECT \'héllo\''),
    encodeParse({ statement: 's1', query: 'SELECT $1::int', parameterTypes: [23] }),
    encodeBind({ portal: 'p1', statement: 's1', parameterFormats: [0, 1], parameters: [Buffer.from('42'), null], resultFormats: [1] }),
    encodeDescribe('P', 'p1'),
    encodeExecute('p1', 100),
    encodeFlush(),
    encodeClose('S', 's1'),
    encodeSync(),
    encodeCopyData(Buffer.from('1\talice@example.com\n')),
    encodeCopyDone(),
    encodeCopyFail('client gave up'),
    encodePasswordMessage('eyJ.token.sig'),
    encodeTerminate(),
  ];

  it('cuts SSLRequest, StartupMessage and every typed message identically at every byte boundary', () => {
    const stream = Buffer.concat([encodeSslRequest(), startup, ...messages]);
    const out = expectSplitInvariant(stream, 'frontend', 2);
    expect(out).toHaveLength(2 + messages.length);
    expect(decodeStartupPhaseMessage(out[0]!)).toEqual({ kind: 'SSLRequest' });
    const start = decodeStartupPhaseMessage(out[1]!);
    expect(start.kind).toBe('StartupMessage');
    if (start.kind === 'StartupMessage') expect(Object.fromEntries(start.parameters)).toEqual({ user: 'agent-7', database: 'orders-prod', application_name: 'psql' });
    const [query, parse, bind, describeP, execute, flush, close, sync, copyData, copyDone, copyFail, password, terminate] = out.slice(2);
    expect(decodeQuery(query!)).toBe("SELECT 1; SELECT 'héllo'");
    expect(decodeParse(parse!)).toEqual({ statement: 's1', query: 'SELECT $1::int', parameterTypes: [23] });
    const decodedBind = decodeBind(bind!);
    expect(decodedBind).toMatchObject({ portal: 'p1', statement: 's1', parameterFormats: [0, 1], resultFormats: [1] });
    expect(decodedBind.parameters.map((p) => p?.toString() ?? null)).toEqual(['42', null]);
    expect(decodeDescribe(describeP!)).toEqual({ target: 'P', name: 'p1' });
    expect(decodeExecute(execute!)).toEqual({ portal: 'p1', maxRows: 100 });
    expect(flush!.type).toBe('H'.charCodeAt(0));
    expect(decodeClose(close!)).toEqual({ target: 'S', name: 's1' });
    expect(sync!.type).toBe('S'.charCodeAt(0));
    expect(copyData!.body.toString()).toBe('1\talice@example.com\n');
    expect(copyDone!.body.length).toBe(0);
    expect(decodeCopyFail(copyFail!)).toBe('client gave up');
    expect(decodePasswordMessage(password!)).toBe('eyJ.token.sig');
    expect(terminate!.type).toBe('X'.charCodeAt(0));
  });

  it('decodes GSSENCRequest and CancelRequest in the startup phase', () => {
    const out = expectSplitInvariant(Buffer.concat([encodeGssEncRequest(), encodeCancelRequest(1234, Buffer.from([1, 2, 3, 4]))]), 'frontend', 2);
    expect(decodeStartupPhaseMessage(out[0]!)).toEqual({ kind: 'GSSENCRequest' });
    expect(decodeStartupPhaseMessage(out[1]!)).toMatchObject({ kind: 'CancelRequest', processId: 1234 });
  });

  it('reads what an independent client implementation (pg-protocol, used by node-postgres) serializes', () => {
    const stream = Buffer.concat([
      serialize.startup({ user: 'u', database: 'orders-prod', client_encoding: 'UTF8' }),
      serialize.parse({ name: 'st', text: 'SELECT * FROM t WHERE a = $1 AND b = $2', types: [25, 23] }),
      serialize.bind({ portal: '', statement: 'st', values: ['x', null, Buffer.from([0, 1])] }),
      serialize.describe({ type: 'P', name: '' }),
      serialize.execute({ portal: '', rows: 0 }),
      serialize.sync(),
      serialize.query('SELECT now()'),
      serialize.end(),
    ]);
    const out = expectSplitInvariant(stream, 'frontend', 1);
    expect(out.map((f) => (f.type === 0 ? 'startup' : String.fromCharCode(f.type)))).toEqual(['startup', 'P', 'B', 'D', 'E', 'S', 'Q', 'X']);
    expect(decodeParse(out[1]!)).toEqual({ statement: 'st', query: 'SELECT * FROM t WHERE a = $1 AND b = $2', parameterTypes: [25, 23] });
    const bind = decodeBind(out[2]!);
    expect(bind.parameters.map((p) => (p === null ? null : p.toString('hex')))).toEqual([Buffer.from('x').toString('hex'), null, '0001']);
    expect(bind.parameterFormats).toEqual([0, 0, 1]);
  });

  it('round-trips Bind exactly (re-encoding gives the same bytes)', () => {
    const bind = encodeBind({ portal: '', statement: 'x', parameterFormats: [1], parameters: [Buffer.alloc(0), null, Buffer.from([255])], resultFormats: [0, 1] });
    const [frame] = frames([bind], 'frontend');
    expect(encodeBind(decodeBind(frame!)).equals(bind)).toBe(true);
  });

  it('reads parameter counts as unsigned 16-bit, as PostgreSQL does (up to 65,535), and writes them so', () => {
    const types = Array.from({ length: 65_535 }, (_, i) => (i % 2 === 0 ? 1184 : 3802));
    const parse = encodeParse({ statement: 's', query: 'SELECT $65535::jsonb', parameterTypes: types });
    const values = Array.from({ length: 40_000 }, (_, i) => (i % 3 === 0 ? null : Buffer.from([i & 0xff])));
    const bind = encodeBind({ portal: '', statement: 's', parameterFormats: [1], parameters: values, resultFormats: [] });
    const [parseFrame, bindFrame] = frames([parse, bind], 'frontend');
    expect(decodeParse(parseFrame!).parameterTypes).toEqual(types);
    const decoded = decodeBind(bindFrame!);
    expect(decoded.parameters).toHaveLength(40_000);
    expect(encodeBind(decoded).equals(bind)).toBe(true);
  });

  it('decodes FunctionCall only far enough to name the function (it is refused anyway)', () => {
    const body = Buffer.alloc(4);
    body.writeInt32BE(1598);
    const msg = Buffer.concat([Buffer.from('F'), Buffer.from([0, 0, 0, 8]), body]);
    const [frame] = frames([msg], 'frontend');
    expect(decodeFunctionCall(frame!)).toEqual({ functionOid: 1598 });
  });
});

describe('malformed frontend frames: a clear error, and nothing buffered beyond the header', () => {
  const typed = (type: string, length: number, body = Buffer.alloc(0)): Buffer => {
    const header = Buffer.alloc(5);
    header.write(type, 0);
    header.writeInt32BE(length, 1);
    return Buffer.concat([header, body]);
  };
  const startupHeader = (length: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(length, 0);
    b.writeInt32BE(196608, 4);
    return b;
  };

  it('refuses a length word beyond the limit at the header, holding only the header', () => {
    const framer = new MessageFramer({ side: 'frontend', startup: false, maxMessageBytes: 1024 });
    framer.push(typed('Q', 0x7fffffff));
    expect(() => framer.next()).toThrow(expect.objectContaining({ code: 'WIRE_MESSAGE_TOO_LARGE' }));
    expect(framer.bufferedBytes).toBe(5);
  });

  it('refuses lengths below the minimum, negative lengths and unknown type bytes', () => {
    for (const [bytes, code] of [
      [typed('Q', 3), 'WIRE_INVALID_LENGTH'],
      [typed('Q', -1), 'WIRE_INVALID_LENGTH'],
      [typed('z', 4), 'WIRE_UNKNOWN_MESSAGE'],
      [typed('\0', 4), 'WIRE_UNKNOWN_MESSAGE'],
    ] as const) {
      const framer = new MessageFramer({ side: 'frontend', startup: false, maxMessageBytes: 1024 });
      framer.push(bytes);
      expect(() => framer.next()).toThrow(WireProtocolError);
      try {
        framer.next();
      } catch (error) {
        expect((error as WireProtocolError).code).toBe(code);
      }
    }
  });

  it('refuses startup packets that are too short or longer than PostgreSQL allows (10,000 bytes)', () => {
    for (const length of [4, 7, 10_001, 0x7fffffff]) {
      const framer = new MessageFramer({ side: 'frontend', maxMessageBytes: MAX });
      framer.push(startupHeader(length));
      expect(() => framer.next()).toThrow(WireProtocolError);
    }
  });

  it('waits for a truncated message without holding more than was sent', () => {
    const framer = new MessageFramer({ side: 'frontend', startup: false, maxMessageBytes: MAX });
    const query = encodeQuery('SELECT 1');
    framer.push(query.subarray(0, query.length - 1));
    expect(framer.next()).toBeUndefined();
    expect(framer.bufferedBytes).toBe(query.length - 1);
  });

  it('refuses bodies that do not match the layout of their type', () => {
    const cases: [string, () => unknown][] = [
      ['Query without terminator', () => decodeQuery(frames([typed('Q', 7, Buffer.from('abc'))], 'frontend')[0]!)],
      ['Query with trailing bytes', () => decodeQuery(frames([typed('Q', 8, Buffer.from('ab\0c'))], 'frontend')[0]!)],
      ['Bind with 1000 parameters in a short body', () => decodeBind(frames([typed('B', 10, Buffer.from([0, 0, 0, 0, 0x03, 0xe8]))], 'frontend')[0]!)],
      ['Bind with a negative count', () => decodeBind(frames([typed('B', 8, Buffer.from([0, 0, 0xff, 0xff]))], 'frontend')[0]!)],
      ['Bind value longer than the message', () => decodeBind(frames([typed('B', 14, Buffer.from([0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]))], 'frontend')[0]!)],
      ['Describe with a bad target', () => decodeDescribe(frames([typed('D', 6, Buffer.from('X\0'))], 'frontend')[0]!)],
      ['Execute truncated', () => decodeExecute(frames([typed('E', 6, Buffer.from('p\0'))], 'frontend')[0]!)],
      ['StartupMessage of protocol 2', () => decodeStartupPhaseMessage({ type: 0, body: Buffer.from([0, 2, 0, 0, 0]), raw: Buffer.alloc(0) })],
      ['StartupMessage without final terminator', () => decodeStartupPhaseMessage({ type: 0, body: Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\0x\0')]), raw: Buffer.alloc(0) })],
    ];
    for (const [what, decode] of cases) {
      expect(decode, what).toThrow(WireProtocolError);
    }
  });
});

describe('backend codec', () => {
  it('cuts and decodes the messages a proxy rewrites, at every byte boundary', () => {
    const stream = Buffer.concat([
      encodeAuthenticationOk(),
      encodeAuthenticationCleartextPassword(),
      encodeAuthenticationMd5Password(Buffer.from([1, 2, 3, 4])),
      encodeAuthenticationSasl(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']),
      encodeAuthenticationSaslContinue(Buffer.from('r=abc,s=c2FsdA==,i=4096')),
      encodeParameterStatus('server_version', '15.8'),
      encodeBackendKeyData(4321, Buffer.from([9, 9, 9, 9])),
      encodeReadyForQuery('I'),
      encodeRowDescription(ROW_FIELDS),
      encodeDataRow([Buffer.from('1'), Buffer.from('alice@example.com'), null]),
      encodeDataRow([Buffer.from(''), null, Buffer.from([0, 255])]),
      encodeCommandComplete('SELECT 2'),
      encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'blocked by rule x', hint: 'ask' }),
      Buffer.concat([Buffer.from('H'), Buffer.from([0, 0, 0, 11, 0, 0, 2, 0, 0, 0, 0])]),
      encodeCopyData(Buffer.from('a\tb\n')),
    ]);
    const out = expectSplitInvariant(stream, 'backend');
    expect(decodeAuthentication(out[0]!)).toEqual({ kind: 'ok' });
    expect(decodeAuthentication(out[1]!)).toEqual({ kind: 'cleartext-password' });
    expect(decodeAuthentication(out[2]!)).toMatchObject({ kind: 'md5-password' });
    expect(decodeAuthentication(out[3]!)).toEqual({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
    expect(decodeAuthentication(out[4]!)).toMatchObject({ kind: 'sasl-continue' });
    expect(decodeParameterStatus(out[5]!)).toEqual({ name: 'server_version', value: '15.8' });
    expect(decodeBackendKeyData(out[6]!).processId).toBe(4321);
    expect(decodeReadyForQuery(out[7]!)).toBe('I');
    expect(decodeRowDescription(out[8]!)).toEqual(ROW_FIELDS);
    expect(decodeDataRow(out[9]!).map((v) => v?.toString() ?? null)).toEqual(['1', 'alice@example.com', null]);
    expect(decodeDataRow(out[10]!).map((v) => v?.toString('hex') ?? null)).toEqual(['', null, '00ff']);
    expect(decodeCommandComplete(out[11]!)).toBe('SELECT 2');
    expect(Object.fromEntries(decodeNoticeFields(out[12]!))).toMatchObject({ S: 'ERROR', C: '42501', M: 'blocked by rule x', H: 'ask' });
    expect(decodeCopyResponse(out[13]!)).toEqual({ format: 0, columnFormats: [0, 0] });
  });

  it('re-encoded rows and errors are read back by an independent parser (pg-protocol) with correct lengths', () => {
    const masked = encodeDataRow([Buffer.from('7'), Buffer.from('a****@example.com'), null, Buffer.from('tok_abcdef')]);
    const stream = Buffer.concat([
      encodeRowDescription(ROW_FIELDS),
      masked,
      encodeCommandComplete('SELECT 1'),
      encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'Blocked by policy rule no-deletes.' }),
      encodeReadyForQuery('T'),
    ]);
    const seen: { name: string; fields?: unknown; code?: unknown; message?: unknown; status?: unknown; fieldCount?: unknown }[] = [];
    const parser = new Parser();
    // Split to prove pg-protocol and the encoders agree on every length, not only on one chunking.
    parser.parse(stream.subarray(0, 17), (m) => seen.push(m as never));
    parser.parse(stream.subarray(17), (m) => seen.push(m as never));
    expect(seen.map((m) => m.name)).toEqual(['rowDescription', 'dataRow', 'commandComplete', 'error', 'readyForQuery']);
    expect((seen[1] as unknown as { fields: unknown[] }).fields).toEqual(['7', 'a****@example.com', null, 'tok_abcdef']);
    expect(seen[3]).toMatchObject({ code: '42501', message: 'Blocked by policy rule no-deletes.' });
    expect(seen[4]).toMatchObject({ status: 'T' });
  });

  it('never lets a NUL inside a text field desynchronise the stream', () => {
    const error = encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'a\0b' });
    const [frame] = frames([error], 'backend');
    expect(decodeNoticeFields(frame!).get('M')).toBe('ab');
  });

  it('refuses an oversized DataRow at its header and unknown backend types', () => {
    const framer = new MessageFramer({ side: 'backend', maxMessageBytes: 100 });
    const row = encodeDataRow([Buffer.alloc(200)]);
    framer.push(row.subarray(0, 5));
    expect(() => framer.next()).toThrow(expect.objectContaining({ code: 'WIRE_MESSAGE_TOO_LARGE' }));
    const other = new MessageFramer({ side: 'backend', maxMessageBytes: 100 });
    other.push(Buffer.from([0x51, 0, 0, 0, 4]));
    expect(() => other.next()).toThrow(expect.objectContaining({ code: 'WIRE_UNKNOWN_MESSAGE' }));
    expect(BackendType.DataRow).toBe(0x44);
  });
});

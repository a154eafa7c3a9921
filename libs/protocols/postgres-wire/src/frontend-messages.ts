// Frontend (client → server) messages: decoders for what a proxy inspects, encoders for what it sends upstream.
import { WireProtocolError } from './errors.js';
import type { Frame } from './framer.js';
import { MessageReader } from './message-reader.js';
import { byte, bytes, cstring, int16, int32, message, uint16, type Field } from './message-writer.js';
import { CANCEL_REQUEST_CODE, FrontendType, GSSENC_REQUEST_CODE, PROTOCOL_VERSION_3_0, SSL_REQUEST_CODE, frontendMessageName } from './protocol-codes.js';

export type StartupPhaseMessage =
  | { readonly kind: 'SSLRequest' }
  | { readonly kind: 'GSSENCRequest' }
  | { readonly kind: 'CancelRequest'; readonly processId: number; readonly secretKey: Buffer }
  | { readonly kind: 'StartupMessage'; readonly protocolVersion: number; readonly parameters: ReadonlyMap<string, string> };

/** Decodes a startup-phase frame (type 0). */
export function decodeStartupPhaseMessage(frame: Frame): StartupPhaseMessage {
  const reader = new MessageReader(frame.body, 'startup message');
  const code = reader.int32('code');
  switch (code) {
    case SSL_REQUEST_CODE:
      reader.end();
      return { kind: 'SSLRequest' };
    case GSSENC_REQUEST_CODE:
      reader.end();
      return { kind: 'GSSENCRequest' };
    case CANCEL_REQUEST_CODE: {
      const processId = reader.int32('process id');
      const secretKey = reader.rest();
      if (secretKey.length < 4 || secretKey.length > 256) throw reader.malformed(`CancelRequest secret key of ${secretKey.length} bytes`);
      return { kind: 'CancelRequest', processId, secretKey };
    }
    default: {
      const major = code >>> 16;
      if (major !== 3) throw new WireProtocolError('WIRE_UNKNOWN_MESSAGE', `unsupported protocol version ${major}.${code & 0xffff}`);
      const parameters = new Map<string, string>();
      for (;;) {
        const name = reader.cstring('parameter name');
        if (name === '') break;
        if (parameters.size >= 64) throw reader.malformed('more than 64 startup parameters');
        parameters.set(name, reader.cstring(`value of ${JSON.stringify(name.slice(0, 40))}`));
      }
      reader.end();
      return { kind: 'StartupMessage', protocolVersion: code, parameters };
    }
  }
}

export interface ParseMessage {
  readonly statement: string;
  readonly query: string;
  readonly parameterTypes: readonly number[];
}

export type FormatCode = 0 | 1;

export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  /** As sent: empty (all text), one (applies to all) or one per parameter. */
  readonly parameterFormats: readonly FormatCode[];
  /** Values as views into the message; null is SQL NULL. */
  readonly parameters: readonly (Buffer | null)[];
  readonly resultFormats: readonly FormatCode[];
}

export interface DescribeMessage {
  readonly target: 'S' | 'P';
  readonly name: string;
}

export interface ExecuteMessage {
  readonly portal: string;
  readonly maxRows: number;
}

export type CloseMessage = DescribeMessage;

export interface FunctionCallMessage {
  readonly functionOid: number;
}

function formatCode(reader: MessageReader, what: string): FormatCode {
  const value = reader.int16(what);
  if (value !== 0 && value !== 1) throw reader.malformed(`${what} ${value} is neither 0 (text) nor 1 (binary)`);
  return value;
}

function reader(frame: Frame): MessageReader {
  return new MessageReader(frame.body, frontendMessageName(frame.type));
}

export function decodeQuery(frame: Frame): string {
  const r = reader(frame);
  const sql = r.cstring('query');
  r.end();
  return sql;
}

export function decodeParse(frame: Frame): ParseMessage {
  const r = reader(frame);
  const statement = r.cstring('statement name');
  const query = r.cstring('query');
  const n = r.count('parameter type', 4);
  const parameterTypes: number[] = [];
  for (let i = 0; i < n; i++) parameterTypes.push(r.int32('parameter type') >>> 0);
  r.end();
  return { statement, query, parameterTypes };
}

export function decodeBind(frame: Frame): BindMessage {
  const r = reader(frame);
  const portal = r.cstring('portal name');
  const statement = r.cstring('statement name');
  const formatCount = r.count('parameter format', 2);
  const parameterFormats: FormatCode[] = [];
  for (let i = 0; i < formatCount; i++) parameterFormats.push(formatCode(r, 'parameter format'));
  const parameterCount = r.count('parameter', 4);
  if (formatCount > 1 && formatCount !== parameterCount) throw r.malformed(`${formatCount} parameter formats for ${parameterCount} parameters`);
  const parameters: (Buffer | null)[] = [];
  for (let i = 0; i < parameterCount; i++) {
    const length = r.int32('parameter length');
    if (length === -1) parameters.push(null);
    else if (length < -1) throw r.malformed(`parameter length ${length}`);
    else parameters.push(r.bytes(length, 'parameter value'));
  }
  const resultCount = r.count('result format', 2);
  const resultFormats: FormatCode[] = [];
  for (let i = 0; i < resultCount; i++) resultFormats.push(formatCode(r, 'result format'));
  r.end();
  return { portal, statement, parameterFormats, parameters, resultFormats };
}

function describeTarget(r: MessageReader): 'S' | 'P' {
  const target = r.byte('target');
  if (target === 0x53) return 'S';
  if (target === 0x50) return 'P';
  throw r.malformed(`target ${target} is neither 'S' nor 'P'`);
}

export function decodeDescribe(frame: Frame): DescribeMessage {
  const r = reader(frame);
  const target = describeTarget(r);
  const name = r.cstring('name');
  r.end();
  return { target, name };
}

export const decodeClose: (frame: Frame) => CloseMessage = decodeDescribe;

export function decodeExecute(frame: Frame): ExecuteMessage {
  const r = reader(frame);
  const portal = r.cstring('portal name');
  const maxRows = r.int32('row limit');
  r.end();
  return { portal, maxRows };
}

export function decodeCopyFail(frame: Frame): string {
  const r = reader(frame);
  const text = r.cstring('message');
  r.end();
  return text;
}

export function decodeFunctionCall(frame: Frame): FunctionCallMessage {
  const r = reader(frame);
  const functionOid = r.int32('function oid') >>> 0;
  return { functionOid };
}

/** A message that must have an empty body (Sync, Flush, Terminate, CopyDone). */
export function expectEmpty(frame: Frame): void {
  if (frame.body.length !== 0) throw new WireProtocolError('WIRE_MALFORMED', `${frontendMessageName(frame.type)}: ${frame.body.length} unexpected bytes`);
}

/** A cleartext PasswordMessage ('p' while the server asked for a cleartext password). */
export function decodePasswordMessage(frame: Frame): string {
  const r = reader(frame);
  const password = r.cstring('password');
  r.end();
  return password;
}

export function decodeSaslInitialResponse(frame: Frame): { mechanism: string; data: Buffer | null } {
  const r = reader(frame);
  const mechanism = r.cstring('mechanism');
  const length = r.int32('data length');
  const data = length === -1 ? null : r.bytes(length, 'data');
  r.end();
  return { mechanism, data };
}

// ---- encoders (what a proxy sends upstream) ----

export function encodeSslRequest(): Buffer {
  return message(null, [int32(SSL_REQUEST_CODE)]);
}

export function encodeGssEncRequest(): Buffer {
  return message(null, [int32(GSSENC_REQUEST_CODE)]);
}

export function encodeCancelRequest(processId: number, secretKey: Uint8Array): Buffer {
  return message(null, [int32(CANCEL_REQUEST_CODE), int32(processId), bytes(secretKey)]);
}

export function encodeStartupMessage(parameters: ReadonlyMap<string, string> | Readonly<Record<string, string>>, protocolVersion = PROTOCOL_VERSION_3_0): Buffer {
  const entries = parameters instanceof Map ? [...parameters] : Object.entries(parameters);
  const fields: Field[] = [int32(protocolVersion)];
  for (const [name, value] of entries) fields.push(cstring(name), cstring(value));
  fields.push(byte(0));
  return message(null, fields);
}

export function encodePasswordMessage(password: string): Buffer {
  return message(FrontendType.Password, [cstring(password)]);
}

export function encodeSaslInitialResponse(mechanism: string, data: Uint8Array): Buffer {
  return message(FrontendType.Password, [cstring(mechanism), int32(data.length), bytes(data)]);
}

export function encodeSaslResponse(data: Uint8Array): Buffer {
  return message(FrontendType.Password, [bytes(data)]);
}

export function encodeQuery(sql: string): Buffer {
  return message(FrontendType.Query, [cstring(sql)]);
}

export function encodeParse(parse: ParseMessage): Buffer {
  return message(FrontendType.Parse, [cstring(parse.statement), cstring(parse.query), uint16(parse.parameterTypes.length), ...parse.parameterTypes.map((t) => int32(t | 0))]);
}

export function encodeBind(bind: BindMessage): Buffer {
  const fields: Field[] = [cstring(bind.portal), cstring(bind.statement), uint16(bind.parameterFormats.length), ...bind.parameterFormats.map((f) => int16(f))];
  fields.push(uint16(bind.parameters.length));
  for (const value of bind.parameters) {
    if (value === null) fields.push(int32(-1));
    else fields.push(int32(value.length), bytes(value));
  }
  fields.push(uint16(bind.resultFormats.length), ...bind.resultFormats.map((f) => int16(f)));
  return message(FrontendType.Bind, fields);
}

export function encodeDescribe(target: 'S' | 'P', name: string): Buffer {
  return message(FrontendType.Describe, [byte(target.charCodeAt(0)), cstring(name)]);
}

export function encodeClose(target: 'S' | 'P', name: string): Buffer {
  return message(FrontendType.Close, [byte(target.charCodeAt(0)), cstring(name)]);
}

export function encodeExecute(portal: string, maxRows = 0): Buffer {
  return message(FrontendType.Execute, [cstring(portal), int32(maxRows)]);
}

export function encodeSync(): Buffer {
  return message(FrontendType.Sync, []);
}

export function encodeFlush(): Buffer {
  return message(FrontendType.Flush, []);
}

export function encodeTerminate(): Buffer {
  return message(FrontendType.Terminate, []);
}

/** CopyData ('d'); the same layout in both directions. */
export function encodeCopyData(data: Uint8Array): Buffer {
  return message(FrontendType.CopyData, [bytes(data)]);
}

export function encodeCopyDone(): Buffer {
  return message(FrontendType.CopyDone, []);
}

export function encodeCopyFail(reason: string): Buffer {
  return message(FrontendType.CopyFail, [cstring(reason)]);
}

/** The format of parameter `index` under Bind's format-code rules (none: text; one: all; else per parameter). */
export function parameterFormat(bind: Pick<BindMessage, 'parameterFormats'>, index: number): FormatCode {
  const formats = bind.parameterFormats;
  if (formats.length === 0) return 0;
  if (formats.length === 1) return formats[0]!;
  return formats[index] ?? 0;
}

/** The format of result column `index` under Bind's result-format rules. */
export function resultFormat(resultFormats: readonly FormatCode[], index: number): FormatCode {
  if (resultFormats.length === 0) return 0;
  if (resultFormats.length === 1) return resultFormats[0]!;
  return resultFormats[index] ?? 0;
}

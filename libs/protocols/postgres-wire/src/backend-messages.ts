// Backend (server → client) messages: decoders for what a proxy reads (authentication, row
// descriptions, rows, errors, status) and encoders for what it writes (rewritten rows, its own
// errors, the login it terminates).
import type { Frame } from './framer.js';
import { MessageReader } from './message-reader.js';
import { byte, bytes, cstring, int16, int32, message, type Field } from './message-writer.js';
import { AuthCode, BackendType, backendMessageName, type TransactionStatus } from './protocol-codes.js';

function reader(frame: Frame): MessageReader {
  return new MessageReader(frame.body, backendMessageName(frame.type));
}

export type AuthenticationRequest =
  | { readonly kind: 'ok' }
  | { readonly kind: 'cleartext-password' }
  | { readonly kind: 'md5-password'; readonly salt: Buffer }
  | { readonly kind: 'sasl'; readonly mechanisms: readonly string[] }
  | { readonly kind: 'sasl-continue'; readonly data: Buffer }
  | { readonly kind: 'sasl-final'; readonly data: Buffer }
  | { readonly kind: 'unsupported'; readonly code: number };

export function decodeAuthentication(frame: Frame): AuthenticationRequest {
  const r = reader(frame);
  const code = r.int32('authentication code');
  switch (code) {
    case AuthCode.Ok:
      r.end();
      return { kind: 'ok' };
    case AuthCode.CleartextPassword:
      r.end();
      return { kind: 'cleartext-password' };
    case AuthCode.MD5Password: {
      const salt = r.bytes(4, 'salt');
      r.end();
      return { kind: 'md5-password', salt };
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const mechanism = r.cstring('mechanism');
        if (mechanism === '') break;
        mechanisms.push(mechanism);
      }
      r.end();
      return { kind: 'sasl', mechanisms };
    }
    case AuthCode.SASLContinue:
      return { kind: 'sasl-continue', data: r.rest() };
    case AuthCode.SASLFinal:
      return { kind: 'sasl-final', data: r.rest() };
    default:
      return { kind: 'unsupported', code };
  }
}

export function decodeParameterStatus(frame: Frame): { name: string; value: string } {
  const r = reader(frame);
  const name = r.cstring('name');
  const value = r.cstring('value');
  r.end();
  return { name, value };
}

export function decodeBackendKeyData(frame: Frame): { processId: number; secretKey: Buffer } {
  const r = reader(frame);
  const processId = r.int32('process id');
  const secretKey = r.rest();
  if (secretKey.length < 4 || secretKey.length > 256) throw r.malformed(`secret key of ${secretKey.length} bytes`);
  return { processId, secretKey };
}

export function decodeReadyForQuery(frame: Frame): TransactionStatus {
  const r = reader(frame);
  const status = String.fromCharCode(r.byte('status'));
  r.end();
  if (status !== 'I' && status !== 'T' && status !== 'E') throw r.malformed(`transaction status ${JSON.stringify(status)}`);
  return status;
}

export interface FieldDescription {
  readonly name: string;
  /** 0 when the column is not a plain table column (an expression). */
  readonly tableOid: number;
  readonly columnAttribute: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  readonly format: 0 | 1;
}

export function decodeRowDescription(frame: Frame): FieldDescription[] {
  const r = reader(frame);
  const n = r.count('field', 19);
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring('field name');
    const tableOid = r.int32('table oid') >>> 0;
    const columnAttribute = r.int16('column attribute');
    const typeOid = r.int32('type oid') >>> 0;
    const typeSize = r.int16('type size');
    const typeModifier = r.int32('type modifier');
    const format = r.int16('format');
    if (format !== 0 && format !== 1) throw r.malformed(`format ${format}`);
    fields.push({ name, tableOid, columnAttribute, typeOid, typeSize, typeModifier, format });
  }
  r.end();
  return fields;
}

export function encodeRowDescription(fields: readonly FieldDescription[]): Buffer {
  const out: Field[] = [int16(fields.length)];
  for (const f of fields) out.push(cstring(f.name), int32(f.tableOid | 0), int16(f.columnAttribute), int32(f.typeOid | 0), int16(f.typeSize), int32(f.typeModifier), int16(f.format));
  return message(BackendType.RowDescription, out);
}

/** Column values as views into the message (null = SQL NULL). */
export function decodeDataRow(frame: Frame): (Buffer | null)[] {
  const r = reader(frame);
  const n = r.count('column', 4);
  const values: (Buffer | null)[] = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const length = r.int32('value length');
    if (length === -1) values[i] = null;
    else if (length < -1) throw r.malformed(`value length ${length}`);
    else values[i] = r.bytes(length, 'value');
  }
  r.end();
  return values;
}

/** A DataRow with exactly the lengths of the values given (one allocation). */
export function encodeDataRow(values: readonly (Uint8Array | null)[]): Buffer {
  let size = 4 + 2;
  for (const value of values) size += 4 + (value === null ? 0 : value.length);
  const out = Buffer.allocUnsafe(1 + size);
  out[0] = BackendType.DataRow;
  out.writeInt32BE(size, 1);
  out.writeInt16BE(values.length, 5);
  let offset = 7;
  for (const value of values) {
    if (value === null) {
      out.writeInt32BE(-1, offset);
      offset += 4;
    } else {
      out.writeInt32BE(value.length, offset);
      out.set(value, offset + 4);
      offset += 4 + value.length;
    }
  }
  return out;
}

/** ErrorResponse / NoticeResponse fields by their one-letter code (S severity, V, C SQLSTATE, M message, D detail, H hint, …). */
export type NoticeFields = ReadonlyMap<string, string>;

export function decodeNoticeFields(frame: Frame): Map<string, string> {
  const r = reader(frame);
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte('field code');
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring('field value'));
  }
  r.end();
  return fields;
}

function encodeNotice(type: number, fields: Iterable<readonly [string, string]>): Buffer {
  const out: Field[] = [];
  for (const [code, value] of fields) out.push(byte(code.charCodeAt(0)), cstring(value));
  out.push(byte(0));
  return message(type, out);
}

export interface ErrorSpec {
  readonly severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'INFO' | 'LOG' | 'DEBUG';
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** 1-based character position in the statement (field `P`), as a decimal string. */
  readonly position?: string;
}

function errorFields(spec: ErrorSpec): [string, string][] {
  const fields: [string, string][] = [
    ['S', spec.severity],
    ['V', spec.severity],
    ['C', spec.code],
    ['M', spec.message],
  ];
  if (spec.detail !== undefined) fields.push(['D', spec.detail]);
  if (spec.hint !== undefined) fields.push(['H', spec.hint]);
  if (spec.position !== undefined) fields.push(['P', spec.position]);
  return fields;
}

export function encodeErrorResponse(spec: ErrorSpec | Iterable<readonly [string, string]>): Buffer {
  return encodeNotice(BackendType.ErrorResponse, 'severity' in spec ? errorFields(spec) : spec);
}

export function encodeNoticeResponse(spec: ErrorSpec | Iterable<readonly [string, string]>): Buffer {
  return encodeNotice(BackendType.NoticeResponse, 'severity' in spec ? errorFields(spec) : spec);
}

export function decodeCommandComplete(frame: Frame): string {
  const r = reader(frame);
  const tag = r.cstring('tag');
  r.end();
  return tag;
}

export function encodeCommandComplete(tag: string): Buffer {
  return message(BackendType.CommandComplete, [cstring(tag)]);
}

export interface CopyResponse {
  /** 0 textual, 1 binary (the whole copy). */
  readonly format: number;
  readonly columnFormats: readonly number[];
}

export function decodeCopyResponse(frame: Frame): CopyResponse {
  const r = reader(frame);
  const format = r.byte('format');
  const n = r.count('column format', 2);
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(r.int16('column format'));
  r.end();
  return { format, columnFormats };
}

export function decodeNotification(frame: Frame): { processId: number; channel: string; payload: string } {
  const r = reader(frame);
  const processId = r.int32('process id');
  const channel = r.cstring('channel');
  const payload = r.cstring('payload');
  r.end();
  return { processId, channel, payload };
}

export function encodeNotification(processId: number, channel: string, payload: string): Buffer {
  return message(BackendType.NotificationResponse, [int32(processId), cstring(channel), cstring(payload)]);
}

export function encodeAuthenticationOk(): Buffer {
  return message(BackendType.Authentication, [int32(AuthCode.Ok)]);
}

export function encodeAuthenticationCleartextPassword(): Buffer {
  return message(BackendType.Authentication, [int32(AuthCode.CleartextPassword)]);
}

export function encodeAuthenticationMd5Password(salt: Uint8Array): Buffer {
  return message(BackendType.Authentication, [int32(AuthCode.MD5Password), bytes(salt)]);
}

export function encodeAuthenticationSasl(mechanisms: readonly string[]): Buffer {
  return message(BackendType.Authentication, [int32(AuthCode.SASL), ...mechanisms.map((m) => cstring(m)), byte(0)]);
}

export function encodeAuthenticationSaslContinue(data: Uint8Array): Buffer {
  return message(BackendType.Authentication, [int32(AuthCode.SASLContinue), bytes(data)]);
}

export function encodeAuthenticationSaslFinal(data: Uint8Array): Buffer {
  return message(BackendType.Authentication, [int32(AuthCode.SASLFinal), bytes(data)]);
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return message(BackendType.ParameterStatus, [cstring(name), cstring(value)]);
}

export function encodeBackendKeyData(processId: number, secretKey: Uint8Array): Buffer {
  return message(BackendType.BackendKeyData, [int32(processId), bytes(secretKey)]);
}

export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return message(BackendType.ReadyForQuery, [byte(status.charCodeAt(0))]);
}

export function encodeNegotiateProtocolVersion(newestMinor: number, unrecognized: readonly string[]): Buffer {
  return message(BackendType.NegotiateProtocolVersion, [int32(newestMinor), int32(unrecognized.length), ...unrecognized.map((o) => cstring(o))]);
}

export function encodeEmptyMessage(type: number): Buffer {
  return message(type, []);
}

/** SSL/GSSENC negotiation answers are a single byte, outside message framing. */
export const SSL_ACCEPTED = Buffer.from('S');
export const SSL_REFUSED = Buffer.from('N');

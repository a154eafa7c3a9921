// Masking of result rows. A plan is made once per RowDescription: for each column, whether a
// column rule covers it (by its `schema.table.column` from the catalog), whether the value
// detectors must look at it, or whether it passes untouched (types that cannot hold what the
// detectors find: booleans, small integers, floats, dates, UUIDs…). Rows of a result whose
// columns all pass are forwarded byte for byte; others are decoded, masked and re-encoded with
// new lengths. Binary-format values: text-like types are masked as text; arrays are read element
// by element (int8 and numeric elements as their digits); any other binary value (bytea, records,
// composite and unknown types) is scanned as the text its bytes hold. A binary value a rule covers,
// or in which a detector finds something, becomes NULL (never the original). A text-format bytea
// is scanned as the bytes its hex form encodes. A value longer than the scan limit is not scanned:
// it is replaced (fail closed), reported under rule `custodian:value-limit`.
// json and jsonb values (text, or jsonb's binary form: a version byte and the text) go through the
// policy's JSON-path rules when it has any (MaskingPolicy.maskJsonText): matched values masked,
// other strings scanned by the detectors, the rest of the document unchanged.
import { WireProtocolError, type FieldDescription, type Frame } from '@custodian/postgres-wire';
import type { FieldRule, MaskingFindings, MaskingPolicy } from '@custodian/masking';
import type { CatalogResolver, TableColumns } from './catalog.js';

/** Type OIDs whose text form no detector can match (no 13+ digit runs, no @, no separators that form SSNs/phones/IPs). */
const UNMATCHABLE_TYPES = new Set([
  16, // bool
  21, // int2
  23, // int4
  26, // oid
  700, // float4
  701, // float8
  1082, // date
  1083, // time
  1114, // timestamp
  1184, // timestamptz
  1186, // interval
  1266, // timetz
  2950, // uuid
]);

/** Types whose binary format is their UTF-8 text (so masked text can be sent back in binary). */
const TEXT_LIKE_BINARY = new Set([25, 1043, 1042, 19, 114, 142, 705, 18]);
const JSON_TYPE = 114;
const JSONB = 3802;
const INT8 = 20;
const NUMERIC = 1700;
const BYTEA = 17;

/** Largest value the detectors scan by default; a longer one is replaced (its scan would stall every session on the event loop). */
export const DEFAULT_MAX_SCANNED_VALUE_BYTES = 256 * 1024;
/** What replaces a value too long to scan. */
export const VALUE_LIMIT_RULE = 'custodian:value-limit';
export const VALUE_LIMIT_TEXT = `[REDACTED:${VALUE_LIMIT_RULE}]`;

type Action =
  | { readonly kind: 'pass' }
  | { readonly kind: 'rule'; readonly rule: FieldRule; readonly field: string; readonly format: 0 | 1; readonly typeOid: number }
  | {
      readonly kind: 'detect';
      readonly field: string;
      readonly format: 0 | 1;
      readonly typeOid: number;
      /** The value's bytes are its UTF-8 text, masked text goes back as UTF-8 (text format but bytea's hex; text-like binary). */
      readonly utf8: boolean;
    }
  | { readonly kind: 'json'; readonly field: string; readonly format: 0 | 1; readonly typeOid: number };

export interface RowPlan {
  /** Every column passes: forward rows as they are. */
  readonly passthrough: boolean;
  readonly actions: readonly Action[];
}

export const PASSTHROUGH_PLAN: RowPlan = { passthrough: true, actions: [] };

/** The catalog tables a RowDescription needs before a plan can be made. */
export function tablesOf(fields: readonly FieldDescription[]): number[] {
  return fields.filter((f) => f.tableOid !== 0).map((f) => f.tableOid);
}

export function planRows(fields: readonly FieldDescription[], masking: MaskingPolicy, catalog: CatalogResolver, hasColumnRules: boolean): RowPlan {
  const detecting = masking.detection.compiled.length > 0;
  const jsonPaths = masking.hasJsonPathRules;
  if (!detecting && !hasColumnRules && !jsonPaths) return PASSTHROUGH_PLAN;
  let passthrough = true;
  const actions: Action[] = fields.map((field) => {
    let qualified: string | undefined;
    let rule: FieldRule | undefined;
    if (field.tableOid !== 0) {
      const table = catalog.cached(field.tableOid);
      const column = table?.columns.get(field.columnAttribute);
      if (table && column !== undefined) {
        qualified = `${table.schema}.${table.table}.${column}`;
        if (hasColumnRules) rule = columnRuleFor(masking, table, column);
      }
    }
    const label = qualified ?? field.name;
    if (rule) {
      passthrough = false;
      return { kind: 'rule', rule, field: label, format: field.format, typeOid: field.typeOid };
    }
    if (jsonPaths && (field.typeOid === JSON_TYPE || field.typeOid === JSONB)) {
      passthrough = false;
      return { kind: 'json', field: label, format: field.format, typeOid: field.typeOid };
    }
    if (!detecting || UNMATCHABLE_TYPES.has(field.typeOid)) return { kind: 'pass' };
    passthrough = false;
    const utf8 = field.format === 0 ? field.typeOid !== BYTEA : TEXT_LIKE_BINARY.has(field.typeOid);
    return { kind: 'detect', field: label, format: field.format, typeOid: field.typeOid, utf8 };
  });
  return { passthrough, actions };
}

/**
 * The column rule covering a column of a relation: its own; else a parent's (a rule on a
 * partitioned or inherited table covers every partition and child); else, for a view, the rule of
 * a column the view reads — one of the same name first, then any (fail closed: which view column
 * derives from which base column is not in the catalog, so every column of a view that reads a
 * masked column is masked).
 */
export function columnRuleFor(masking: MaskingPolicy, table: TableColumns, column: string): FieldRule | undefined {
  const own = masking.forColumn(`${table.schema}.${table.table}.${column}`);
  if (own) return own;
  for (const ancestor of table.ancestors) {
    const inherited = masking.forColumn(`${ancestor}.${column}`);
    if (inherited) return inherited;
  }
  const sameName = table.sources.filter((source) => source.endsWith(`.${column}`));
  for (const source of [...sameName, ...table.sources]) {
    const read = masking.forColumn(source);
    if (read) return read;
  }
  return undefined;
}

/** A binary value as text, for the types the gateway can read; undefined for others. */
function binaryAsText(typeOid: number, value: Buffer): string | undefined {
  if (TEXT_LIKE_BINARY.has(typeOid)) return value.toString('utf8');
  if (typeOid === JSONB) return value.length > 0 && value[0] === 1 ? value.toString('utf8', 1) : undefined;
  if (typeOid === INT8 && value.length === 8) return value.readBigInt64BE(0).toString();
  if (typeOid === NUMERIC) return numericBinaryAsText(value);
  return undefined;
}

/** numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits. */
function numericBinaryAsText(value: Buffer): string | undefined {
  if (value.length < 8) return undefined;
  const ndigits = value.readUInt16BE(0);
  const weight = value.readInt16BE(2);
  const sign = value.readUInt16BE(4);
  if (value.length !== 8 + ndigits * 2 || sign === 0xc000) return undefined;
  let integer = '';
  for (let i = 0; i <= weight; i++) integer += i < ndigits ? String(value.readUInt16BE(8 + i * 2)).padStart(i === 0 ? 1 : 4, '0') : '0000';
  return `${sign === 0x4000 ? '-' : ''}${integer === '' ? '0' : integer}`;
}

function textBack(typeOid: number, text: string): Buffer {
  if (typeOid === JSONB) return Buffer.concat([Buffer.from([1]), Buffer.from(text, 'utf8')]);
  return Buffer.from(text, 'utf8');
}

/**
 * A json/jsonb document's text under the path rules: masked where they match; text that is not
 * JSON (never from PostgreSQL, but fail closed) goes to the detectors; a document beyond the
 * masker's limits is replaced whole.
 */
function maskJsonDocument(text: string, field: string, masking: MaskingPolicy, findings: MaskingFindings): string {
  const result = masking.maskJsonText(text, { location: field, findings });
  if (result.outcome === 'invalid') return masking.maskText(text, field, findings);
  return result.text;
}

/**
 * Text a detector must see in a binary value the gateway cannot write back as text: an array's
 * elements (int8/numeric as digits, one per line), or the bytes as UTF-8 (bytea, records and
 * composite types hold their text fields as plain UTF-8 between length words). Undefined: the
 * value cannot hold anything a detector finds (an array of unmatchable elements).
 */
function binaryScanText(value: Buffer): string | undefined {
  const array = arrayElements(value);
  if (array) {
    if (UNMATCHABLE_TYPES.has(array.elementType)) return undefined;
    if (array.elementType === INT8 || array.elementType === NUMERIC) return array.elements.map((element) => binaryAsText(array.elementType, element) ?? element.toString('latin1')).join('\n');
  }
  return value.toString('utf8');
}

/** A binary array's element type and (non-null) elements, when the value is laid out exactly as one. */
function arrayElements(value: Buffer): { elementType: number; elements: Buffer[] } | undefined {
  if (value.length < 12) return undefined;
  const dimensions = value.readInt32BE(0);
  const flags = value.readInt32BE(4);
  if (dimensions < 0 || dimensions > 6 || (flags !== 0 && flags !== 1)) return undefined;
  const elementType = value.readUInt32BE(8);
  let offset = 12;
  let count = dimensions === 0 ? 0 : 1;
  for (let d = 0; d < dimensions; d++) {
    if (offset + 8 > value.length) return undefined;
    const size = value.readInt32BE(offset);
    if (size < 0) return undefined;
    count *= size;
    offset += 8;
  }
  const elements: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    if (offset + 4 > value.length) return undefined;
    const length = value.readInt32BE(offset);
    offset += 4;
    if (length === -1) continue;
    if (length < 0 || offset + length > value.length) return undefined;
    elements.push(value.subarray(offset, offset + length));
    offset += length;
  }
  return offset === value.length ? { elementType, elements } : undefined;
}

/** A text-format bytea (`\x` hex) as the text its bytes hold; undefined for other values. */
function byteaHexAsText(value: Buffer): string | undefined {
  if (value.length < 2 || value[0] !== 0x5c || value[1] !== 0x78) return undefined;
  return Buffer.from(value.toString('latin1', 2), 'hex').toString('utf8');
}

/** What a value too long to scan becomes: the marker where the type can carry text (a JSON string for json), NULL otherwise. */
function valueLimitReplacement(format: 0 | 1, typeOid: number): Buffer | null {
  const text = typeOid === JSON_TYPE || typeOid === JSONB ? JSON.stringify(VALUE_LIMIT_TEXT) : VALUE_LIMIT_TEXT;
  if (format === 0) return Buffer.from(text, 'utf8');
  return TEXT_LIKE_BINARY.has(typeOid) || typeOid === JSONB ? textBack(typeOid, text) : null;
}

export interface RowMaskingLimits {
  /** Longest value the detectors and JSON paths scan; longer ones are replaced. */
  readonly maxScannedValueBytes: number;
}

/**
 * What scans a value's text: the detectors (`text`), or the JSON-path rules and the detectors
 * (`json`). Inline by default; the gateway runs long values in worker threads instead (it masks
 * the row twice: once to collect the long texts, then with their results, in the same order).
 */
export interface ValueScanner {
  text(text: string, field: string, findings: MaskingFindings): string;
  json(text: string, field: string, findings: MaskingFindings): string;
}

export function inlineValueScanner(masking: MaskingPolicy): ValueScanner {
  return {
    text: (text, field, findings) => masking.maskText(text, field, findings),
    json: (text, field, findings) => maskJsonDocument(text, field, masking, findings),
  };
}

/** A value left as it is. */
const KEEP = Symbol('keep');
/** What replaces a value: bytes, text (written as UTF-8), or NULL. */
type Replacement = Buffer | string | null;

const DEFAULT_LIMITS: RowMaskingLimits = { maxScannedValueBytes: DEFAULT_MAX_SCANNED_VALUE_BYTES };

/** Value offsets in a DataRow body (start -1: NULL), reused row after row; grown for wider rows. */
let scratchStarts = new Int32Array(64);
let scratchEnds = new Int32Array(64);
/** Changed columns, what replaces them and its byte length (reused likewise; emptied after each row). */
const scratchChanged: number[] = [];
const scratchReplacements: Replacement[] = [];
const scratchLengths: number[] = [];
let scratchBusy = false;

function malformed(problem: string): WireProtocolError {
  return new WireProtocolError('WIRE_MALFORMED', `DataRow: ${problem}`);
}

/** Checks a DataRow's layout (as decodeDataRow does) and records each value's offsets in the body; returns the column count. */
function readDataRowOffsets(body: Buffer, starts: Int32Array, ends: Int32Array): number {
  if (body.length < 2) throw malformed('truncated column count');
  const n = body.readUInt16BE(0);
  if (n * 4 > body.length - 2) throw malformed(`column count ${n} exceeds the message`);
  let offset = 2;
  for (let i = 0; i < n; i++) {
    if (offset + 4 > body.length) throw malformed('truncated value length');
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length === -1) {
      starts[i] = -1;
      continue;
    }
    if (length < -1) throw malformed(`value length ${length}`);
    if (offset + length > body.length) throw malformed('truncated value');
    starts[i] = offset;
    offset += length;
    ends[i] = offset;
  }
  if (offset !== body.length) throw malformed(`${body.length - offset} unexpected trailing bytes`);
  return n;
}

/**
 * Masks one DataRow under a plan; returns the frame's own bytes when nothing changed. A value the
 * detectors must read as UTF-8 text is first checked on its bytes (`mayMatchUtf8`): one that
 * cannot hold anything a detector finds is never decoded. A changed row is written in one
 * allocation, the unchanged values copied from the frame as they are.
 */
export function maskDataRow(
  frame: Frame,
  plan: RowPlan,
  masking: MaskingPolicy,
  findings: MaskingFindings,
  limits: RowMaskingLimits = DEFAULT_LIMITS,
  scanner?: ValueScanner,
): Buffer {
  if (plan.passthrough) return frame.raw;
  const body = frame.body;
  // Each value has at least its length word: a count beyond that is refused below.
  const columns = body.length >= 2 ? Math.min(body.readUInt16BE(0), (body.length - 2) >>> 2) : 0;
  // Reentered only if a scanner masked a row itself; then it gets its own offsets.
  const reuse = !scratchBusy;
  if (reuse && scratchStarts.length < columns) {
    scratchStarts = new Int32Array(columns);
    scratchEnds = new Int32Array(columns);
  }
  const starts = reuse ? scratchStarts : new Int32Array(columns);
  const ends = reuse ? scratchEnds : new Int32Array(columns);
  const changedColumns = reuse ? scratchChanged : [];
  const replacements = reuse ? scratchReplacements : [];
  let changed = 0;
  scratchBusy = true;
  try {
    const n = readDataRowOffsets(body, starts, ends);
    const detection = masking.detection;
    for (let i = 0; i < n; i++) {
      const start = starts[i] as number;
      const action = plan.actions[i];
      if (start < 0 || action === undefined || action.kind === 'pass') continue;
      const end = ends[i] as number;
      let result: Replacement | typeof KEEP;
      if (action.kind !== 'rule' && end - start > limits.maxScannedValueBytes) {
        // Bounded work per value: too long to scan, so it is not sent (fail closed).
        findings.add(action.field, VALUE_LIMIT_RULE);
        result = valueLimitReplacement(action.format, action.typeOid);
      } else if (action.kind === 'detect' && action.utf8) {
        if (!detection.mayMatchUtf8(body, start, end)) continue;
        const text = body.toString('utf8', start, end);
        const masked = scanner ? scanner.text(text, action.field, findings) : detection.maskCandidate(text, action.field, findings);
        result = masked === text ? KEEP : masked;
      } else {
        result = maskValue(body.subarray(start, end), action, masking, findings, scanner ?? inlineValueScanner(masking));
      }
      if (result === KEEP) continue;
      changedColumns[changed] = i;
      replacements[changed] = result;
      changed++;
    }
    return changed === 0 ? frame.raw : writeDataRow(frame, starts, ends, changedColumns, replacements, changed, reuse ? scratchLengths : []);
  } finally {
    // Keeps no value of this row.
    for (let k = 0; k < changed; k++) replacements[k] = null;
    if (reuse) scratchBusy = false;
  }
}

/** Below this many bytes a JS loop beats a native copy or encode call (their fixed cost dominates). */
const SHORT = 64;

/** Copies src[from, to) to dst at `at`; returns the byte count. */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const length = to - from;
  if (length > SHORT) return src.copy(dst, at, from, to);
  for (let i = 0; i < length; i++) dst[at + i] = src[from + i] as number;
  return length;
}

/** UTF-8 length of a replacement text, and whether it is ASCII (then each character is one byte). */
function utf8Length(text: string): number {
  if (text.length <= SHORT) {
    let i = 0;
    while (i < text.length && text.charCodeAt(i) < 0x80) i++;
    if (i === text.length) return text.length;
  }
  return Buffer.byteLength(text, 'utf8');
}

function writeText(out: Buffer, text: string, at: number, length: number): void {
  if (length === text.length && length <= SHORT) {
    // ASCII (see utf8Length): one byte per character.
    for (let i = 0; i < length; i++) out[at + i] = text.charCodeAt(i);
  } else out.write(text, at, length, 'utf8');
}

/** The frame with the values of the first `count` `columns` (ascending) replaced: one allocation, the rest copied as it is. */
function writeDataRow(frame: Frame, starts: Int32Array, ends: Int32Array, columns: readonly number[], replacements: readonly Replacement[], count: number, lengths: number[]): Buffer {
  const raw = frame.raw;
  const bodyStart = raw.length - frame.body.length;
  let size = raw.length;
  for (let k = 0; k < count; k++) {
    const column = columns[k] as number;
    const value = replacements[k] as Replacement;
    const length = value === null ? 0 : typeof value === 'string' ? utf8Length(value) : value.length;
    lengths[k] = length;
    size += length - ((ends[column] as number) - (starts[column] as number));
  }
  const out = Buffer.allocUnsafe(size);
  // Type byte, then the new length word.
  copyBytes(raw, 0, bodyStart - 4, out, 0);
  out.writeInt32BE(size - (bodyStart - 4), bodyStart - 4);
  let from = bodyStart;
  let to = bodyStart;
  for (let k = 0; k < count; k++) {
    const column = columns[k] as number;
    const lengthWord = bodyStart + (starts[column] as number) - 4;
    to += copyBytes(raw, from, lengthWord, out, to);
    const value = replacements[k] as Replacement;
    if (value === null) {
      out.writeInt32BE(-1, to);
      to += 4;
    } else {
      const length = lengths[k] as number;
      out.writeInt32BE(length, to);
      to += 4;
      if (typeof value === 'string') writeText(out, value, to, length);
      else out.set(value, to);
      to += length;
    }
    from = bodyStart + (ends[column] as number);
  }
  copyBytes(raw, from, raw.length, out, to);
  return out;
}

/** One value under its action (not a value-limit case): KEEP, or what replaces it. */
function maskValue(value: Buffer, action: Exclude<Action, { kind: 'pass' }>, masking: MaskingPolicy, findings: MaskingFindings, scanner: ValueScanner): Replacement | typeof KEEP {
  if (action.kind === 'json') {
    const text = action.format === 0 ? value.toString('utf8') : binaryAsText(action.typeOid, value);
    // A jsonb binary version this gateway cannot read: the path rules cannot be checked (fail closed).
    if (text === undefined) return null;
    const masked = scanner.json(text, action.field, findings);
    if (masked === text) return KEEP;
    return action.format === 0 ? Buffer.from(masked, 'utf8') : textBack(action.typeOid, masked);
  }
  if (action.format === 0) {
    const hidden = action.kind === 'detect' && action.typeOid === BYTEA ? byteaHexAsText(value) : undefined;
    if (hidden !== undefined) {
      // The hex form hides text from the detectors: scan what it encodes; a find cannot be masked in place.
      return scanner.text(hidden, action.field, findings) !== hidden ? null : KEEP;
    }
    const text = value.toString('utf8');
    const masked = action.kind === 'rule' ? action.rule.mask(text) : scanner.text(text, action.field, findings);
    if (action.kind === 'rule') findings.add(action.field, action.rule.id);
    return masked !== text ? Buffer.from(masked, 'utf8') : KEEP;
  }
  const text = binaryAsText(action.typeOid, value);
  const writable = TEXT_LIKE_BINARY.has(action.typeOid) || action.typeOid === JSONB;
  if (action.kind === 'rule') {
    findings.add(action.field, action.rule.id);
    return text !== undefined && writable ? textBack(action.typeOid, action.rule.mask(text)) : null;
  }
  const scanned = text ?? binaryScanText(value);
  if (scanned === undefined) return KEEP;
  const masked = scanner.text(scanned, action.field, findings);
  if (text === undefined) return masked === scanned ? KEEP : null;
  if (masked === text) return KEEP;
  return writable ? textBack(action.typeOid, masked) : null;
}

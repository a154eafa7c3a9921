// Masking of result rows. A plan is made once per RowDescription: for each column, whether a
// column rule covers it (by its `schema.table.column` from the catalog), whether the value
// detectors must look at it, or whether it passes untouched (types that cannot hold what the
// detectors find: booleans, small integers, floats, dates, UUIDs…). Rows of a result whose
// columns all pass are forwarded byte for byte; others are decoded, masked and re-encoded with
// new lengths. Binary-format values: text-like types are masked as text; any other binary value
// a rule covers, or in which a detector finds something, becomes NULL (never the original).
// json and jsonb values (text, or jsonb's binary form: a version byte and the text) go through the
// policy's JSON-path rules when it has any (MaskingPolicy.maskJsonText): matched values masked,
// other strings scanned by the detectors, the rest of the document unchanged.
import { decodeDataRow, encodeDataRow, type FieldDescription, type Frame } from '@custodian/postgres-wire';
import type { FieldRule, MaskingFindings, MaskingPolicy } from '@custodian/masking';
import type { CatalogResolver } from './catalog.js';

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

type Action =
  | { readonly kind: 'pass' }
  | { readonly kind: 'rule'; readonly rule: FieldRule; readonly field: string; readonly format: 0 | 1; readonly typeOid: number }
  | { readonly kind: 'detect'; readonly field: string; readonly format: 0 | 1; readonly typeOid: number }
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
    if (field.tableOid !== 0) {
      const table = catalog.cached(field.tableOid);
      const column = table?.columns.get(field.columnAttribute);
      if (table && column !== undefined) qualified = `${table.schema}.${table.table}.${column}`;
    }
    const label = qualified ?? field.name;
    const rule = qualified !== undefined && hasColumnRules ? masking.forColumn(qualified) : undefined;
    if (rule) {
      passthrough = false;
      return { kind: 'rule', rule, field: label, format: field.format, typeOid: field.typeOid };
    }
    if (jsonPaths && (field.typeOid === JSON_TYPE || field.typeOid === JSONB)) {
      passthrough = false;
      return { kind: 'json', field: label, format: field.format, typeOid: field.typeOid };
    }
    if (!detecting || UNMATCHABLE_TYPES.has(field.typeOid)) return { kind: 'pass' };
    if (field.format === 1 && !TEXT_LIKE_BINARY.has(field.typeOid) && field.typeOid !== JSONB && field.typeOid !== INT8 && field.typeOid !== NUMERIC) return { kind: 'pass' };
    passthrough = false;
    return { kind: 'detect', field: label, format: field.format, typeOid: field.typeOid };
  });
  return { passthrough, actions };
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

/** Masks one DataRow under a plan; returns the frame's own bytes when nothing changed. */
export function maskDataRow(frame: Frame, plan: RowPlan, masking: MaskingPolicy, findings: MaskingFindings): Buffer {
  if (plan.passthrough) return frame.raw;
  const values = decodeDataRow(frame);
  let changed = false;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    const action = plan.actions[i];
    if (value === null || value === undefined || action === undefined || action.kind === 'pass') continue;
    if (action.kind === 'json') {
      const text = action.format === 0 ? value.toString('utf8') : binaryAsText(action.typeOid, value);
      if (text === undefined) {
        // A jsonb binary version this gateway cannot read: the path rules cannot be checked (fail closed).
        values[i] = null;
        changed = true;
        continue;
      }
      const masked = maskJsonDocument(text, action.field, masking, findings);
      if (masked !== text) {
        values[i] = action.format === 0 ? Buffer.from(masked, 'utf8') : textBack(action.typeOid, masked);
        changed = true;
      }
      continue;
    }
    if (action.format === 0) {
      const text = value.toString('utf8');
      const masked = action.kind === 'rule' ? action.rule.mask(text) : masking.maskText(text, action.field, findings);
      if (action.kind === 'rule') findings.add(action.field, action.rule.id);
      if (masked !== text) {
        values[i] = Buffer.from(masked, 'utf8');
        changed = true;
      }
      continue;
    }
    const text = binaryAsText(action.typeOid, value);
    const writable = TEXT_LIKE_BINARY.has(action.typeOid) || action.typeOid === JSONB;
    if (action.kind === 'rule') {
      findings.add(action.field, action.rule.id);
      values[i] = text !== undefined && writable ? textBack(action.typeOid, action.rule.mask(text)) : null;
      changed = true;
      continue;
    }
    if (text === undefined) continue;
    const masked = masking.maskText(text, action.field, findings);
    if (masked === text) continue;
    values[i] = writable ? textBack(action.typeOid, masked) : null;
    changed = true;
  }
  return changed ? encodeDataRow(values) : frame.raw;
}

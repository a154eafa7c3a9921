// Masking what an MCP server returns before the client sees it: detectors over every string of the
// message (`content[].text`, resource contents, prompt messages …), JSON-path rules over
// `structuredContent` (paths relative to it, e.g. `$.customer.email`), and a structured result kept
// valid against the tool's `outputSchema`: a masked value whose schema type is not a string becomes
// a typed placeholder (0, false) or fails the call, per the gateway's setting.
import type { MaskingFindings, MaskingPolicy } from '@custodian/masking';

export type StructuredMaskingConflict = 'placeholder' | 'fail';

export type MaskedMessage = { readonly ok: true; readonly text: string; readonly changed: boolean } | { readonly ok: false; readonly reason: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The schema's declared type at one step (`properties`, `items`, `additionalProperties`); undefined when the schema says nothing. */
function childSchema(schema: unknown, key: string | number): unknown {
  if (!isObject(schema)) return undefined;
  if (typeof key === 'number') return schema['items'];
  const properties = schema['properties'];
  if (isObject(properties) && key in properties) return properties[key];
  return isObject(schema['additionalProperties']) ? schema['additionalProperties'] : undefined;
}

function schemaTypes(schema: unknown): readonly string[] {
  if (!isObject(schema)) return [];
  const type = schema['type'];
  if (typeof type === 'string') return [type];
  return Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : [];
}

/**
 * Walks the masked structured content against the original: where masking turned a value into a
 * string the schema does not allow there, puts a typed placeholder (or reports the conflict).
 */
function repairAgainstSchema(original: unknown, masked: unknown, schema: unknown, conflict: StructuredMaskingConflict, path: string): { value: unknown; problem?: string } {
  if (isObject(original) && isObject(masked)) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(masked)) {
      const repaired = repairAgainstSchema(original[key], value, childSchema(schema, key), conflict, `${path}.${key}`);
      if (repaired.problem) return repaired;
      out[key] = repaired.value;
    }
    return { value: out };
  }
  if (Array.isArray(original) && Array.isArray(masked)) {
    const out: unknown[] = [];
    for (let i = 0; i < masked.length; i++) {
      const repaired = repairAgainstSchema(original[i], masked[i], childSchema(schema, i), conflict, `${path}[${i}]`);
      if (repaired.problem) return repaired;
      out.push(repaired.value);
    }
    return { value: out };
  }
  if (typeof masked !== 'string' || masked === original) return { value: masked };
  const types = schemaTypes(schema);
  if (types.length === 0 || types.includes('string')) return { value: masked };
  if (conflict === 'fail') return { value: masked, problem: `the masked value at ${path} would break the tool's outputSchema (${types.join('|')})` };
  if (types.includes('null')) return { value: null };
  if (types.includes('number') || types.includes('integer')) return { value: 0 };
  if (types.includes('boolean')) return { value: false };
  if (types.includes('array')) return { value: [] };
  if (types.includes('object')) return { value: {} };
  return { value: masked };
}

export interface MaskMessageOptions {
  readonly policy: MaskingPolicy;
  readonly findings: MaskingFindings;
  /** The called tool's `outputSchema`, for a `tools/call` result. */
  readonly outputSchema?: unknown;
  readonly conflict: StructuredMaskingConflict;
}

/** Masks one upstream→client JSON-RPC message; `ok: false` when it is not JSON or cannot be kept valid. */
export function maskMessage(text: string, options: MaskMessageOptions): MaskedMessage {
  const { policy, findings } = options;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the MCP server sent a message that is not JSON' };
  }
  let message = text;
  let changed = false;
  const result = isObject(parsed) ? parsed['result'] : undefined;
  if (isObject(result) && result['structuredContent'] !== undefined && isObject(parsed)) {
    const original = result['structuredContent'];
    const masked = policy.maskJsonText(JSON.stringify(original), { location: 'structuredContent', findings });
    if (masked.outcome === 'invalid') return { ok: false, reason: 'structuredContent is not JSON' };
    if (masked.outcome === 'refused' || masked.changed) {
      const repaired = options.outputSchema === undefined ? { value: JSON.parse(masked.text) as unknown } : repairAgainstSchema(original, JSON.parse(masked.text), options.outputSchema, options.conflict, '$');
      if (repaired.problem) return { ok: false, reason: repaired.problem };
      message = JSON.stringify({ ...parsed, result: { ...result, structuredContent: repaired.value } });
      changed = true;
    }
  }
  // An input-required result's `requestState` (2026-07-28) is the server's opaque (often signed)
  // state the client echoes back on its retry: masking inside it would break the retry, so it is
  // set aside and put back unchanged.
  const requestState = isObject(result) && typeof result['requestState'] === 'string' ? result['requestState'] : undefined;
  if (requestState !== undefined) {
    const current = JSON.parse(message) as Record<string, unknown>;
    message = JSON.stringify({ ...current, result: { ...(current['result'] as Record<string, unknown>), requestState: '' } });
  }
  // Detectors over every other string (content[].text, resource contents, prompt messages …).
  const whole = policy.maskJsonText(message, { location: 'message', findings });
  if (whole.outcome === 'invalid') return { ok: false, reason: 'the MCP server sent a message that is not JSON' };
  if (whole.outcome === 'refused') return { ok: false, reason: `the MCP server's message is ${whole.reason === 'too-deep' ? 'nested too deep' : 'too large'} to mask` };
  if (requestState !== undefined) {
    const masked = JSON.parse(whole.text) as Record<string, unknown>;
    return { ok: true, text: JSON.stringify({ ...masked, result: { ...(masked['result'] as Record<string, unknown>), requestState } }), changed: changed || whole.changed };
  }
  return { ok: true, text: whole.text, changed: changed || whole.changed };
}

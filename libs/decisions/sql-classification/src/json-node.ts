// libpg-query returns the parse tree as JSON: a node is `{ TypeName: { ...fields } }`, while
// fields declared with a concrete struct type hold that struct without the wrapper. These
// accessors keep the walking code free of casts.

export type JsonRecord = { readonly [key: string]: unknown };

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{ TypeName: fields }` → [TypeName, fields]; undefined for anything else. */
export function unwrapNode(value: unknown): [string, JsonRecord] | undefined {
  if (!isRecord(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const type = keys[0] as string;
  const fields = value[type];
  if (!isNodeTypeName(type) || !isRecord(fields)) return undefined;
  return [type, fields];
}

/** Node type names start upper-case (`SelectStmt`, `A_Const`); field names never do. */
export function isNodeTypeName(key: string): boolean {
  const first = key.charCodeAt(0);
  return first >= 65 && first <= 90;
}

export function field(record: JsonRecord | undefined, name: string): unknown {
  return record === undefined ? undefined : record[name];
}

export function recordField(record: JsonRecord | undefined, name: string): JsonRecord | undefined {
  const value = field(record, name);
  return isRecord(value) ? value : undefined;
}

export function arrayField(record: JsonRecord | undefined, name: string): readonly unknown[] {
  const value = field(record, name);
  return Array.isArray(value) ? value : [];
}

export function stringField(record: JsonRecord | undefined, name: string): string | undefined {
  const value = field(record, name);
  return typeof value === 'string' ? value : undefined;
}

/** The `sval` of each `{ String: { sval } }` in a name list (function names, qualified names). */
export function stringList(values: readonly unknown[]): string[] {
  const names: string[] = [];
  for (const value of values) {
    const node = unwrapNode(value);
    if (node?.[0] === 'String') names.push(stringField(node[1], 'sval') ?? '');
  }
  return names;
}

/** Structural equality ignoring `location`, for comparing expressions (`x = x`). */
export function sameExpression(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, dropLocation) === JSON.stringify(b, dropLocation);
}

function dropLocation(key: string, value: unknown): unknown {
  return key === 'location' ? undefined : value;
}

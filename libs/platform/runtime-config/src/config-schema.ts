import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/** A JSON Schema node, as far as this library reads it. */
export interface SchemaNode {
  readonly $ref?: string;
  readonly type?: string | readonly string[];
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
  readonly oneOf?: readonly SchemaNode[];
  readonly anyOf?: readonly SchemaNode[];
  readonly allOf?: readonly SchemaNode[];
  readonly $defs?: Readonly<Record<string, SchemaNode>>;
  readonly 'x-custodian-secret'?: boolean;
  readonly 'x-custodian-hint'?: string;
  /** Keys that moved elsewhere: key here → its dotted path now (named in the error for the old key). */
  readonly 'x-custodian-moved'?: Readonly<Record<string, string>>;
}

/** Path of the configuration contract inside the @custodian/schemas package. */
export const CONFIG_SCHEMA_SPECIFIER = '@custodian/schemas/config/custodian.config.schema.json';

let cachedSchema: SchemaNode | undefined;

/** The configuration JSON Schema, read from schemas/config (the single source of truth). */
export function configSchema(): SchemaNode {
  if (!cachedSchema) {
    const path = createRequire(import.meta.url).resolve(CONFIG_SCHEMA_SPECIFIER);
    cachedSchema = JSON.parse(readFileSync(path, 'utf8')) as SchemaNode;
  }
  return cachedSchema;
}

let cachedValidator: ValidateFunction | undefined;

/**
 * Validator that also fills in defaults (`useDefaults`). `verbose` gives errors their
 * parentSchema (for hints); error data is never read for messages.
 */
export function configValidator(): ValidateFunction {
  if (!cachedValidator) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, useDefaults: true, discriminator: true, verbose: true });
    // ajv-formats is CommonJS: `.default` is the plugin under NodeNext typing and at runtime.
    addFormatsModule.default(ajv);
    ajv.addKeyword({ keyword: 'x-custodian-secret', schemaType: 'boolean' });
    ajv.addKeyword({ keyword: 'x-custodian-hint', schemaType: 'string' });
    ajv.addKeyword({ keyword: 'x-custodian-moved', schemaType: 'object' });
    cachedValidator = ajv.compile(configSchema());
  }
  return cachedValidator;
}

function resolveRef(node: SchemaNode): SchemaNode {
  let current = node;
  for (let hops = 0; current.$ref !== undefined; hops++) {
    const m = /^#\/\$defs\/([^/]+)$/.exec(current.$ref);
    const target = m ? configSchema().$defs?.[m[1]!] : undefined;
    if (!target || hops > 16) throw new Error(`unsupported $ref ${current.$ref} in config schema`);
    // Siblings of $ref (description, default) are annotations; the referenced schema decides shape.
    const { $ref: _ref, ...siblings } = current;
    current = { ...siblings, ...target };
  }
  return current;
}

/** The alternatives a value at this schema may take: $refs resolved, oneOf/anyOf/allOf flattened. */
export function alternatives(node: SchemaNode): SchemaNode[] {
  const resolved = resolveRef(node);
  const branches = [...(resolved.oneOf ?? []), ...(resolved.anyOf ?? []), ...(resolved.allOf ?? [])];
  if (branches.length === 0) return [resolved];
  // The node itself may carry properties alongside its branches; keep it too.
  return [resolved, ...branches.flatMap(alternatives)];
}

/** True when the schema (or a $ref it goes through) marks the value as secret-bearing. */
export function isSecretSchema(node: SchemaNode): boolean {
  if (node['x-custodian-secret']) return true;
  return resolveRef(node)['x-custodian-secret'] === true;
}

/** The JSON types a schema alternative admits, from `type`, `const` or `enum`. */
export function schemaTypes(node: SchemaNode): Set<string> {
  const out = new Set<string>();
  if (typeof node.type === 'string') out.add(node.type);
  else if (Array.isArray(node.type)) for (const t of node.type as string[]) out.add(t);
  const literals = node.const !== undefined ? [node.const] : (node.enum ?? []);
  for (const v of literals) out.add(Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
  return out;
}

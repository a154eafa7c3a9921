// Generates, from the JSON Schemas in schemas/events (the single source of truth):
//   libs/events/event-contracts/src/generated/types.ts    TypeScript types for every payload version
//   libs/events/event-contracts/src/generated/schemas.ts  the schemas embedded for ajv at runtime
//   docs/events.md                                 the event catalogue
// `node scripts/generate-contracts.ts --check` fails when a generated file is stale (CI runs it via a test).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile, type JSONSchema } from 'json-schema-to-typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const eventsDir = join(root, 'schemas/events');
const payloadsDir = join(eventsDir, 'payloads');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface PayloadSchemaFile {
  readonly file: string;
  readonly type: string;
  readonly version: number;
  readonly title: string;
  readonly schema: JsonObject;
}

function readJson(path: string): JsonObject {
  return JSON.parse(readFileSync(path, 'utf8')) as JsonObject;
}

export function loadPayloadSchemas(): PayloadSchemaFile[] {
  const files = readdirSync(payloadsDir).filter((f) => /\.v\d+\.schema\.json$/.test(f)).sort();
  return files.map((file) => {
    const schema = readJson(join(payloadsDir, file));
    const meta = schema['x-custodian'] as JsonObject | undefined;
    if (!meta || typeof meta.type !== 'string' || typeof meta.version !== 'number') {
      throw new Error(`${file}: missing x-custodian.type / x-custodian.version`);
    }
    const expected = `${meta.type}.v${meta.version}.schema.json`;
    if (file !== expected) throw new Error(`${file}: file name must be ${expected}`);
    if (typeof schema.title !== 'string') throw new Error(`${file}: missing title`);
    return { file, type: meta.type, version: meta.version, title: schema.title, schema };
  });
}

const commonDefs = (readJson(join(payloadsDir, 'common.schema.json')).$defs ?? {}) as JsonObject;

/** A scalar common definition (a constrained string) is inlined, so it reads as `string` rather than an alias per use. */
function scalarCommonDef(ref: string): JsonObject | undefined {
  const m = /^common\.schema\.json#\/\$defs\/(\w+)$/.exec(ref);
  const def = m ? (commonDefs[m[1]!] as JsonObject | undefined) : undefined;
  return def && def.type === 'string' && !Array.isArray(def.enum) ? def : undefined;
}

/** Rewrites cross-file refs (`common.schema.json#/$defs/X`) to local refs in one bundle. */
function localizeRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(localizeRefs);
  if (value && typeof value === 'object') {
    const ref = value.$ref;
    const scalar = typeof ref === 'string' ? scalarCommonDef(ref) : undefined;
    if (scalar) {
      const { $ref: _ref, ...siblings } = value;
      return { ...scalar, ...siblings };
    }
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '$id' || k === '$schema' || k === 'x-custodian') continue;
      if (k === '$ref' && typeof v === 'string') out[k] = v.replace(/^common\.schema\.json#/, '#');
      else out[k] = localizeRefs(v);
    }
    return out;
  }
  return value;
}

function typeKey(type: string): string {
  return JSON.stringify(type);
}

async function renderTypes(payloads: PayloadSchemaFile[]): Promise<string> {
  const common = readJson(join(payloadsDir, 'common.schema.json'));
  const envelope = readJson(join(eventsDir, 'envelope.schema.json'));
  const defs: JsonObject = {};
  for (const [name, def] of Object.entries(common.$defs as JsonObject)) {
    if (scalarCommonDef(`common.schema.json#/$defs/${name}`)) continue;
    defs[name] = { title: name, ...(localizeRefs(def) as JsonObject) };
  }
  for (const [name, def] of Object.entries(envelope.$defs as JsonObject)) defs[name] = localizeRefs(def);
  const envelopeBody = localizeRefs({ ...envelope, $defs: null }) as JsonObject;
  delete envelopeBody.$defs;
  defs.EventEnvelopeFields = { ...envelopeBody, title: 'EventEnvelopeFields' };
  for (const p of payloads) defs[p.title] = localizeRefs(p.schema);

  const bundle = { title: 'CustodianEventContracts', type: 'object', additionalProperties: false, properties: {}, $defs: defs };
  let ts = await compile(bundle as unknown as JSONSchema, 'CustodianEventContracts', {
    bannerComment: '',
    unreachableDefinitions: true,
    additionalProperties: false,
    strictIndexSignatures: true,
    format: true,
    cwd: payloadsDir,
  });
  // The synthetic bundle root is only a vehicle for $defs.
  ts = ts.replace(/export interface CustodianEventContracts \{\}\n\n?/, '');

  const latest = new Map<string, PayloadSchemaFile>();
  for (const p of payloads) {
    const cur = latest.get(p.type);
    if (!cur || cur.version < p.version) latest.set(p.type, p);
  }
  const types = [...latest.keys()].sort();
  const lines: string[] = [];
  lines.push('// GENERATED by scripts/generate-contracts.ts from schemas/events. Do not edit; run `npm run generate`.');
  lines.push('/* eslint-disable */');
  lines.push(ts.trim());
  lines.push('');
  lines.push('/** Latest payload type for each event type. */');
  lines.push('export interface EventPayloads {');
  for (const t of types) lines.push(`  ${typeKey(t)}: ${latest.get(t)!.title};`);
  lines.push('}');
  lines.push('');
  lines.push('/** Every stored payload version for each event type (older ones are upcast on read). */');
  lines.push('export interface EventPayloadVersions {');
  for (const t of types) {
    const versions = payloads.filter((p) => p.type === t).map((p) => `${p.version}: ${p.title}`);
    lines.push(`  ${typeKey(t)}: { ${versions.join('; ')} };`);
  }
  lines.push('}');
  lines.push('');
  lines.push('export const EVENT_TYPES = [');
  for (const t of types) lines.push(`  ${typeKey(t)},`);
  lines.push('] as const;');
  lines.push('');
  lines.push('export const LATEST_SCHEMA_VERSIONS: { readonly [T in keyof EventPayloads]: number } = {');
  for (const t of types) lines.push(`  ${typeKey(t)}: ${latest.get(t)!.version},`);
  lines.push('};');
  return lines.join('\n') + '\n';
}

function renderSchemasModule(payloads: PayloadSchemaFile[]): string {
  const common = readJson(join(payloadsDir, 'common.schema.json'));
  const envelope = readJson(join(eventsDir, 'envelope.schema.json'));
  const out: string[] = [];
  out.push('// GENERATED by scripts/generate-contracts.ts from schemas/events. Do not edit; run `npm run generate`.');
  out.push('/* eslint-disable */');
  out.push('export interface EmbeddedPayloadSchema {');
  out.push('  readonly type: string;');
  out.push('  readonly version: number;');
  out.push('  readonly schema: Readonly<Record<string, unknown>>;');
  out.push('}');
  out.push(`export const envelopeSchema: Readonly<Record<string, unknown>> = ${JSON.stringify(envelope, null, 2)};`);
  out.push(`export const commonSchema: Readonly<Record<string, unknown>> = ${JSON.stringify(common, null, 2)};`);
  out.push('export const payloadSchemas: readonly EmbeddedPayloadSchema[] = [');
  for (const p of payloads) out.push(`  { type: ${JSON.stringify(p.type)}, version: ${p.version}, schema: ${JSON.stringify(p.schema)} },`);
  out.push('];');
  return out.join('\n') + '\n';
}

function describeType(prop: JsonObject, common: JsonObject): string {
  const ref = prop.$ref;
  if (typeof ref === 'string') {
    const name = ref.split('/').pop() ?? ref;
    const def = (common.$defs as JsonObject)[name] as JsonObject | undefined;
    if (def && Array.isArray(def.enum)) return def.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
    return name;
  }
  if (Array.isArray(prop.enum)) return prop.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
  if (Array.isArray(prop.oneOf)) return prop.oneOf.map((o) => describeType(o as JsonObject, common)).join(' \\| ');
  if (prop.type === 'array' && prop.items && typeof prop.items === 'object' && !Array.isArray(prop.items)) {
    return `${describeType(prop.items as JsonObject, common)}[]`;
  }
  if (Array.isArray(prop.type)) return prop.type.join(' \\| ');
  if (typeof prop.type === 'string') return prop.type + (typeof prop.format === 'string' ? ` (${prop.format})` : '');
  return 'object';
}

function fieldTable(schema: JsonObject, common: JsonObject): string[] {
  const props = (schema.properties ?? {}) as JsonObject;
  const required = new Set((schema.required ?? []) as string[]);
  const rows = ['| field | type | required | description |', '|---|---|---|---|'];
  for (const [name, raw] of Object.entries(props)) {
    const prop = raw as JsonObject;
    const refName = typeof prop.$ref === 'string' ? prop.$ref.split('/').pop() : undefined;
    const refDef = refName ? ((common.$defs as JsonObject)[refName] as JsonObject | undefined) : undefined;
    const desc = String(prop.description ?? refDef?.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
    rows.push(`| \`${name}\` | ${describeType(prop, common)} | ${required.has(name) ? 'yes' : 'no'} | ${desc} |`);
  }
  return rows;
}

function renderDocs(payloads: PayloadSchemaFile[]): string {
  const common = readJson(join(payloadsDir, 'common.schema.json'));
  const envelope = readJson(join(eventsDir, 'envelope.schema.json'));
  const d: string[] = [];
  d.push('<!-- GENERATED by scripts/generate-contracts.ts from schemas/events. Do not edit; run `npm run generate`. -->');
  d.push('# Event catalogue', '');
  d.push('Every fact Custodian records is an immutable event: an envelope (identity, ordering, provenance) around a typed payload.');
  d.push('The JSON Schemas (2020-12) in `schemas/events/` are the single source of truth: the TypeScript types in');
  d.push('`libs/events/event-contracts/src/generated/` and this page are generated from them, and every producer and consumer');
  d.push('validates against them with ajv (`createEvent` at produce time, `parseEvent` at consume time).', '');
  d.push('## Versioning and upcasting', '');
  d.push('A payload schema is identified by (`type`, `schemaVersion`) and lives in `schemas/events/payloads/<type>.v<N>.schema.json`.');
  d.push('A change that is not purely additive-optional gets a new version file; the old file stays, because stored events never change.');
  d.push('Consumers validate an event against the schema of the version it was written with, then upcast it step by step');
  d.push('(`libs/events/event-contracts/src/upcasters.ts`) to the latest version, and validate the result again.', '');
  d.push('## Envelope', '');
  d.push(...fieldTable(envelope, common), '');
  const identity = (envelope.$defs as JsonObject).Identity as JsonObject;
  d.push('### Identity', '', String(identity.description ?? ''), '');
  d.push(...fieldTable(identity, common), '');
  d.push('## Event types', '');
  const types = [...new Set(payloads.map((p) => p.type))].sort();
  d.push('| type | latest version | produced by | summary |', '|---|---|---|---|');
  for (const t of types) {
    const versions = payloads.filter((p) => p.type === t);
    const latest = versions[versions.length - 1]!;
    const meta = latest.schema['x-custodian'] as JsonObject;
    d.push(`| [\`${t}\`](#${t.replace(/\./g, '')}) | ${latest.version} | ${(meta.producedBy as string[]).join(', ')} | ${String(latest.schema.description).replace(/\|/g, '\\|')} |`);
  }
  d.push('');
  for (const t of types) {
    d.push(`### ${t}`, '');
    for (const p of payloads.filter((x) => x.type === t).reverse()) {
      d.push(`**v${p.version}** (\`schemas/events/payloads/${p.file}\`): ${String(p.schema.description)}`, '');
      d.push(...fieldTable(p.schema, common), '');
    }
  }
  return d.join('\n');
}

export async function renderContracts(): Promise<Map<string, string>> {
  const payloads = loadPayloadSchemas();
  const out = new Map<string, string>();
  out.set('libs/events/event-contracts/src/generated/types.ts', await renderTypes(payloads));
  out.set('libs/events/event-contracts/src/generated/schemas.ts', renderSchemasModule(payloads));
  out.set('docs/events.md', renderDocs(payloads));
  return out;
}

export function staleFiles(rendered: Map<string, string>): string[] {
  const stale: string[] = [];
  for (const [rel, content] of rendered) {
    let current = '';
    try {
      current = readFileSync(join(root, rel), 'utf8');
    } catch {
      /* missing counts as stale */
    }
    if (current !== content) stale.push(rel);
  }
  return stale;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rendered = await renderContracts();
  if (process.argv.includes('--check')) {
    const stale = staleFiles(rendered);
    if (stale.length > 0) {
      console.error(`stale generated files (run npm run generate): ${stale.join(', ')}`);
      process.exit(1);
    }
    console.log('generated contracts are up to date');
  } else {
    for (const [rel, content] of rendered) writeFileSync(join(root, rel), content);
    console.log(`wrote ${[...rendered.keys()].join(', ')}`);
  }
}

// Environment overrides: CUSTODIAN_<SECTION>__<KEY>[__<KEY>...]=value
//
// Mapping (exact):
//   - Each config key is written in UPPER_SNAKE_CASE: `eventStore` → EVENT_STORE,
//     `connectionString` → CONNECTION_STRING, `dataDir` → DATA_DIR.
//   - Levels are joined with a double underscore `__`:
//       services.api.http.port          ← CUSTODIAN_SERVICES__API__HTTP__PORT=8080
//       eventStore.connectionString.fromEnv ← CUSTODIAN_EVENT_STORE__CONNECTION_STRING__FROM_ENV=ESDB_URL
//       deployment                      ← CUSTODIAN_DEPLOYMENT=distributed
//   - Values are typed by the schema at that key: integers and booleans (`true`/`false`) are
//     parsed, arrays are comma-separated (`CUSTODIAN_BUS__BROKERS=kafka-1:9092,kafka-2:9092`),
//     everything else is a string. The result is validated exactly like the file.
//   - Setting a `KIND` to a different value replaces that section (keys of the old kind are
//     dropped), so `CUSTODIAN_EVENT_STORE__KIND=eventstoredb` does not inherit the SQLite `path`.
//   - A variable with `__` whose keys are not in the schema is an error (typos fail loudly).
//     A variable without `__` is an override only if it names a top-level key; other
//     CUSTODIAN_* variables (CUSTODIAN_CONFIG, CUSTODIAN_ROOT, tool settings) are left alone.
//   - CUSTODIAN_CONFIG names the config file and is not an override.
import { alternatives, configSchema, schemaTypes, type SchemaNode } from './config-schema.js';
import { ConfigError, type ConfigIssue } from './errors.js';

export const ENV_PREFIX = 'CUSTODIAN_';
/** Names the config file when no `--config` is given. */
export const CONFIG_FILE_ENV = 'CUSTODIAN_CONFIG';

export interface EnvOverride {
  readonly variable: string;
  /** Config keys from the root, e.g. ['services', 'api', 'http', 'port']. */
  readonly keys: readonly string[];
  readonly value: unknown;
}

/** `connectionString` → `CONNECTION_STRING`, `in-process` → `IN_PROCESS`. */
export function envSegment(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
}

/** The variable that overrides a config key: ['services','api','http','port'] → CUSTODIAN_SERVICES__API__HTTP__PORT. */
export function envVariableFor(keys: readonly string[]): string {
  return ENV_PREFIX + keys.map(envSegment).join('__');
}

export function pointerOf(keys: readonly (string | number)[]): string {
  return keys.map((k) => '/' + String(k).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

export function dottedOf(keys: readonly (string | number)[]): string {
  return keys.length === 0 ? '(root)' : keys.map(String).join('.');
}

type Resolution = { readonly keys: string[]; readonly leaves: SchemaNode[] } | { readonly error: string };

function resolveSegments(segments: readonly string[]): Resolution {
  let candidates: SchemaNode[] = [configSchema()];
  const keys: string[] = [];
  for (const segment of segments) {
    if (!/^[A-Z0-9]+(?:_[A-Z0-9]+)*$/.test(segment)) {
      return { error: `"${segment}" is not an UPPER_SNAKE_CASE key (levels are separated by exactly two underscores)` };
    }
    const next: SchemaNode[] = [];
    let matched: string | undefined;
    const known = new Set<string>();
    for (const alt of candidates.flatMap(alternatives)) {
      for (const [prop, sub] of Object.entries(alt.properties ?? {})) {
        known.add(envSegment(prop));
        if (envSegment(prop) === segment) {
          matched = prop;
          next.push(sub);
        }
      }
    }
    if (matched === undefined) {
      const where = keys.length === 0 ? 'at the top level' : `under ${dottedOf(keys)}`;
      const list = known.size > 0 ? ` (known: ${[...known].sort().join(', ')})` : '';
      return { error: `unknown key ${segment} ${where}${list}` };
    }
    keys.push(matched);
    candidates = next;
  }
  return { keys, leaves: candidates.flatMap(alternatives) };
}

function coerce(raw: string, leaves: readonly SchemaNode[]): unknown {
  const types = new Set(leaves.flatMap((l) => [...schemaTypes(l)]));
  const trimmed = raw.trim();
  if ((types.has('integer') || types.has('number')) && /^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  if (types.has('boolean') && (trimmed === 'true' || trimmed === 'false')) return trimmed === 'true';
  if (types.has('array')) return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
  return raw;
}

function isSectionOnly(leaves: readonly SchemaNode[]): boolean {
  const types = new Set(leaves.flatMap((l) => [...schemaTypes(l)]));
  return types.size > 0 && [...types].every((t) => t === 'object');
}

/**
 * The config overrides in an environment. Throws CONFIG_UNKNOWN_OVERRIDE naming every
 * variable that looks like an override but names no config key. Values are never echoed.
 */
export function parseEnvOverrides(env: Readonly<Record<string, string | undefined>>): EnvOverride[] {
  const overrides: EnvOverride[] = [];
  const issues: ConfigIssue[] = [];
  for (const variable of Object.keys(env).sort()) {
    const raw = env[variable];
    if (raw === undefined || !variable.startsWith(ENV_PREFIX) || variable === CONFIG_FILE_ENV) continue;
    const segments = variable.slice(ENV_PREFIX.length).split('__');
    const resolution = resolveSegments(segments);
    if (segments.length === 1 && 'error' in resolution) continue; // not a config key: some other CUSTODIAN_* setting
    const source = { kind: 'env', variable } as const;
    if ('error' in resolution) {
      issues.push({ pointer: '', path: variable, message: resolution.error, source });
      continue;
    }
    if (isSectionOnly(resolution.leaves)) {
      issues.push({
        pointer: pointerOf(resolution.keys),
        path: dottedOf(resolution.keys),
        message: `is a section; set one of its keys instead, e.g. ${variable}__<KEY>`,
        source,
      });
      continue;
    }
    overrides.push({ variable, keys: resolution.keys, value: coerce(raw, resolution.leaves) });
  }
  if (issues.length > 0) throw new ConfigError('CONFIG_UNKNOWN_OVERRIDE', 'environment overrides name unknown config keys', issues);
  return overrides;
}

/** True if the loader accepts this variable name as a config override (or the config file variable). */
export function isAcceptedEnvVariable(variable: string): boolean {
  if (variable === CONFIG_FILE_ENV) return true;
  if (!variable.startsWith(ENV_PREFIX)) return false;
  const resolution = resolveSegments(variable.slice(ENV_PREFIX.length).split('__'));
  return !('error' in resolution) && !isSectionOnly(resolution.leaves);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Applies overrides to a plain config object in place. `kind` overrides go first (they may reset a section). */
export function applyEnvOverrides(target: Record<string, unknown>, overrides: readonly EnvOverride[]): void {
  const ordered = [...overrides].sort((a, b) => Number(b.keys.at(-1) === 'kind') - Number(a.keys.at(-1) === 'kind'));
  for (const override of ordered) {
    let node = target;
    for (const key of override.keys.slice(0, -1)) {
      const child = node[key];
      if (!isRecord(child)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    const last = override.keys.at(-1)!;
    if (last === 'kind' && node.kind !== override.value) {
      for (const key of Object.keys(node)) delete node[key];
    }
    node[last] = override.value;
  }
}

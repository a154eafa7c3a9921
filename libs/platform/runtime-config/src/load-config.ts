import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { alternatives, configValidator, type SchemaNode } from './config-schema.js';
import { applyEnvOverrides, CONFIG_FILE_ENV, dottedOf, parseEnvOverrides, pointerOf, type EnvOverride } from './env-overrides.js';
import { ConfigError, type ConfigIssue, type ConfigIssueSource } from './errors.js';
import type { CustodianConfig } from './generated/config-types.js';

export interface LoadConfigOptions {
  /** YAML config file. Without one, CUSTODIAN_CONFIG is consulted, then built-in defaults are used. */
  readonly file?: string | undefined;
  /** Environment for overrides and CUSTODIAN_CONFIG; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths (config file, dataDir) resolve against; defaults to process.cwd(). */
  readonly cwd?: string;
}

export interface LoadedConfig {
  /** The effective config: defaults applied, overrides applied, validated; dataDir and SQLite paths absolute. */
  readonly config: CustodianConfig;
  /** Absolute path of the file read, if any. */
  readonly file: string | undefined;
  /** Directory relative secret files resolve against (the config file's directory, else cwd). */
  readonly baseDir: string;
  /** Environment variables that overrode file or default values. */
  readonly overriddenBy: readonly string[];
  /**
   * Where a key's value came from (file and line, environment variable, or default), for errors
   * found after loading (an unresolvable secret, an unusable key): `issueAt('gateways.ssh.hostKey', …)`.
   */
  issueAt(path: string, message: string): ConfigIssue;
}

/** Reads, overrides and validates the configuration. Throws ConfigError. */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const requested = options.file ?? env[CONFIG_FILE_ENV];
  if (requested === undefined || requested === '') return parseConfig('', { env, cwd });
  const file = resolve(cwd, requested);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError('CONFIG_FILE_UNREADABLE', `config file ${file} cannot be read (${code})`);
  }
  return parseConfig(text, { file, env, cwd });
}

export interface ParseConfigOptions {
  /** Absolute path the text came from (for messages and relative secret files). */
  readonly file?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

/** Like loadConfig, for YAML text already in hand. */
export function parseConfig(text: string, options: ParseConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const label = options.file ?? '<config>';
  const lineCounter = new LineCounter();
  // prettyErrors would quote the offending source line, which may hold a secret.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e): ConfigIssue => {
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      return {
        pointer: '',
        path: '(yaml)',
        message: `${e.code}: ${e.message.split('\n')[0] ?? ''}`,
        source: { kind: 'file', file: label, line: pos.line, column: pos.col },
      };
    });
    throw new ConfigError('CONFIG_YAML_SYNTAX', `config file ${label} is not valid YAML`, issues);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError('CONFIG_INVALID', `config file ${label} is invalid`, [
      { pointer: '', path: '(root)', message: 'must be a mapping of sections', source: { kind: 'file', file: label, line: 1, column: 1 } },
    ]);
  }
  const config = structuredClone(data) as Record<string, unknown>;
  const validate = configValidator();
  // First pass fills in defaults, so an override of one key lands in a complete section.
  validate(config);
  const overrides = parseEnvOverrides(env);
  applyEnvOverrides(config, overrides);
  if (!validate(config)) {
    const context: LocateContext = { doc, lineCounter, file: label, overrides };
    const issues = collapseOneOf(validate.errors ?? []).map((e) => toIssue(e, context));
    throw new ConfigError('CONFIG_INVALID', `config ${options.file ? `file ${label}` : '(defaults and environment)'} is invalid`, dedupe(issues));
  }
  const effective = config as unknown as CustodianConfig;
  normalisePaths(effective, cwd);
  return {
    config: effective,
    file: options.file,
    baseDir: options.file ? dirname(options.file) : cwd,
    overriddenBy: overrides.map((o) => o.variable),
    issueAt: (path, message) => {
      const keys = path.split('.');
      return { pointer: pointerOf(keys), path, message, source: sourceOf(keys, { doc, lineCounter, file: label, overrides }) };
    },
  };
}

function normalisePaths(config: CustodianConfig, cwd: string): void {
  config.dataDir = resolve(cwd, config.dataDir);
  if (config.eventStore.kind === 'sqlite') config.eventStore.path = resolve(config.dataDir, config.eventStore.path);
  config.pipeline.spool.path = resolve(config.dataDir, config.pipeline.spool.path);
}

// ---------------------------------------------------------------------------
// Error mapping: ajv error → key path, message and the line it came from.
// ---------------------------------------------------------------------------

interface LocateContext {
  readonly doc: Document;
  readonly lineCounter: LineCounter;
  readonly file: string;
  readonly overrides: readonly EnvOverride[];
}

function keysOf(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * A value that may take one of several forms (a string or a secret reference) yields one
 * error per form; report the whole value once, with the schema's hint, instead.
 */
function collapseOneOf(errors: readonly ErrorObject[]): ErrorObject[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const covered = (path: string): string | undefined =>
    [...oneOfPaths].find((p) => path === p || path.startsWith(p + '/'));
  const out: ErrorObject[] = [];
  const reported = new Set<string>();
  // The outermost oneOf at a path is reported last; prefer it for its hint.
  for (const e of [...errors].reverse()) {
    const owner = covered(e.instancePath);
    if (owner === undefined) {
      out.push(e);
    } else if (!reported.has(owner) && e.keyword === 'oneOf' && e.instancePath === owner) {
      reported.add(owner);
      out.push(e);
    }
  }
  return out.reverse();
}

function discriminatorValues(parentSchema: SchemaNode | undefined, tag: string): string[] {
  const values: string[] = [];
  for (const branch of (parentSchema?.oneOf ?? []).flatMap(alternatives)) {
    const c = branch.properties?.[tag]?.const;
    if (typeof c === 'string') values.push(c);
  }
  return values;
}

function describe(e: ErrorObject): { keys: string[]; message: string } {
  const keys = keysOf(e.instancePath);
  const parentSchema = e.parentSchema as SchemaNode | undefined;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const movedTo = parentSchema?.['x-custodian-moved']?.[key];
      if (movedTo !== undefined) return { keys: [...keys, key], message: `has moved: set ${movedTo} instead` };
      const known = Object.keys(parentSchema?.properties ?? {});
      return {
        keys: [...keys, key],
        message: `is not a known key${known.length > 0 ? ` (known here: ${known.join(', ')})` : ''}`,
      };
    }
    case 'required':
      return { keys: [...keys, String(params.missingProperty)], message: 'is required' };
    case 'enum':
      return { keys, message: `must be one of: ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { keys, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'discriminator': {
      const tag = String(params.tag);
      const allowed = discriminatorValues(parentSchema, tag);
      return { keys: [...keys, tag], message: allowed.length > 0 ? `must be one of: ${allowed.join(', ')}` : (e.message ?? 'is invalid') };
    }
    case 'oneOf':
      return { keys, message: parentSchema?.['x-custodian-hint'] ?? e.message ?? 'does not match any allowed form' };
    default:
      // ajv messages describe the rule (type, range, pattern), never the value.
      return { keys, message: e.message ?? e.keyword };
  }
}

function startsWith(keys: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= keys.length && prefix.every((k, i) => keys[i] === k);
}

/** The deepest YAML node along `keys` (the key's position for map entries), and whether the whole path exists. */
function locateInDocument(doc: Document, keys: readonly string[]): { node: Node | undefined; complete: boolean } {
  let current: unknown = doc.contents;
  let found: Node | undefined = doc.contents ?? undefined;
  for (const key of keys) {
    if (isMap(current)) {
      const pair = current.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (!pair) return { node: found, complete: false };
      found = (isScalar(pair.key) ? pair.key : undefined) ?? found;
      current = pair.value;
    } else if (isSeq(current)) {
      const item = current.items[Number(key)];
      if (item === undefined || !/^\d+$/.test(key)) return { node: found, complete: false };
      found = (item as Node | undefined) ?? found;
      current = item;
    } else {
      return { node: found, complete: false };
    }
  }
  return { node: found, complete: true };
}

function fileSource(context: LocateContext, node: Node | undefined): ConfigIssueSource {
  const offset = node?.range?.[0] ?? 0;
  const pos = context.lineCounter.linePos(offset);
  return { kind: 'file', file: context.file, line: pos.line, column: pos.col };
}

function sourceOf(keys: readonly string[], context: LocateContext): ConfigIssueSource {
  const byPrefix = context.overrides.filter((o) => startsWith(keys, o.keys)).sort((a, b) => b.keys.length - a.keys.length)[0];
  if (byPrefix) return { kind: 'env', variable: byPrefix.variable };
  const located = locateInDocument(context.doc, keys);
  if (located.complete) return fileSource(context, located.node);
  // A missing key in a section an override (re)wrote, e.g. eventStore.kind switched by env.
  const parent = keys.slice(0, -1);
  const inSection = context.overrides.find((o) => startsWith(o.keys, parent) && o.keys.length > parent.length);
  if (inSection) return { kind: 'env', variable: inSection.variable };
  if (located.node && context.file !== '<config>' && context.doc.contents) return fileSource(context, located.node);
  return { kind: 'default' };
}

function toIssue(e: ErrorObject, context: LocateContext): ConfigIssue {
  const { keys, message } = describe(e);
  return { pointer: pointerOf(keys), path: dottedOf(keys), message, source: sourceOf(keys, context) };
}

function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.pointer}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

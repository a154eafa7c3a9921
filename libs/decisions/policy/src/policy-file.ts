import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { CompiledPolicy } from './compiled-policy.js';
import { PolicyError, type PolicyIssue } from './errors.js';
import type { PolicyDocument } from './policy-document.js';
import { PolicyMatchError, type AnyPolicyLanguage } from './policy-language.js';
import { policyValidator } from './policy-schema.js';

export interface ParsePolicyOptions {
  /**
   * Version to use when the file declares none (a store passes its activation counter).
   * Defaults to 1.
   */
  readonly fallbackVersion?: number;
  /**
   * Languages whose match blocks are compiled at load (recommended: every language the caller
   * will decide with), so a criterion they cannot compile is a POLICY_INVALID naming file, line
   * and key rather than a fail-closed block at the first decision.
   */
  readonly languages?: readonly AnyPolicyLanguage[];
}

/** SHA-256 (hex) of the file exactly as stored: the digest equals `sha256sum <file>`. */
export function policyDigest(bytes: Uint8Array | string): string {
  return createHash('sha256').update(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes).digest('hex');
}

/** Reads, validates and compiles a policy file. Throws PolicyError. */
export function loadPolicyFile(path: string, options: ParsePolicyOptions = {}): CompiledPolicy {
  const file = resolve(path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new PolicyError('POLICY_FILE_UNREADABLE', `policy file ${file} cannot be read (${code})`, [], { cause: error });
  }
  return parsePolicyBytes(bytes, file, options);
}

/** Like loadPolicyFile for bytes already in hand (a watcher's read). */
export function parsePolicyBytes(bytes: Uint8Array, fileName: string, options: ParsePolicyOptions = {}): CompiledPolicy {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new PolicyError('POLICY_FILE_UNREADABLE', `policy file ${fileName} is not valid UTF-8`, [], { cause: error });
  }
  return compile(text, policyDigest(bytes), fileName, options);
}

/** Validates and compiles policy YAML text; `fileName` is used in messages and as the source. */
export function parsePolicy(text: string, fileName: string, options: ParsePolicyOptions = {}): CompiledPolicy {
  return compile(text, policyDigest(text), fileName, options);
}

function compile(text: string, digest: string, file: string, options: ParsePolicyOptions): CompiledPolicy {
  const document = readPolicyDocument(text, file);
  const policy = new CompiledPolicy(document, { digest, source: file, version: document.version ?? options.fallbackVersion ?? 1 });
  try {
    policy.prepare(options.languages ?? []);
  } catch (error) {
    if (!(error instanceof PolicyMatchError)) throw error;
    throw new PolicyError('POLICY_INVALID', `policy file ${file} is invalid`, [policyIssueAt(text, file, error.keys, error.message)]);
  }
  return policy;
}

/** YAML → validated PolicyDocument, or PolicyError naming file, line and key of every problem. */
export function readPolicyDocument(text: string, file: string): PolicyDocument {
  const lineCounter = new LineCounter();
  // prettyErrors would quote the offending source line into the message.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e): PolicyIssue => {
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      return { file, line: pos.line, column: pos.col, key: '(yaml)', message: `${e.code}: ${e.message.split('\n')[0] ?? ''}` };
    });
    throw new PolicyError('POLICY_YAML_SYNTAX', `policy file ${file} is not valid YAML`, issues);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const locator = new YamlLocator(doc, lineCounter, file);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new PolicyError('POLICY_INVALID', `policy file ${file} is invalid`, [locator.issue([], 'must be a mapping with name and rules')]);
  }
  const validate = policyValidator();
  if (!validate(data)) {
    const issues = dedupe(explainErrors(validate.errors ?? []).map(({ keys, message }) => locator.issue(keys, message)));
    throw new PolicyError('POLICY_INVALID', `policy file ${file} is invalid`, issues);
  }
  const policy = data as unknown as PolicyDocument;
  const duplicates = [
    ...duplicateIds(policy.rules.map((rule) => rule.id), 'rules'),
    ...duplicateIds((policy.masking ?? []).map((rule) => rule.id), 'masking'),
  ];
  if (duplicates.length > 0) {
    throw new PolicyError(
      'POLICY_INVALID',
      `policy file ${file} is invalid`,
      duplicates.map(({ keys, message }) => locator.issue(keys, message)),
    );
  }
  return policy;
}

interface KeyedMessage {
  readonly keys: readonly string[];
  readonly message: string;
}

function duplicateIds(ids: readonly string[], section: string): KeyedMessage[] {
  const firstIndex = new Map<string, number>();
  const out: KeyedMessage[] = [];
  ids.forEach((id, index) => {
    const first = firstIndex.get(id);
    if (first === undefined) firstIndex.set(id, index);
    else out.push({ keys: [section, String(index), 'id'], message: `duplicates the id of ${section}[${first}]; ids must be unique` });
  });
  return out;
}

// ---------------------------------------------------------------------------
// ajv errors → key path and message. Messages describe the rule broken, never the value.
// ---------------------------------------------------------------------------

interface SchemaHints {
  readonly description?: string;
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly required?: readonly string[];
}

function keysOf(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Turns ajv's raw errors into one message per real problem: a value with alternative forms
 * (list or object) reports the errors of the form it has, not "does not match oneOf"; `if`
 * errors are dropped for the `then`/`else` errors that say what is wrong.
 */
function explainErrors(errors: readonly ErrorObject[]): KeyedMessage[] {
  const oneOfErrors = errors.filter((e) => e.keyword === 'oneOf');
  const anyOfErrors = errors.filter((e) => e.keyword === 'anyOf');
  const oneOfPaths = new Set(oneOfErrors.map((e) => e.instancePath));
  const inAnyOf = (e: ErrorObject): boolean => anyOfErrors.some((a) => e !== a && isUnder(e.instancePath, a.instancePath) && e.schemaPath.startsWith(`${a.schemaPath}/`));
  const kept = errors.filter((e) => {
    // oneOf / anyOf are explained below from the errors of their branches.
    if (e.keyword === 'if' || e.keyword === 'oneOf' || e.keyword === 'anyOf') return false;
    // The key's own error (carrying propertyName) says what is wrong with it.
    if (e.keyword === 'propertyNames') return false;
    // The other form's type mismatch: a list is not an object and vice versa.
    if (e.keyword === 'type' && oneOfPaths.has(e.instancePath)) return false;
    return !inAnyOf(e);
  });
  const out: KeyedMessage[] = kept.map(describe);
  for (const e of oneOfErrors) {
    // Neither form fits (e.g. a string where a list or object is expected).
    if (!kept.some((k) => isUnder(k.instancePath, e.instancePath))) {
      const hint = (e.parentSchema as SchemaHints | undefined)?.description;
      out.push({ keys: keysOf(e.instancePath), message: hint ?? 'does not have an allowed form' });
    }
  }
  for (const e of anyOfErrors) {
    const needed = errors
      .filter((n) => n.keyword === 'required' && n.instancePath === e.instancePath && n.schemaPath.startsWith(`${e.schemaPath}/`))
      .map((n) => String((n.params as { missingProperty?: unknown }).missingProperty));
    const hint = (e.parentSchema as SchemaHints | undefined)?.description;
    out.push({ keys: keysOf(e.instancePath), message: needed.length > 0 ? `needs at least one of: ${needed.join(', ')}` : (hint ?? e.message ?? 'is invalid') });
  }
  return out;
}

function describe(e: ErrorObject): KeyedMessage {
  const keys = keysOf(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const parentSchema = e.parentSchema as SchemaHints | undefined;
  if (e.propertyName !== undefined) {
    // A key that breaks `propertyNames` (e.g. a JSON path that does not start with `$`).
    return { keys: [...keys, e.propertyName], message: `is not allowed as a key here${parentSchema?.description ? ` (${parentSchema.description})` : ''}` };
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const known = Object.keys(parentSchema?.properties ?? {});
      return { keys: [...keys, String(params.additionalProperty)], message: `is not a known key${known.length > 0 ? ` (known here: ${known.join(', ')})` : ''}` };
    }
    case 'required':
      return { keys: [...keys, String(params.missingProperty)], message: 'is required' };
    case 'enum':
      return { keys, message: `must be one of: ${(params.allowedValues as unknown[]).map((v) => String(v)).join(', ')}` };
    case 'const':
      return { keys, message: `must be ${JSON.stringify(params.allowedValue)}${parentSchema?.description ? ` (${parentSchema.description})` : ''}` };
    case 'not': {
      // `not: { required: [key] }`: the key is present where it does not belong.
      const forbidden = (e.schema as SchemaHints | undefined)?.required;
      return { keys: forbidden?.length === 1 ? [...keys, forbidden[0]!] : keys, message: parentSchema?.description ?? 'is not allowed here' };
    }
    default:
      return { keys, message: e.message ?? e.keyword };
  }
}

function dedupe(issues: readonly PolicyIssue[]): PolicyIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const id = `${issue.key}\u0000${issue.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Maps a key path to the line and column of the deepest YAML node that exists along it. */
class YamlLocator {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly file: string,
  ) {}

  issue(keys: readonly string[], message: string): PolicyIssue {
    const node = this.locate(keys);
    const pos = this.lineCounter.linePos(node?.range?.[0] ?? 0);
    return { file: this.file, line: pos.line, column: pos.col, key: dottedKey(keys), message };
  }

  private locate(keys: readonly string[]): Node | undefined {
    let current: unknown = this.doc.contents;
    let found: Node | undefined = this.doc.contents ?? undefined;
    for (const key of keys) {
      if (isMap(current)) {
        const pair = current.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        if (pair === undefined) return found;
        // Point at the key itself: that is the line a reader looks for.
        if (isScalar(pair.key)) found = pair.key;
        current = pair.value;
      } else if (isSeq(current) && /^\d+$/.test(key)) {
        const item: unknown = current.items[Number(key)];
        if (item === undefined || item === null) return found;
        found = item as Node;
        current = item;
      } else {
        return found;
      }
    }
    return found;
  }
}

/** `['rules', '2', 'approval']` → `rules[2].approval`. */
export function dottedKey(keys: readonly string[]): string {
  if (keys.length === 0) return '(root)';
  return keys.map((key, index) => (/^\d+$/.test(key) ? `[${key}]` : index === 0 ? key : `.${key}`)).join('');
}

/** An issue at `keys` of a policy text (for checks made after parsing, e.g. on reload). */
export function policyIssueAt(text: string, file: string, keys: readonly string[], message: string): PolicyIssue {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  return new YamlLocator(doc, lineCounter, file).issue(keys, message);
}

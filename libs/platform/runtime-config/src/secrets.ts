import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import type { SecretRef } from './generated/config-types.js';

/** A config value that may hold a credential: inline (only where the schema allows it) or a reference. */
export type SecretValue = string | SecretRef;

export interface SecretContext {
  /** Environment to read `fromEnv` references from; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory that relative `fromFile` paths resolve against (the config file's directory). */
  readonly baseDir?: string;
}

export function isSecretRef(value: unknown): value is SecretRef {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'fromEnv' || keys[0] === 'fromFile');
}

/**
 * The secret a value stands for. Errors name the variable or file, never the content.
 * A file's trailing newline is dropped (secret files are usually written with `echo`).
 */
export function resolveSecret(value: SecretValue, context: SecretContext = {}): string {
  if (typeof value === 'string') return value;
  if ('fromEnv' in value) {
    const env = context.env ?? process.env;
    const secret = env[value.fromEnv];
    if (secret === undefined || secret === '') {
      throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `secret reference: environment variable ${value.fromEnv} is not set`);
    }
    return secret;
  }
  const path = isAbsolute(value.fromFile) ? value.fromFile : resolve(context.baseDir ?? process.cwd(), value.fromFile);
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `secret reference: file ${path} cannot be read (${code})`);
  }
  const secret = content.replace(/\r?\n$/, '');
  if (secret === '') throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `secret reference: file ${path} is empty`);
  return secret;
}

/**
 * Like resolveSecret, reading a file asynchronously: for secrets read at each use on a serving
 * process's event loop (e.g. the token-introspection client secret), where synchronous I/O stalls
 * every session.
 */
export async function resolveSecretAsync(value: SecretValue, context: SecretContext = {}): Promise<string> {
  if (typeof value === 'string' || 'fromEnv' in value) return resolveSecret(value, context);
  const path = isAbsolute(value.fromFile) ? value.fromFile : resolve(context.baseDir ?? process.cwd(), value.fromFile);
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `secret reference: file ${path} cannot be read (${code})`);
  }
  const secret = content.replace(/\r?\n$/, '');
  if (secret === '') throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `secret reference: file ${path} is empty`);
  return secret;
}

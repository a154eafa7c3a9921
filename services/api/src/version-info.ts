import { readFileSync } from 'node:fs';
import type { VersionInfo } from './tokens.js';

/** This package's name and version (package.json sits one level above both src/ and dist/). */
export function readServiceVersion(): VersionInfo {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

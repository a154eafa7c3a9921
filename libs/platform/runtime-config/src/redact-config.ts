import { alternatives, configSchema, isSecretSchema, type SchemaNode } from './config-schema.js';
import type { CustodianConfig } from './generated/config-types.js';
import { isSecretRef } from './secrets.js';

export const REDACTED = '[redacted]';

function redactValue(value: unknown, schemas: readonly SchemaNode[]): unknown {
  if (schemas.some(isSecretSchema)) {
    // A reference names where the secret lives, which is safe (and useful) to show.
    return isSecretRef(value) ? { ...value } : REDACTED;
  }
  if (Array.isArray(value)) {
    const items = schemas.flatMap(alternatives).flatMap((s) => (s.items ? [s.items] : []));
    return value.map((v) => redactValue(v, items));
  }
  if (typeof value === 'object' && value !== null) {
    const alts = schemas.flatMap(alternatives);
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      out[key] = redactValue(child, alts.flatMap((a) => (a.properties?.[key] ? [a.properties[key]] : [])));
    }
    return out;
  }
  return value;
}

/** A copy of the config safe to print: inline values of secret-bearing keys (per the schema) are replaced. */
export function redactConfig(config: CustodianConfig): CustodianConfig {
  return redactValue(config, [configSchema()]) as CustodianConfig;
}

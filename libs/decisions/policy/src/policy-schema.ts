import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

/** Path of the policy contract inside the @custodian/schemas package (the single source of truth). */
export const POLICY_SCHEMA_SPECIFIER = '@custodian/schemas/policy/policy.schema.json';

let cachedValidator: ValidateFunction | undefined;

/** The policy JSON Schema as an object. */
export function policySchema(): Record<string, unknown> {
  const path = createRequire(import.meta.url).resolve(POLICY_SCHEMA_SPECIFIER);
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/**
 * Validator for policy documents. `verbose` gives errors their schema and parentSchema (for
 * hints and key names); error data is only inspected for its type, never printed.
 */
export function policyValidator(): ValidateFunction {
  if (cachedValidator === undefined) {
    // strictRequired off: if/then and not/required name keys declared beside them, the usual idiom.
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, verbose: true });
    cachedValidator = ajv.compile(policySchema());
  }
  return cachedValidator;
}

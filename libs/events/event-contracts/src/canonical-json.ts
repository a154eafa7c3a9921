// RFC 8785 (JSON Canonicalization Scheme): one text per JSON value, whatever the key order or
// number spelling, so a digest of it can be recomputed by anyone from the value alone (approval
// bindings; the evidence log's leaves use the same library).
import canonicalize from 'canonicalize';
import { EventContractError } from './errors.js';

/** The RFC 8785 canonical JSON text of a JSON value; refuses what JSON cannot represent (undefined, functions, non-finite numbers, cycles). */
export function jcsCanonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new EventContractError('JSON_NOT_CANONICALIZABLE', `value cannot be canonicalized (RFC 8785): ${error instanceof Error ? error.message : String(error)}`);
  }
  if (text === undefined) throw new EventContractError('JSON_NOT_CANONICALIZABLE', 'value has no JSON representation');
  return text;
}

// The Merkle log's leaf for an event: the RFC 8785 (JCS) canonical JSON of its full envelope, as
// UTF-8. Canonical form makes the leaf independent of key order and number spelling, so anyone can
// recompute it from the event alone (e.g. an auditor from a pack's events.jsonl).
import canonicalize from 'canonicalize';
import type { CustodianEvent } from '@custodian/event-contracts';
import { hashLeaf, type Hash } from '@custodian/transparency-log';
import { EvidenceError } from './errors.js';

/** RFC 8785 canonical JSON text of a JSON value. */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new EvidenceError('EVIDENCE_CANONICALIZATION_FAILED', `value cannot be canonicalized: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (text === undefined) throw new EvidenceError('EVIDENCE_CANONICALIZATION_FAILED', 'value has no JSON representation');
  return text;
}

/** The leaf bytes of an event: UTF-8 of the JCS canonical envelope. */
export function eventLeaf(event: CustodianEvent): Buffer {
  return Buffer.from(canonicalJson(event), 'utf8');
}

/** RFC 6962 leaf hash of an event's canonical envelope. */
export function eventLeafHash(event: CustodianEvent): Hash {
  return hashLeaf(eventLeaf(event));
}

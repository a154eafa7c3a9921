// The Merkle log's leaf for an event, in one of the log's leaf formats (leaf-format.ts): format 1,
// the RFC 8785 (JCS) canonical JSON of the full envelope; format 2, the JCS of its header (the
// envelope without the payload, the payload's digest, the selector values). Canonical form makes
// the leaf independent of key order and number spelling, so anyone can recompute it from the event
// alone (e.g. an auditor from a pack's events.jsonl).
import type { CustodianEvent } from '@custodian/event-contracts';
import { hashLeaf, type Hash } from '@custodian/transparency-log';
import { EvidenceError } from './errors.js';
import { LeafFormatError, eventHeader, jcs, leafBytes, type EventHeader, type LeafFormat } from './leaf-format.js';

export { HEADER_SELECTOR_PATHS, LEAF_FORMAT_ENVELOPE, LEAF_FORMAT_HEADER, leafFormatAt, type EventHeader, type LeafFormat } from './leaf-format.js';

function rethrow(error: unknown): never {
  if (error instanceof LeafFormatError) throw new EvidenceError('EVIDENCE_CANONICALIZATION_FAILED', error.message, { cause: error });
  throw error;
}

/** RFC 8785 canonical JSON text of a JSON value. */
export function canonicalJson(value: unknown): string {
  try {
    return jcs(value);
  } catch (error) {
    return rethrow(error);
  }
}

/** The canonical envelope of an event (an events.jsonl line; the leaf bytes in format 1). */
export function canonicalEvent(event: CustodianEvent): Buffer {
  return Buffer.from(canonicalJson(event), 'utf8');
}

/** The format-2 header of an event. */
export function headerOf(event: CustodianEvent): EventHeader {
  try {
    return eventHeader(event as unknown as Record<string, unknown>);
  } catch (error) {
    return rethrow(error);
  }
}

/** The leaf bytes of an event in a leaf format. */
export function eventLeaf(event: CustodianEvent, format: LeafFormat): Buffer {
  try {
    return leafBytes(event as unknown as Record<string, unknown>, format);
  } catch (error) {
    return rethrow(error);
  }
}

/** RFC 6962 leaf hash of an event's leaf in a leaf format. */
export function eventLeafHash(event: CustodianEvent, format: LeafFormat): Hash {
  return hashLeaf(eventLeaf(event, format));
}

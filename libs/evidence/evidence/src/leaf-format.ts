// The leaf formats of the evidence Merkle log, as pure functions of an event (no I/O, no state), so
// that the projector, `custodian log verify`, the pack exporter and the pack verifier (its worker
// threads load this file directly: it imports only node: built-ins and `canonicalize`) compute the
// same bytes. docs/evidence-pack-format.md §5 is the normative description.
//
// - Format 1: the RFC 8785 (JCS) canonical JSON of the whole envelope.
// - Format 2: the JCS of the event's *header*: the envelope without its payload, the SHA-256 of the
//   payload's JCS, and the values of a fixed list of payload paths that filters select on. A pack
//   filtered by identity, connection or control carries the header of every event of its window and
//   the full event only for those that match; a verifier sees that no withheld header matches.
//
// A log holds format-1 leaves below its switch point and format-2 leaves from it on (a log created
// with format 2 switches at leaf 0); a format-2 leaf says so itself (`leafFormat: 2`, a member no
// envelope has).
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export type LeafFormat = 1 | 2;
export const LEAF_FORMAT_ENVELOPE: LeafFormat = 1;
export const LEAF_FORMAT_HEADER: LeafFormat = 2;

/**
 * The payload paths a format-2 header carries (`selectors`), and so the only payload paths a filter
 * can be checked on without the payload: connection and session membership, a refused attempt's
 * claimed subject, and the `where` paths of the shipped control mapping. Part of leaf format 2:
 * changing the list is a new leaf format.
 */
export const HEADER_SELECTOR_PATHS: readonly string[] = [
  'payload.approvalId',
  'payload.claimedSubject',
  'payload.client.tls',
  'payload.connection.name',
  'payload.decision',
  'payload.exposed',
  'payload.sessionId',
];

/** A scalar selector value, or `{}` for an object or array (equal to no rule value, unlike a missing one). */
export type SelectorValue = string | number | boolean | Record<string, never>;

/** A format-2 leaf: the envelope without the payload, the payload's digest and the selector values. */
export interface EventHeader {
  readonly leafFormat: 2;
  readonly id: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly stream: string;
  readonly sequence: number;
  readonly occurredAt: string;
  readonly identity: unknown;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly source: unknown;
  /** Lowercase hex SHA-256 of the UTF-8 JCS of the payload. */
  readonly payloadSha256: string;
  /** Value at each HEADER_SELECTOR_PATHS path that the payload has and is not null. */
  readonly selectors: Readonly<Record<string, SelectorValue>>;
}

export class LeafFormatError extends Error {
  readonly code = 'EVIDENCE_CANONICALIZATION_FAILED';
}

/** RFC 8785 canonical JSON text of a JSON value. */
export function jcs(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new LeafFormatError(`value cannot be canonicalized: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (text === undefined) throw new LeafFormatError('value has no JSON representation');
  return text;
}

function valueAt(object: unknown, path: string): unknown {
  let current: unknown = object;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/**
 * The format-2 leaf of an events.jsonl line and its parsed value: the same bytes as
 * `leafBytes(event, 2)`, faster. A conforming line is canonical, so the payload's canonical form is
 * the line's own `"payload"` member, taken as it is when it is exactly the serialization of the
 * parsed payload (else the payload is canonicalized).
 */
export function headerLeafOfLine(line: string, event: Readonly<Record<string, unknown>>): Buffer {
  const start = line.indexOf(',"payload":{');
  const end = line.lastIndexOf('},"schemaVersion":');
  const text = start >= 0 && end > start ? line.slice(start + 11, end + 1) : undefined;
  const payloadJcs = text !== undefined && JSON.stringify(event.payload) === text ? text : undefined;
  return Buffer.from(jcs(eventHeader(event, payloadJcs)), 'utf8');
}

/** The header of an event (any JSON object shaped like an envelope); `payloadJcs`: the payload's canonical form, when known. */
export function eventHeader(event: Readonly<Record<string, unknown>>, payloadJcs?: string): EventHeader {
  const { payload, ...envelope } = event;
  if ('leafFormat' in envelope) throw new LeafFormatError('an event cannot have a member named leafFormat');
  const selectors: Record<string, SelectorValue> = {};
  for (const path of HEADER_SELECTOR_PATHS) {
    const value = valueAt(event, path);
    if (value === undefined || value === null) continue;
    selectors[path] = typeof value === 'object' ? {} : (value as string | number | boolean);
  }
  const payloadSha256 = createHash('sha256').update(payloadJcs ?? jcs(payload ?? null), 'utf8').digest('hex');
  return { ...(envelope as Omit<EventHeader, 'leafFormat' | 'payloadSha256' | 'selectors'>), leafFormat: 2, payloadSha256, selectors };
}

/** The leaf bytes of an event in a leaf format. */
export function leafBytes(event: Readonly<Record<string, unknown>>, format: LeafFormat): Buffer {
  return Buffer.from(jcs(format === LEAF_FORMAT_HEADER ? eventHeader(event) : event), 'utf8');
}

/** RFC 6962 leaf hash: SHA-256(0x00 ‖ leaf bytes). */
export function rfc6962LeafHash(leaf: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(0)).update(leaf).digest();
}

/** The format of leaf `leafIndex` in a log that switched to format 2 at `headerFrom` (undefined: never). */
export function leafFormatAt(leafIndex: number, headerFrom: number | undefined): LeafFormat {
  return headerFrom !== undefined && leafIndex >= headerFrom ? LEAF_FORMAT_HEADER : LEAF_FORMAT_ENVELOPE;
}

/** Whether parsed leaf bytes are a format-2 header (else an envelope, format 1). */
export function isHeaderLeaf(value: unknown): value is EventHeader {
  return typeof value === 'object' && value !== null && (value as { leafFormat?: unknown }).leafFormat === 2;
}

/** The value a mapping rule's `where` path has in a header: `undefined` when the header cannot tell (a payload path it does not carry). */
export function headerValueAt(header: EventHeader, path: string): unknown {
  if (path.startsWith('payload.')) return HEADER_SELECTOR_PATHS.includes(path) ? (header.selectors[path] ?? null) : undefined;
  if (path === 'payload' || path === 'leafFormat' || path === 'payloadSha256' || path === 'selectors' || path.startsWith('selectors.')) return undefined;
  return valueAt(header, path) ?? null;
}

/** The filters of a pack scope (at most one is set). */
export interface HeaderFilter {
  readonly identity?: string;
  readonly connection?: string;
  /** The rules (of the shipped mapping) that evidence the control. */
  readonly controlRules?: readonly { readonly id: string; readonly event: string; readonly where?: Readonly<Record<string, readonly unknown[]>> }[];
}

/** Whether a control's rules can be decided on headers alone (every `where` path is carried). */
export function rulesDecidableOnHeaders(rules: NonNullable<HeaderFilter['controlRules']>): boolean {
  return rules.every((r) => Object.keys(r.where ?? {}).every((p) => !p.startsWith('payload.') || HEADER_SELECTOR_PATHS.includes(p)));
}

const str = (v: SelectorValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * The selection of a filtered pack, decided on headers: feed every header of the window's leaf
 * range in leaf order; `selects` says whether the event is one the pack must hold in full. The same
 * rules as EvidenceAccumulator's scope (docs/evidence-pack-format.md §4): connection membership
 * through the session's `session.opened` or the approval's `approval.requested` seen earlier in the
 * window; a refused attempt without identity belongs to the subject it claimed.
 */
export class HeaderSelection {
  readonly #filter: HeaderFilter;
  readonly #from: string;
  readonly #to: string;
  readonly #sessionConnection = new Map<string, string>();
  readonly #approvalConnection = new Map<string, string>();

  /** `from`/`to`: the window's ends as `instantKey`s. */
  constructor(filter: HeaderFilter, from: string, to: string) {
    this.#filter = filter;
    this.#from = from;
    this.#to = to;
  }

  /** Whether the header's occurredAt lies in the window. */
  inWindow(header: EventHeader): boolean {
    const at = typeof header.occurredAt === 'string' ? instantKey(header.occurredAt) : undefined;
    return at !== undefined && at >= this.#from && at < this.#to;
  }

  selects(header: EventHeader): boolean {
    if (!this.inWindow(header)) return false;
    const s = header.selectors;
    const connection = str(s['payload.connection.name']);
    const sessionId = str(s['payload.sessionId']);
    const approvalId = str(s['payload.approvalId']);
    if (header.type === 'session.opened' && sessionId && connection) this.#sessionConnection.set(sessionId, connection);
    if (header.type === 'approval.requested' && approvalId && connection) this.#approvalConnection.set(approvalId, connection);
    const f = this.#filter;
    if (f.identity !== undefined) {
      const identity = header.identity as { subject?: unknown } | null;
      const subject = identity?.subject ?? (header.type === 'authentication.failed' ? s['payload.claimedSubject'] : undefined);
      if (subject !== f.identity) return false;
    }
    if (f.connection !== undefined) {
      const of = connection ?? (sessionId ? this.#sessionConnection.get(sessionId) : approvalId ? this.#approvalConnection.get(approvalId) : undefined);
      if (of !== f.connection) return false;
    }
    if (f.controlRules !== undefined) {
      return f.controlRules.some((rule) => rule.event === header.type && Object.entries(rule.where ?? {}).every(([path, values]) => values.some((v) => v === headerValueAt(header, path))));
    }
    return true;
  }
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 time as a key that compares as text in the order of the instants (UTC, nanoseconds):
 * `…T00:00:00Z` and `…T01:00:00+01:00` give the same key, and a time without a fraction compares
 * correctly with one that has it. Undefined when it is not an RFC 3339 time.
 */
export function instantKey(value: string): string | undefined {
  const m = INSTANT.exec(value);
  if (!m) return undefined;
  const local = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (Number.isNaN(local) || new Date(local).toISOString().slice(0, 19) !== value.slice(0, 19)) return undefined;
  const zone = m[8]!;
  const offsetMinutes = zone === 'Z' ? 0 : (zone[0] === '+' ? 1 : -1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  return `${new Date(local - offsetMinutes * 60_000).toISOString().slice(0, 19)}.${(m[7] ?? '').padEnd(9, '0')}Z`;
}

import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { CustodianEvent, EventType } from './envelope.js';
import { EventContractError, type ValidationIssue } from './errors.js';
import { EVENT_TYPES, LATEST_SCHEMA_VERSIONS } from './generated/types.js';
import { commonSchema, envelopeSchema, payloadSchemas } from './generated/schemas.js';
import { stringLengthKeywords } from './string-length-keywords.js';
import { UPCASTERS } from './upcasters.js';

// ajv-formats is CommonJS: `module.exports` is the plugin and also carries it as `.default`,
// which is the spelling that type-checks under NodeNext and works at runtime.
const addFormats = addFormatsModule.default;

/** Events larger than this are refused before parsing (bounded memory on hostile input). */
export const MAX_EVENT_JSON_BYTES = 2 * 1024 * 1024;

class ContractValidators {
  readonly envelope: ValidateFunction;
  readonly payloads = new Map<string, ValidateFunction>();

  constructor() {
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictTuples: false });
    addFormats(ajv);
    ajv.addKeyword('x-custodian');
    // Same semantics as ajv's, without a per-character count when the length decides (frames).
    for (const definition of stringLengthKeywords) {
      ajv.removeKeyword(definition.keyword as string);
      ajv.addKeyword(definition);
    }
    ajv.addSchema(commonSchema);
    this.envelope = ajv.compile(envelopeSchema);
    for (const p of payloadSchemas) this.payloads.set(`${p.type}@${p.version}`, ajv.compile(p.schema));
  }
}

let validators: ContractValidators | undefined;
function getValidators(): ContractValidators {
  validators ??= new ContractValidators();
  return validators;
}

function toIssues(errors: ErrorObject[] | null | undefined, prefix = ''): ValidationIssue[] {
  return (errors ?? []).map((e) => ({ path: prefix + e.instancePath, message: e.message ?? e.keyword }));
}

function isKnownType(type: string): type is EventType {
  return (EVENT_TYPES as readonly string[]).includes(type);
}

type RawEvent = Record<string, unknown> & { type: string; schemaVersion: number; payload: Record<string, unknown> };

function validateEnvelope(raw: unknown): RawEvent {
  const v = getValidators();
  if (!v.envelope(raw)) throw new EventContractError('EVENT_INVALID_ENVELOPE', 'event envelope is invalid', toIssues(v.envelope.errors));
  return raw as RawEvent;
}

function validatePayload(type: string, version: number, payload: unknown): void {
  const fn = getValidators().payloads.get(`${type}@${version}`);
  if (!fn) throw new EventContractError('EVENT_UNKNOWN_VERSION', `no schema for ${type} v${version}`);
  if (!fn(payload)) throw new EventContractError('EVENT_INVALID_PAYLOAD', `${type} v${version} payload is invalid`, toIssues(fn.errors, '/payload'));
}

/**
 * Produce boundary: asserts that an event is valid at the latest version of its type.
 * Producers never write old versions.
 */
export function assertValidEvent(event: unknown): asserts event is CustodianEvent {
  const raw = validateEnvelope(event);
  if (!isKnownType(raw.type)) throw new EventContractError('EVENT_UNKNOWN_TYPE', `unknown event type ${raw.type}`);
  const latest = LATEST_SCHEMA_VERSIONS[raw.type];
  if (raw.schemaVersion !== latest) {
    throw new EventContractError('EVENT_UNKNOWN_VERSION', `${raw.type} must be produced at schema version ${latest}, got ${raw.schemaVersion}`);
  }
  validatePayload(raw.type, raw.schemaVersion, raw.payload);
}

/**
 * Consume boundary: validates an event as stored (any known version), upcasts it to the
 * latest version of its type, validates the result, and returns a new object.
 */
export function parseEvent(input: unknown): CustodianEvent {
  const raw = validateEnvelope(input);
  if (!isKnownType(raw.type)) throw new EventContractError('EVENT_UNKNOWN_TYPE', `unknown event type ${raw.type}`);
  validatePayload(raw.type, raw.schemaVersion, raw.payload);
  const latest = LATEST_SCHEMA_VERSIONS[raw.type];
  if (raw.schemaVersion > latest) throw new EventContractError('EVENT_UNKNOWN_VERSION', `${raw.type} v${raw.schemaVersion} is newer than this build knows (v${latest})`);
  let payload: Record<string, unknown> = raw.payload;
  for (let v = raw.schemaVersion; v < latest; v++) {
    const step = UPCASTERS[raw.type]?.[v];
    if (!step) throw new EventContractError('EVENT_UPCAST_FAILED', `no upcaster for ${raw.type} v${v} → v${v + 1}`);
    payload = step(payload);
    try {
      validatePayload(raw.type, v + 1, payload);
    } catch (err) {
      const issues = err instanceof EventContractError ? err.issues : [];
      throw new EventContractError('EVENT_UPCAST_FAILED', `upcasting ${raw.type} v${v} → v${v + 1} produced an invalid payload`, issues);
    }
  }
  return { ...raw, schemaVersion: latest, payload } as unknown as CustodianEvent;
}

/** Consume boundary for wire bytes (Kafka messages, store rows): size-bounded JSON parse, then `parseEvent`. */
export function parseEventJson(json: string | Uint8Array): CustodianEvent {
  const size = typeof json === 'string' ? Buffer.byteLength(json) : json.byteLength;
  if (size > MAX_EVENT_JSON_BYTES) throw new EventContractError('EVENT_NOT_JSON', `event is ${size} bytes, above the ${MAX_EVENT_JSON_BYTES}-byte limit`);
  let value: unknown;
  try {
    value = JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
  } catch (err) {
    throw new EventContractError('EVENT_NOT_JSON', `event is not JSON: ${(err as Error).message}`);
  }
  return parseEvent(value);
}

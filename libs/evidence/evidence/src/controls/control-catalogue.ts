// The control catalogue (schemas/evidence/controls.json) and the event-to-control mapping
// (schemas/evidence/mapping.json) are data: validated against their JSON Schemas and against each
// other when loaded.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { EvidenceError } from '../errors.js';

export interface Catalogue {
  readonly id: string;
  readonly title: string;
  readonly source?: string;
}

export interface Control {
  readonly id: string;
  readonly catalogue: string;
  readonly oscalId: string;
  readonly title: string;
  readonly asks: string;
}

export type MatchValue = string | boolean | number | null;

export interface MappingRule {
  readonly id: string;
  readonly event: string;
  readonly where?: Readonly<Record<string, readonly MatchValue[]>>;
  readonly description: string;
  readonly controls: readonly string[];
}

export interface FindingKindDefinition {
  readonly title: string;
  readonly severity: 'low' | 'moderate' | 'high';
  readonly controls: readonly string[];
}

export interface ControlCatalogue {
  readonly catalogues: readonly Catalogue[];
  readonly controls: readonly Control[];
  readonly rules: readonly MappingRule[];
  readonly findings: Readonly<Record<string, FindingKindDefinition>>;
  readonly privilegedFlags: readonly string[];
}

export interface CatalogueSources {
  /** Paths of the two data files; default: the ones in @custodian/schemas/evidence. */
  readonly controlsPath?: string;
  readonly mappingPath?: string;
}

const require = createRequire(import.meta.url);
const schemaPath = (name: string): string => require.resolve(`@custodian/schemas/evidence/${name}`);

function loadValidated<T>(path: string, schemaFile: string): T {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, validateFormats: false });
  ajv.addKeyword('x-custodian');
  const validate = ajv.compile(JSON.parse(readFileSync(schemaPath(schemaFile), 'utf8')) as object);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!validate(data)) {
    const issues = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`).join('; ');
    throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `${path} does not match ${schemaFile}: ${issues}`);
  }
  return data as T;
}

let cached: ControlCatalogue | undefined;

/** Loads, validates and cross-checks the catalogue and the mapping. */
export function loadControlCatalogue(sources: CatalogueSources = {}): ControlCatalogue {
  const useDefault = sources.controlsPath === undefined && sources.mappingPath === undefined;
  if (useDefault && cached) return cached;
  const controls = loadValidated<{ catalogues: Catalogue[]; controls: Control[] }>(sources.controlsPath ?? schemaPath('controls.json'), 'controls.schema.json');
  const mapping = loadValidated<{ rules: MappingRule[]; findings: Record<string, FindingKindDefinition>; privilegedFlags: string[] }>(
    sources.mappingPath ?? schemaPath('mapping.json'),
    'mapping.schema.json',
  );
  const catalogueIds = new Set(controls.catalogues.map((c) => c.id));
  const controlIds = new Set<string>();
  const oscalIds = new Set<string>();
  for (const control of controls.controls) {
    if (!catalogueIds.has(control.catalogue)) throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `control ${control.id} names an unknown catalogue ${control.catalogue}`);
    if (controlIds.has(control.id) || oscalIds.has(control.oscalId)) throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `control ${control.id} is listed twice`);
    controlIds.add(control.id);
    oscalIds.add(control.oscalId);
  }
  const ruleIds = new Set<string>();
  for (const rule of mapping.rules) {
    if (ruleIds.has(rule.id)) throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `mapping rule ${rule.id} is listed twice`);
    ruleIds.add(rule.id);
    for (const id of rule.controls) if (!controlIds.has(id)) throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `mapping rule ${rule.id} names an unknown control ${id}`);
  }
  for (const [kind, definition] of Object.entries(mapping.findings)) {
    for (const id of definition.controls) if (!controlIds.has(id)) throw new EvidenceError('EVIDENCE_CATALOGUE_INVALID', `finding ${kind} names an unknown control ${id}`);
  }
  const catalogue: ControlCatalogue = { catalogues: controls.catalogues, controls: controls.controls, rules: mapping.rules, findings: mapping.findings, privilegedFlags: mapping.privilegedFlags };
  if (useDefault) cached = catalogue;
  return catalogue;
}

/** A control by its id as the standard writes it, or its OSCAL id (case-insensitive). */
export function findControl(catalogue: ControlCatalogue, id: string): Control | undefined {
  const wanted = id.toLowerCase();
  return catalogue.controls.find((c) => c.id.toLowerCase() === wanted || c.oscalId === wanted);
}

function valueAt(object: unknown, path: string): unknown {
  let current: unknown = object;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Whether a mapping rule matches an event (type, then every `where` path). */
export function ruleMatches(rule: MappingRule, event: { readonly type: string }): boolean {
  if (rule.event !== event.type) return false;
  for (const [path, values] of Object.entries(rule.where ?? {})) {
    const value = valueAt(event, path) ?? null;
    if (!values.some((v) => v === value)) return false;
  }
  return true;
}

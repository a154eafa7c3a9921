// An OSCAL assessment-results document (NIST OSCAL 1.1.x, JSON) for an evidence pack: the controls
// reviewed, an observation per control and per finding, and a finding per control with status
// satisfied / not-satisfied. Evidence is referenced as back-matter resources whose rlinks point at
// the pack's own files with their SHA-256, so the document is bound to the pack's content.
import type { ControlCatalogue } from '../controls/control-catalogue.js';
import { deterministicUuid } from '../deterministic-uuid.js';
import type { EvidenceReport } from '../evidence-views.js';

export const OSCAL_VERSION = '1.1.2';
export const CUSTODIAN_OSCAL_NS = 'https://custodian.dev/ns/oscal';

export interface PackFileRef {
  readonly path: string;
  readonly sha256: string;
  readonly mediaType: string;
  readonly description: string;
}

export interface OscalInput {
  readonly packId: string;
  readonly createdAt: string;
  readonly report: EvidenceReport;
  readonly catalogue: ControlCatalogue;
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: string;
  /** The pack files the document cites (events, proofs, checkpoints, evidence.json). */
  readonly files: readonly PackFileRef[];
  readonly tool: { readonly name: string; readonly version: string };
}

type Json = Record<string, unknown>;

/** OSCAL `date-time-with-timezone` from an envelope time (microseconds kept). */
const oscalTime = (t: string): string => t;

export function buildAssessmentResults(input: OscalInput): Json {
  const { report, packId } = input;
  const uuid = (...parts: string[]): string => deterministicUuid('oscal', packId, ...parts);
  const resourceFor = new Map(input.files.map((f) => [f.path, uuid('resource', f.path)]));
  const evidence = (path: string, description: string): Json => ({ href: `#${resourceFor.get(path)!}`, description });
  const has = (path: string): boolean => resourceFor.has(path);

  const observations: Json[] = [];
  const controlObservation = new Map<string, string>();
  for (const control of report.controls) {
    const id = uuid('observation', control.id);
    controlObservation.set(control.id, id);
    const kinds = control.byRule.map((r) => `${r.count} × ${r.event} (${r.description})`).join('; ');
    observations.push({
      uuid: id,
      title: `${control.id} ${control.title}: ${control.count} evidencing event(s)`,
      description: `${control.asks} Evidence in the period: ${kinds || 'none'}.${control.sampleSessions.length > 0 ? ` Sample sessions: ${control.sampleSessions.join(', ')}.` : ''}`,
      props: [
        { name: 'control-id', ns: CUSTODIAN_OSCAL_NS, value: control.oscalId },
        { name: 'evidence-count', ns: CUSTODIAN_OSCAL_NS, value: String(control.count) },
      ],
      methods: ['EXAMINE', 'TEST'],
      types: ['control-objective'],
      subjects: [{ 'subject-uuid': uuid('subject', 'log'), type: 'component', title: `Custodian evidence log ${input.origin}` }],
      'relevant-evidence': [
        ...(has('events.jsonl') ? [evidence('events.jsonl', 'The events in scope (RFC 8785 canonical JSON, one per line), each proven included in the signed log.')] : []),
        ...(has('evidence.json') ? [evidence('evidence.json', `Counts per mapping rule, sample sessions and findings for ${control.id}.`)] : []),
      ],
      collected: oscalTime(input.createdAt),
    });
  }
  const findingObservation = new Map<string, string>();
  for (const finding of report.findings) {
    const id = uuid('observation', 'finding', finding.id);
    findingObservation.set(finding.id, id);
    observations.push({
      uuid: id,
      title: finding.title,
      description: `${finding.description}.${finding.eventIds.length > 0 ? ` Events: ${finding.eventIds.join(', ')} (leaves ${finding.leafIndices.join(', ')}).` : ''}`,
      props: [
        { name: 'finding-kind', ns: CUSTODIAN_OSCAL_NS, value: finding.kind },
        { name: 'severity', ns: CUSTODIAN_OSCAL_NS, value: finding.severity },
      ],
      methods: ['TEST'],
      types: ['finding'],
      'relevant-evidence': [...(has('events.jsonl') && finding.eventIds.length > 0 ? [evidence('events.jsonl', `Events ${finding.eventIds.join(', ')}.`)] : []), ...(has('evidence.json') ? [evidence('evidence.json', `Finding ${finding.id}.`)] : [])],
      collected: oscalTime(input.createdAt),
    });
  }
  const integrityId = uuid('observation', 'log-integrity');
  const integrityFiles = input.files.filter((f) => f.path.startsWith('checkpoints/') || f.path.startsWith('proofs/') || f.path.startsWith('keys/'));
  observations.push({
    uuid: integrityId,
    title: `Evidence log integrity: ${input.origin} at tree size ${input.treeSize}`,
    description: `Every event in this pack is proven in the log by one leaf-set proof (RFC 6962 compact ranges of the gaps between the events) against the signed checkpoint of size ${input.treeSize} (root ${input.rootHash}); consecutive checkpoints have consistency proofs. Check with \`custodian evidence verify\` or independent tools (docs/verifying-evidence.md).`,
    methods: ['TEST'],
    types: ['control-objective'],
    'relevant-evidence': integrityFiles.map((f) => evidence(f.path, f.description)),
    collected: oscalTime(input.createdAt),
  });
  const integrityControls = new Set(input.catalogue.rules.filter((r) => r.event === 'checkpoint.signed').flatMap((r) => r.controls));

  // A control not assessed (a filtered pack without evidence for it) stays reviewed but gets no finding: OSCAL states only satisfied or not.
  const findings = report.controls.filter((control) => control.status !== 'not-assessed').map((control) => {
    const related = [controlObservation.get(control.id)!, ...control.findings.map((f) => findingObservation.get(f)!), ...(integrityControls.has(control.id) ? [integrityId] : [])];
    return {
      uuid: uuid('finding', control.id),
      title: `${control.id} ${control.title}`,
      description: control.statusReason,
      target: {
        type: 'objective-id',
        'target-id': `${control.oscalId}_obj`,
        status: { state: control.status, reason: control.status === 'satisfied' ? 'pass' : 'fail' },
      },
      'related-observations': related.map((id) => ({ 'observation-uuid': id })),
    };
  });

  return {
    'assessment-results': {
      uuid: uuid('document'),
      metadata: {
        title: `Custodian evidence pack ${packId}`,
        'last-modified': oscalTime(input.createdAt),
        version: '1',
        'oscal-version': OSCAL_VERSION,
        props: [{ name: 'pack-id', ns: CUSTODIAN_OSCAL_NS, value: packId }],
        remarks: `Generated by ${input.tool.name} ${input.tool.version} from the Custodian evidence log ${input.origin}.`,
      },
      'import-ap': { href: `#${uuid('resource', 'assessment-plan')}` },
      results: [
        {
          uuid: uuid('result'),
          title: `Evidence from ${report.scope.from} to ${report.scope.to}`,
          description: `Continuous evidence collected by Custodian${report.scope.identity ? ` for identity ${report.scope.identity}` : ''}${report.scope.connection ? ` on connection ${report.scope.connection}` : ''}${report.scope.control ? ` for control ${report.scope.control}` : ''}: ${report.totals.events} events, ${report.totals.sessions} sessions, ${report.totals.findings} findings.`,
          start: oscalTime(report.scope.from),
          end: oscalTime(report.scope.to),
          'reviewed-controls': {
            'control-selections': [{ 'include-controls': report.controls.map((c) => ({ 'control-id': c.oscalId })) }],
          },
          observations,
          findings,
        },
      ],
      'back-matter': {
        resources: [
          {
            uuid: uuid('resource', 'assessment-plan'),
            title: 'Assessment plan',
            description: 'Continuous, automated evidence collection by Custodian: every event is recorded in a signed Merkle log and mapped to controls by schemas/evidence/mapping.json. There is no separate assessment-plan document.',
          },
          ...input.files.map((f) => ({
            uuid: resourceFor.get(f.path)!,
            title: f.path,
            description: f.description,
            rlinks: [{ href: `./${f.path}`, 'media-type': f.mediaType, hashes: [{ algorithm: 'SHA-256', value: f.sha256 }] }],
          })),
        ],
      },
    },
  };
}

import { EventFactory, ManualClock, type CustodianEvent } from '@custodian/event-contracts';
import { describe, expect, it } from 'vitest';
import { loadControlCatalogue } from './controls/control-catalogue.js';
import { computeEvidence, normalizeScopeTime, type EvidenceEvent } from './evidence-views.js';
import { buildScenario } from './testing/evidence-scenario.js';

const catalogue = loadControlCatalogue();
const scope = { from: '2026-03-01T00:00:00Z', to: '2026-03-01T01:00:00Z' };

function events(): EvidenceEvent[] {
  const factory = new EventFactory({ service: 'gateway', instance: 't' }, new ManualClock(new Date('2026-03-01T00:00:00Z'), 1_000_000n));
  return buildScenario().specs.map((spec, leafIndex) => ({ event: factory.create(spec) as CustodianEvent, leafIndex }));
}

describe('evidence views', () => {
  it('reports a gap when a checkpoint came later than allowed after an event it covers, or none came', () => {
    const all = events();
    const onTime = computeEvidence(all, { catalogue, scope, checkpoints: [{ treeSize: all.length, signedAt: '2026-03-01T00:01:00.000000Z' }], maxCheckpointDelaySeconds: 120 });
    expect(onTime.findings.filter((f) => f.kind === 'checkpoint-gap')).toEqual([]);
    const late = computeEvidence(all, { catalogue, scope, checkpoints: [{ treeSize: 10, signedAt: '2026-03-01T00:00:30.000000Z' }, { treeSize: all.length, signedAt: '2026-03-01T00:30:00.000000Z' }], maxCheckpointDelaySeconds: 120 });
    const gaps = late.findings.filter((f) => f.kind === 'checkpoint-gap');
    expect(gaps).toHaveLength(1);
    expect(gaps[0]!.description).toMatch(/^leaves 10\.\./);
    expect(late.controls.find((c) => c.id === 'AU-9')!.status).toBe('not-satisfied');
    const none = computeEvidence(all, { catalogue, scope, checkpoints: [], maxCheckpointDelaySeconds: 120, now: '2026-03-01T00:59:00.000000Z' });
    expect(none.findings.filter((f) => f.kind === 'checkpoint-gap')[0]!.description).toContain('still not covered');
  });

  it('reports a command without a decision once the grace period is over', () => {
    const all = events();
    const withoutDecisions = all.filter((e) => e.event.type !== 'policy.decided');
    const report = computeEvidence(withoutDecisions, { catalogue, scope, decisionGraceSeconds: 60 });
    expect(report.findings.filter((f) => f.kind === 'command-without-decision')).toHaveLength(4);
    // Commands within the grace period of the end are not (yet) findings.
    const early = computeEvidence(withoutDecisions, { catalogue, scope: { ...scope, to: '2026-03-01T00:00:30Z' }, decisionGraceSeconds: 60 });
    expect(early.findings.filter((f) => f.kind === 'command-without-decision')).toHaveLength(0);
  });

  it('gives findings stable ids and filters by identity', () => {
    const all = events();
    const a = computeEvidence(all, { catalogue, scope });
    const b = computeEvidence(all, { catalogue, scope });
    expect(a.findings.map((f) => f.id)).toEqual(b.findings.map((f) => f.id));
    const alice = computeEvidence(all, { catalogue, scope: { ...scope, identity: 'alice' } });
    expect(alice.totals.events).toBeGreaterThan(0);
    expect(alice.findings.every((f) => f.subject === 'alice' || f.subject === null)).toBe(true);
  });

  it('normalizes scope times to the envelope format and refuses others', () => {
    expect(normalizeScopeTime('from', '2026-03-01T00:00:00Z')).toBe('2026-03-01T00:00:00.000000Z');
    expect(normalizeScopeTime('from', '2026-03-01T00:00:00.5Z')).toBe('2026-03-01T00:00:00.500000Z');
    expect(() => normalizeScopeTime('from', '2026-03-01')).toThrow(expect.objectContaining({ code: 'EVIDENCE_SCOPE_INVALID' }));
    expect(() => normalizeScopeTime('to', '2026-03-01T00:00:00+02:00')).toThrow(expect.objectContaining({ code: 'EVIDENCE_SCOPE_INVALID' }));
  });
});

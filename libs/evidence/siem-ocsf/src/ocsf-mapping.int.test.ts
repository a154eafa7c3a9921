import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLASS_BY_EVENT_TYPE, siemKey, toOcsf, type OcsfEvent } from './ocsf-mapping.js';
import { sampleEvents } from './testing/sample-events.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const PYTHON = join(ROOT, '.tools/python/bin/python');
const VALIDATOR = join(ROOT, 'libs/evidence/siem-ocsf/scripts/validate-ocsf.py');
const havePython = existsSync(PYTHON);
if (!havePython) console.warn(`ocsf-mapping.int.test.ts: ${PYTHON} is missing (run scripts/setup-python.sh); the independent OCSF validation is skipped`);

interface ValidationResult {
  readonly index: number;
  readonly class_uid: number;
  readonly class: string;
  readonly ok: boolean;
  readonly errors: readonly string[];
}

function validateWithPydanticOcsf(events: readonly OcsfEvent[]): ValidationResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-ocsf-'));
  try {
    const file = join(dir, 'events.json');
    writeFileSync(file, JSON.stringify(events));
    const out = execFileSync(PYTHON, [VALIDATOR, file], { encoding: 'utf8', timeout: 60_000 });
    return (JSON.parse(out) as { results: ValidationResult[] }).results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('OCSF mapping', () => {
  const events = sampleEvents();
  const ocsf = events.map((e) => toOcsf(e, { recordedAt: e.occurredAt, productVersion: '0.1.0' }));

  it('maps every event type to the class documented for it, with uid arithmetic and the event id as metadata.uid', () => {
    const types = new Set(events.map((e) => e.type));
    expect(types.size).toBe(Object.keys(CLASS_BY_EVENT_TYPE).length);
    events.forEach((event, i) => {
      const o = ocsf[i]!;
      expect(CLASS_BY_EVENT_TYPE[event.type]).toContain(o.class_uid);
      expect(o.type_uid).toBe(o.class_uid * 100 + o.activity_id);
      expect(o.category_uid).toBe(Math.floor(o.class_uid / 1000));
      expect(o.metadata).toMatchObject({ version: '1.5.0', uid: event.id, event_code: event.type, log_name: event.stream });
    });
    const byKind = (kind: string) => ocsf[events.findIndex((e) => e.type === 'command.issued' && e.payload.kind === kind)]!;
    expect(byKind('sql').class_uid).toBe(6005);
    expect(byKind('http')).toMatchObject({ class_uid: 4002, activity_id: 6 });
    expect(byKind('shell')).toMatchObject({ class_uid: 4007, category_uid: 4, activity_id: 6, type_uid: 400706 });
    expect(byKind('shell')['unmapped']).toMatchObject({ command_line: expect.any(String), custodian_schema_version: expect.any(Number) });
    expect(byKind('mcp-tool').class_uid).toBe(6003);
    const kubernetes = events.flatMap((e, i) => (e.type === 'command.issued' && e.payload.kind === 'kubernetes-exec' ? [ocsf[i]!] : []));
    expect(kubernetes[0]).toMatchObject({
      class_uid: 6003,
      activity_id: 1,
      api: { operation: 'create', service: { name: 'kubernetes' } },
      resources: [{ type: 'pods/exec', name: 'web-0', namespace: 'shop', data: { command: 'exec -n shop web-0 -c app -i -- sh', container: 'app' } }],
    });
    expect(kubernetes[1]).toMatchObject({ class_uid: 6003, activity_id: 99, api: { operation: 'exec-stdin-line' }, resources: [{ type: 'pods/exec', name: 'web-0', namespace: 'shop', data: { command: 'cat /etc/hostname' } }] });
    const blocked = ocsf[events.findIndex((e) => e.type === 'policy.decided' && e.payload.decision === 'block')]!;
    expect(blocked).toMatchObject({ class_uid: 2003, severity_id: 3, compliance: { status_id: 3 } });
    const custody = (exposed: boolean) => ocsf[events.findIndex((e) => e.type === 'custody.attested' && e.payload.exposed === exposed)]!;
    expect(custody(false)).toMatchObject({ class_uid: 2003, severity_id: 1, compliance: { status_id: 1, status_detail: 'not-exposed' } });
    expect(custody(true)).toMatchObject({ class_uid: 2003, severity_id: 4, compliance: { status_id: 3, status_detail: 'exposed' } });
    expect(JSON.stringify(custody(true))).not.toContain('BEGIN PUBLIC KEY');
  });

  it('carries no frame bytes and no credential values', () => {
    const frame = ocsf[events.findIndex((e) => e.type === 'frame.recorded')]!;
    expect(JSON.stringify(frame)).not.toContain('eHh4');
    const injected = JSON.stringify(ocsf[events.findIndex((e) => e.type === 'credential.injected')]);
    expect(injected).toContain('env:ORDERS_DB_PASSWORD'); // the reference, which is what the evidence holds
  });

  it('keys session events by session id, others by stream', () => {
    const opened = events.find((e) => e.type === 'session.opened')!;
    expect(siemKey(opened)).toBe(opened.type === 'session.opened' ? opened.payload.sessionId : '');
    const activated = events.find((e) => e.type === 'policy.activated')!;
    expect(siemKey(activated)).toBe('policy-orders');
  });

  it.skipIf(!havePython)('is valid OCSF 1.5.0 according to pydantic-ocsf (an independent implementation from PyPI)', () => {
    const results = validateWithPydanticOcsf(ocsf);
    expect(results).toHaveLength(ocsf.length);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(new Set(results.map((r) => r.class))).toEqual(new Set(['Authentication', 'AuthorizeSession', 'ApiActivity', 'DatastoreActivity', 'HttpActivity', 'SshActivity', 'ComplianceFinding']));
  });

  it.skipIf(!havePython)('the validator does reject broken OCSF (so a pass means something)', () => {
    const good = ocsf[0]!;
    const broken = [
      { ...good, severity_id: 42 },
      { ...good, type_uid: good.type_uid + 1 },
      { ...good, not_an_ocsf_attribute: true },
      { ...good, metadata: { ...good.metadata, product: undefined, version: undefined } },
    ];
    const results = validateWithPydanticOcsf(broken as OcsfEvent[]);
    expect(results.map((r) => r.ok)).toEqual([false, false, false, false]);
    expect(results[2]!.errors.join()).toContain('/not_an_ocsf_attribute');
  });
});

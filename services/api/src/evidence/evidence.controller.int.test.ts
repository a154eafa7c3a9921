// Evidence routes against the real OIDC provider of the test harness and a real evidence log:
// views and findings, the log's keys and checkpoints, witness cosignatures, and pack export for
// auditors only (each export an evidence-pack.exported event), verified offline.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, ManualClock, type CustodianEvent, type EventType, type NewEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { MerkleLogProjection, verifyEvidencePack, type EvidenceReport } from '@custodian/evidence';
import { configuredEvidence } from '@custodian/evidence-host';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { Ed25519CosignatureSigner, parseNote, signNote } from '@custodian/transparency-log';
import { ApiModule } from '../index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-evidence-'));
const witness = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_772_400_000);
const OK_SESSION = randomUUID();
const ANON_SESSION = randomUUID();
const identity = { subject: 'agent-1', issuer: 'https://idp.example', groups: ['agents'], kind: 'agent' as const };
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let projection: MerkleLogProjection;
let api: string;
let auditorToken: string;
let ciToken: string;
let logVkey: string;

function sessionSpecs(sessionId: string, withIdentity: boolean): NewEvent<EventType>[] {
  const stream = `session-${sessionId}`;
  const who = withIdentity ? identity : null;
  const commandId = randomUUID();
  return [
    { type: 'session.opened', stream, sequence: 0, identity: who, payload: { sessionId, connection: { name: 'orders', protocol: 'postgres' }, client: { address: '127.0.0.1:5000', tls: true } } },
    { type: 'command.issued', stream, sequence: 1, identity: who, payload: { sessionId, commandId, kind: 'sql', text: 'SET ROLE admin', classification: { flags: ['set-role'] } } },
    { type: 'policy.decided', stream, sequence: 2, identity: who, payload: { sessionId, commandId, decision: 'allow', policy: { name: 'p', version: 1, digest: 'a'.repeat(64) }, ruleId: 'r', reason: 'ok' } },
  ];
}

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'auditor-bot', kind: 'service', groups: ['auditors'] },
      { clientId: 'ci-pipeline', kind: 'service', groups: ['ci'] },
    ],
    users: [],
  });
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] },
      evidence: { origin: 'api.test/evidence', witnesses: [witness.vkey], auditorGroups: ['auditors'], maskingRules: ['pii-card'] },
    }),
  );
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  const evidence = configuredEvidence(loaded, {});
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const clock = new ManualClock(new Date('2026-03-01T00:00:00Z'), 1000n);
  const factory = new EventFactory({ service: 'gateway', instance: 'test' }, clock);
  for (const spec of [...sessionSpecs(OK_SESSION, true), ...sessionSpecs(ANON_SESSION, false)]) await store.append(spec.stream, [factory.create(spec) as CustodianEvent], { expectedRevision: 'any' });
  const { signer } = evidence.loadSigner({ create: true });
  logVkey = signer.vkey;
  projection = await MerkleLogProjection.open({ eventStore: store, state: await evidence.openState(), signer, policy: evidence.policy, instance: 'test', clock });
  projection.start();
  await projection.caughtUp();
  await projection.checkpointNow();

  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({
    module: ApiModule.register({ eventStore: store, logger, identity: configuredIdentity(loaded, { logger }), evidence, listenHost: '127.0.0.1', instance: 'api-test' }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
  auditorToken = (await idp.issueToken({ clientId: 'auditor-bot' })).accessToken;
  ciToken = (await idp.issueToken({ clientId: 'ci-pipeline' })).accessToken;
});

afterAll(async () => {
  await service?.close();
  await projection?.close();
  await store?.close();
  await idp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, token = ciToken) => fetch(`${api}${path}`, { headers: { authorization: `Bearer ${token}` } });
const post = (path: string, body: unknown, token = ciToken) => fetch(`${api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
const PERIOD = 'from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z';

describe('evidence views', () => {
  it('needs authentication', async () => {
    expect((await fetch(`${api}/v1/evidence/controls`)).status).toBe(401);
  });

  it('serves the control catalogue with the events that evidence each control', async () => {
    const body = (await (await get('/v1/evidence/controls')).json()) as { controls: { id: string; asks: string; evidencedBy: { event: string }[] }[] };
    const ac2 = body.controls.find((c) => c.id === 'AC-2')!;
    expect(ac2.asks.length).toBeGreaterThan(10);
    expect(ac2.evidencedBy.map((r) => r.event)).toContain('session.opened');
    expect(body.controls.map((c) => c.id)).toEqual(expect.arrayContaining(['AC-6(9)', 'A.8.11']));
  });

  it('reports counts, samples and findings over a period, filtered by identity', async () => {
    const report = (await (await get(`/v1/evidence/report?${PERIOD}`)).json()) as EvidenceReport;
    expect(report.findings.map((f) => f.kind).sort()).toEqual(['masking-rule-never-fired', 'privileged-command-without-approval', 'privileged-command-without-approval', 'session-without-identity'].sort());
    expect(report.controls.find((c) => c.id === 'AC-2')!.sampleSessions).toEqual([OK_SESSION, ANON_SESSION]);
    const mine = (await (await get(`/v1/evidence/report?${PERIOD}&identity=agent-1`)).json()) as EvidenceReport;
    expect(mine.totals.events).toBe(3);
    const findings = (await (await get(`/v1/evidence/findings?${PERIOD}&control=IA-2`)).json()) as { findings: { kind: string }[] };
    expect(findings.findings.map((f) => f.kind)).toEqual(['session-without-identity']);
    const missing = await get('/v1/evidence/report?from=2026-03-01T00:00:00Z');
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('EVIDENCE_SCOPE_INVALID');
  });

  it('publishes the log keys and checkpoints, and accepts witness cosignatures', async () => {
    const log = (await (await get('/v1/evidence/log')).json()) as { origin: string; keys: string[]; latestCheckpoint: { treeSize: number; note: string } };
    expect(log.origin).toBe('api.test/evidence');
    expect(log.keys).toEqual([logVkey]);
    expect(log.latestCheckpoint.treeSize).toBe(6);
    const { text, signatures } = parseNote(log.latestCheckpoint.note);
    const accepted = await post('/v1/evidence/cosignatures', { note: signNote(text, [witness.signer], signatures) });
    expect(accepted.status).toBe(201);
    expect(await accepted.json()).toEqual({ stored: [expect.objectContaining({ treeSize: 6, witness: 'witness.example/w1', timestamp: 1_772_400_000 })] });
    const rejected = await post('/v1/evidence/cosignatures', { note: signNote(text, [Ed25519CosignatureSigner.generate('witness.example/w1').signer], signatures) });
    expect(rejected.status).toBe(400);
    const checkpoints = (await (await get('/v1/evidence/checkpoints')).json()) as { checkpoints: { note: string }[] };
    expect(checkpoints.checkpoints[0]!.note).toContain('\u2014 witness.example/w1 ');
  });
});

describe('evidence pack export', () => {
  it('is refused to identities outside the auditor groups', async () => {
    const refused = await post('/v1/evidence/packs', { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('EVIDENCE_EXPORT_FORBIDDEN');
  });

  it('sends a pack to an auditor, records who exported what, and the pack verifies offline', async () => {
    const response = await post('/v1/evidence/packs', { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', identity: 'agent-1' }, auditorToken);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/gzip');
    const bytes = Buffer.from(await response.arrayBuffer());
    // The pack is attested with the attestation key, published beside the log keys (issue 20, item 2).
    const published = (await (await get('/v1/evidence/log')).json()) as { keys: string[]; attestationKey: string | null };
    expect(published.attestationKey).toMatch(/\/packs\+[0-9a-f]{8}\+/);
    expect(published.keys).not.toContain(published.attestationKey);
    const report = await verifyEvidencePack(bytes, { trustedLogKeys: [logVkey], trustedAttestationKeys: [published.attestationKey!], requiredWitnesses: [witness.vkey] });
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.verdict).toBe('verified');
    expect(report.signers).toMatchObject({ attestationPinned: true, logKeysPinned: true, attestedByLogKey: false });
    expect(report.manifest?.counts.events).toBe(3);
    const exported: CustodianEvent[] = [];
    for await (const r of store.readAll()) if (r.event.type === 'evidence-pack.exported') exported.push(r.event);
    expect(exported).toHaveLength(1);
    const event = exported[0]! as CustodianEvent & { type: 'evidence-pack.exported' };
    expect(event.identity?.subject).toBe('auditor-bot');
    expect(event.payload).toMatchObject({ packId: response.headers.get('x-custodian-pack-id'), digest: response.headers.get('x-custodian-pack-sha256'), eventCount: 3, treeSize: 6, filter: { identity: 'agent-1' } });
  });
});

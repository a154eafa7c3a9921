// What a filtered pack selects (issue 20, item 9): a connection's pack holds the sessions'
// authentication events (recorded before session.opened), the refused attempts that asked for the
// connection, and the approvals and decisions on its commands; an identity's pack holds the
// refused attempts that claimed the identity; notYetCheckpointed counts only what the scope selects.
import { randomUUID } from 'node:crypto';
import { streamName, type EventType, type NewEvent } from '@custodian/event-contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControlCatalogue } from '../controls/control-catalogue.js';
import type { SqliteEvidenceLogState } from '../sqlite/index.js';
import { AGENT, ALICE, appendSpecs } from '../testing/evidence-scenario.js';
import { createEvidenceLogFixture, type EvidenceLogFixture } from '../testing/evidence-log-fixture.js';
import { sha256Hex, signStatement, type DsseEnvelope, type InTotoStatement } from './dsse.js';
import { PACK_FILES, buildEvidencePack, type EvidencePack, type PackManifest } from './evidence-pack.js';
import { verifyEvidencePack } from './pack-verification.js';
import { readTarGz, writeTarGz } from './tar-archive.js';
import { formatKeyId } from '@custodian/transparency-log';

const catalogue = loadControlCatalogue();
const PERIOD = { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' };
const LEDGER = { name: 'ledger-prod', protocol: 'postgres' as const };
let f: EvidenceLogFixture;
let state: SqliteEvidenceLogState;

function session(identity: typeof AGENT, connection: typeof LEDGER, approvalId?: string): NewEvent<EventType>[] {
  const sessionId = randomUUID();
  const stream = streamName('session', sessionId);
  const commandId = randomUUID();
  const specs = [
    // As the gateway records them: authentication.succeeded first, then session.opened.
    { type: 'authentication.succeeded', stream, sequence: 0, identity, payload: { sessionId, method: 'oidc-access-token', protocol: 'postgres', connection, clientAddress: '10.0.0.1:5000', tokenExpiresAt: '2026-03-01T01:00:00.000000Z' } },
    { type: 'session.opened', stream, sequence: 1, identity, payload: { sessionId, connection, client: { address: '10.0.0.1:5000', tls: true } } },
    { type: 'command.issued', stream, sequence: 2, identity, payload: { sessionId, commandId, kind: 'sql', text: 'DROP TABLE t', classification: { language: 'sql', result: { ok: true, statements: [{ kind: 'drop', flags: ['ddl'] }] } } } },
    { type: 'policy.decided', stream, sequence: 3, identity, payload: { sessionId, commandId, decision: 'require-approval', policy: { name: 'p', version: 1, digest: 'b'.repeat(64) }, ruleId: 'r-approval', reason: 'held' } },
  ] as NewEvent<EventType>[];
  if (!approvalId) return specs;
  const approvals = streamName('approval', approvalId);
  return [
    ...specs,
    { type: 'approval.requested', stream: approvals, sequence: 0, identity, payload: { approvalId, sessionId, commandId, command: 'DROP TABLE t', language: 'sql', connection, ruleId: 'r-approval', approverGroups: ['approvers'], required: 1, expiresAt: '2026-03-01T01:00:00.000000Z', grantScope: { kind: 'once' } } },
    // The decision names only the approval: it is the connection's through the request.
    { type: 'approval.denied', stream: approvals, sequence: 1, identity: ALICE, payload: { approvalId, approver: { subject: 'alice', issuer: 'https://idp.example.com', groups: ['approvers'] }, justification: 'not now' } },
  ] as NewEvent<EventType>[];
}

function refused(claimedSubject: string, connection: typeof LEDGER): NewEvent<EventType> {
  return { type: 'authentication.failed', stream: streamName('auth', randomUUID()), sequence: 0, identity: null, payload: { method: 'oidc-access-token', protocol: 'postgres', connection, clientAddress: '10.0.0.9:5000', reasonCode: 'CONNECTION_NOT_PERMITTED', reason: 'not permitted', claimedSubject } } as NewEvent<EventType>;
}

const typesIn = (pack: EvidencePack): string[] => readTarGz(pack.bytes).find((x) => x.path === PACK_FILES.events)!.data.toString('utf8').trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);

beforeAll(async () => {
  f = await createEvidenceLogFixture();
  const projection = await f.openProjection();
  await appendSpecs(f.store, f.factory, [...session(AGENT, LEDGER, randomUUID()), refused(AGENT.subject, LEDGER), ...session(ALICE, { name: 'other-db', protocol: 'postgres' })]);
  await projection.caughtUp();
  await projection.checkpointNow();
  // After the checkpoint: one refused attempt on the ledger by the agent, one session elsewhere.
  await appendSpecs(f.store, f.factory, [refused(AGENT.subject, LEDGER), ...session(ALICE, { name: 'other-db', protocol: 'postgres' }).slice(0, 2)]);
  await projection.caughtUp();
  await projection.close();
  state = await f.openState();
});

afterAll(async () => {
  await state?.close();
  await f?.cleanup();
});

describe('filtered packs select what bears on their scope (issue 20, item 9)', () => {
  it("a connection's pack holds its sessions' authentication, the refused attempts on it and the approval decisions; it verifies", async () => {
    const pack = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, connection: LEDGER.name }, signer: f.signer, exportedBy: ALICE });
    expect(typesIn(pack).sort()).toEqual(['approval.denied', 'approval.requested', 'authentication.failed', 'authentication.succeeded', 'command.issued', 'policy.decided', 'session.opened'].sort());
    expect(pack.manifest.counts.notYetCheckpointed).toBe(1);
    const report = await verifyEvidencePack(pack.bytes, { trustedLogKeys: [f.signer.vkey], trustedAttestationKeys: [f.signer.vkey] });
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.verdict).toBe('verified');
  });

  it("an identity's pack holds the refused attempts that claimed it (no verified identity), not others' events; it verifies", async () => {
    const pack = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, identity: AGENT.subject }, signer: f.signer, exportedBy: ALICE });
    expect(typesIn(pack)).toContain('authentication.failed');
    expect(typesIn(pack)).not.toContain('approval.denied');
    expect(pack.manifest.counts.notYetCheckpointed).toBe(1);
    expect((await verifyEvidencePack(pack.bytes, { trustedLogKeys: [f.signer.vkey], trustedAttestationKeys: [f.signer.vkey] })).verdict).toBe('verified');
    const other = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, connection: 'other-db' }, signer: f.signer, exportedBy: ALICE });
    expect(other.manifest.counts.notYetCheckpointed).toBe(2);
    expect(typesIn(other)).not.toContain('authentication.failed');
  });

  it("a connection's pack re-sealed to claim another connection fails, naming an event outside that scope", async () => {
    const pack = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, connection: LEDGER.name }, signer: f.signer, exportedBy: ALICE });
    const files = new Map(readTarGz(pack.bytes).map((x) => [x.path, x.data]));
    const manifest = JSON.parse(files.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
    files.set(PACK_FILES.manifest, Buffer.from(JSON.stringify({ ...manifest, scope: { ...manifest.scope, connection: 'other-db' } })));
    const envelope = JSON.parse(files.get(PACK_FILES.attestation)!.toString('utf8')) as DsseEnvelope;
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as InTotoStatement;
    const subject = [...files.keys()].filter((p) => p !== PACK_FILES.attestation).map((p) => ({ name: p, digest: { sha256: sha256Hex(files.get(p)!) } }));
    files.set(PACK_FILES.attestation, Buffer.from(JSON.stringify(signStatement({ ...statement, subject }, f.signer, formatKeyId(f.signer.keyId)))));
    const forged = await writeTarGz([...files.entries()].map(([path, data]) => ({ path, data })), 1_772_000_000);
    const report = await verifyEvidencePack(forged, { trustedLogKeys: [f.signer.vkey], trustedAttestationKeys: [f.signer.vkey] });
    expect(report.verdict).toBe('failed');
    expect(report.firstFailure).toMatchObject({ name: 'leaf-set proof', detail: expect.stringMatching(/not of connection other-db, the pack's scope \(and \d+ more\)/) });
  });
});

// Exports an evidence pack over an event store the way `custodian evidence export` does (Merkle
// log projection, a signed checkpoint, buildEvidencePack), and returns the pack's files, so that
// tests can look inside what an auditor would receive.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { MerkleLogProjection, buildEvidencePack, loadControlCatalogue, readTarGz, type ArchiveFile, type EvidencePack } from '@custodian/evidence';
import { SqliteEvidenceLogState } from '@custodian/evidence/sqlite';
import { Ed25519NoteSigner } from '@custodian/transparency-log';

const ORIGIN = 'custodian.test/gateway-conformance';
const EXPORTER: Identity = { subject: 'conformance-auditor', issuer: 'urn:custodian:test', groups: ['auditors'], kind: 'human' };

export interface ExportedPack {
  readonly pack: EvidencePack;
  /** The archive's files, decompressed. */
  readonly files: readonly ArchiveFile[];
}

/** A pack of every event in the store (all of time), checkpointed first so that none is left out. */
export async function exportEvidencePack(store: EventStore): Promise<ExportedPack> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-conformance-pack-'));
  const signer = Ed25519NoteSigner.generate(ORIGIN).signer;
  const state = await SqliteEvidenceLogState.open({ path: join(dir, 'evidence.sqlite'), origin: ORIGIN });
  let projection: MerkleLogProjection | undefined;
  try {
    projection = await MerkleLogProjection.open({ eventStore: store, state, signer, policy: { everyEvents: 1_000_000, everySeconds: 3600 }, instance: 'conformance', flushDelayMs: 5 });
    projection.start();
    await projection.caughtUp();
    await projection.checkpointNow();
    const pack = await buildEvidencePack({
      store,
      state,
      catalogue: loadControlCatalogue(),
      scope: { from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' },
      signer,
      exportedBy: EXPORTER,
    });
    return { pack, files: readTarGz(pack.bytes) };
  } finally {
    // Closing the projection closes the state too.
    if (projection) await projection.close();
    else await state.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

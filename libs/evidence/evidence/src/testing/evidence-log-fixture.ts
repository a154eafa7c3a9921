// A real SQLite event store and evidence log in a temp directory, for tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFactory, type Clock } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { Ed25519NoteSigner, type NoteSigner } from '@custodian/transparency-log';
import type { BusPublisher } from '@custodian/event-bus';
import { MerkleLogProjection, type CheckpointPolicy } from '../merkle-log-projection.js';
import { SqliteEvidenceLogState } from '../sqlite/index.js';
import type { EvidenceLogger } from '../evidence-logger.js';
import type { LeafFormat } from '../leaf-format.js';
import { scenarioClock } from './evidence-scenario.js';

export const TEST_ORIGIN = 'custodian.test/evidence';

export interface EvidenceLogFixture {
  readonly dir: string;
  readonly storePath: string;
  readonly statePath: string;
  store: SqliteEventStore;
  readonly factory: EventFactory;
  readonly clock: Clock;
  signer: NoteSigner;
  /** Opens (or re-opens) the projection over the fixture's state file and starts it. */
  openProjection(options?: { policy?: CheckpointPolicy; signer?: NoteSigner; previousKeys?: readonly string[]; publisher?: BusPublisher; logger?: EvidenceLogger; leafFormat?: LeafFormat }): Promise<MerkleLogProjection>;
  openState(): Promise<SqliteEvidenceLogState>;
  cleanup(): Promise<void>;
}

export async function createEvidenceLogFixture(): Promise<EvidenceLogFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-evidence-'));
  const storePath = join(dir, 'events.sqlite');
  const statePath = join(dir, 'evidence.sqlite');
  const clock = scenarioClock();
  const store = await SqliteEventStore.open({ path: storePath, pollIntervalMs: 20 });
  const projections: MerkleLogProjection[] = [];
  const fixture: EvidenceLogFixture = {
    dir,
    storePath,
    statePath,
    store,
    clock,
    factory: new EventFactory({ service: 'gateway', instance: 'test' }, clock),
    signer: Ed25519NoteSigner.generate(TEST_ORIGIN).signer,
    openState: () => SqliteEvidenceLogState.open({ path: statePath, origin: TEST_ORIGIN }),
    async openProjection(options = {}) {
      const state = await fixture.openState();
      const projection = await MerkleLogProjection.open({
        eventStore: fixture.store,
        state,
        signer: options.signer ?? fixture.signer,
        ...(options.previousKeys ? { previousKeys: options.previousKeys } : {}),
        policy: options.policy ?? { everyEvents: 1_000_000, everySeconds: 3600 },
        ...(options.publisher ? { publisher: options.publisher } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.leafFormat ? { leafFormat: options.leafFormat } : {}),
        instance: 'test',
        clock,
        flushDelayMs: 5,
      }).catch(async (error: unknown) => {
        await state.close();
        throw error;
      });
      projections.push(projection);
      projection.start();
      return projection;
    },
    async cleanup() {
      for (const p of projections) await p.close().catch(() => undefined);
      await fixture.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

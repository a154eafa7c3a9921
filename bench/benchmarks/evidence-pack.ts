// Evidence packs at scale: a log of 1,000,000 events (20,000 with --quick) recorded by the real
// Merkle-log projection over a SQLite event store, exported as one pack and verified offline.
// The issue's aim is verification in under 10 s for 1,000,000 events. The same events are also
// projected into a second log in leaf format 1 (whole envelopes, as logs were before header leaves)
// and that pack verified too: the cost of deriving each event's header, in the same run; and one
// agent's pack of the format-2 log (headers of every leaf, 1/8 of the events) is verified. Baselines are the floors
// each step cannot beat in this design: exporting cannot be faster than gzip-compressing the
// same events, verifying cannot be faster than decompressing and SHA-256-hashing the pack.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { EventFactory, ManualClock, streamName, type CustodianEvent, type EventType, type Identity, type NewEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { MerkleLogProjection, PACK_FILES, readTarGz } from '@custodian/evidence';
import { SqliteEvidenceLogState } from '@custodian/evidence/sqlite';
import { Ed25519NoteSigner } from '@custodian/transparency-log';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { MIB, secondsSince, nowNs } from '../measurement.ts';

const NAME = 'evidence-pack';
const PROBE = fileURLToPath(new URL('../probes/evidence-pack.ts', import.meta.url));
const runFile = promisify(execFile);
const ORIGIN = 'bench.custodian.dev/evidence';
const START = new Date('2026-03-01T00:00:00.000Z');
const AGENTS: Identity[] = Array.from({ length: 8 }, (_, i) => ({ subject: `agent-${i}`, issuer: 'https://idp.example.com', groups: ['agents'], kind: 'agent' }));
const EVENTS_PER_SESSION = 9;

/** One session: opened, credential injected, three commands with their decisions, closed. */
function sessionSpecs(n: number): NewEvent<EventType>[] {
  const sessionId = randomUUID();
  const stream = streamName('session', sessionId);
  const identity = AGENTS[n % AGENTS.length]!;
  const connection = { name: n % 3 === 0 ? 'billing-prod' : 'orders-prod', protocol: 'postgres' as const };
  const specs: NewEvent<EventType>[] = [];
  const add = <T extends EventType>(type: T, payload: NewEvent<T>['payload']): void => void specs.push({ type, stream, sequence: specs.length, identity, payload } as NewEvent<EventType>);
  add('session.opened', { sessionId, connection, client: { address: '10.0.0.7:50000', application: 'psql', tls: true } });
  add('credential.injected', { sessionId, connection, credentialRef: 'env:ORDERS_DB_PASSWORD', method: 'scram-sha-256' });
  for (let c = 0; c < 3; c += 1) {
    const commandId = randomUUID();
    add('command.issued', { sessionId, commandId, kind: 'sql', text: `SELECT id, email FROM customers WHERE id = $1 LIMIT ${c + 1}`, classification: { language: 'sql', result: { ok: true, statements: [{ kind: 'select', flags: [] }] } } });
    add('policy.decided', { sessionId, commandId, decision: 'mask', policy: { name: 'orders', version: 3, digest: 'b'.repeat(64) }, ruleId: 'agents-read', reason: 'agents may read customers, masked' });
  }
  add('session.closed', { sessionId, reason: 'client-closed', durationMs: 42, frames: { clientToUpstream: 7, upstreamToClient: 21 }, bytes: { clientToUpstream: 512, upstreamToClient: 4096 } });
  return specs;
}

async function probe<T>(args: readonly string[]): Promise<T> {
  const { stdout } = await runFile(process.execPath, [PROBE, ...args], { timeout: 900_000, maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as T;
}

export const evidencePack: Benchmark = {
  name: NAME,
  description: 'a log of 1,000,000 events (20,000 quick) recorded by the Merkle-log projection, exported as one evidence pack and verified offline (aim: verify < 10 s)',
  async run({ quick, workDir, log }): Promise<Figure[]> {
    const target = quick ? 20_000 : 1_000_000;
    const sessions = Math.ceil(target / EVENTS_PER_SESSION);
    const clock = new ManualClock(START, 1000n);
    const factory = new EventFactory({ service: 'gateway', instance: 'bench' }, clock);
    const store = await SqliteEventStore.open({ path: join(workDir, 'events.sqlite'), pollIntervalMs: 20, maxGroupSize: 2000 });
    let projection: MerkleLogProjection | undefined;
    try {
      // The log: sessions appended with many in flight (group commit), then the projection catches up.
      let started = nowNs();
      const inFlight = 256;
      for (let first = 0; first < sessions; first += inFlight) {
        const batch = Array.from({ length: Math.min(inFlight, sessions - first) }, (_, k) => sessionSpecs(first + k));
        await Promise.all(batch.map((specs) => store.append(specs[0]!.stream, specs.map((s) => factory.create(s) as CustodianEvent), { expectedRevision: 'no-stream' })));
      }
      const events = sessions * EVENTS_PER_SESSION;
      log(`appended ${events} events (${sessions} sessions) in ${secondsSince(started).toFixed(1)} s`);

      const key = Ed25519NoteSigner.generate(ORIGIN);
      const signer = key.signer;
      /** The Merkle-log projection of every event into a fresh log in a leaf format: its seconds. */
      const project = async (statePath: string, leafFormat: 1 | 2): Promise<number> => {
        const state = await SqliteEvidenceLogState.open({ path: statePath, origin: ORIGIN });
        projection = await MerkleLogProjection.open({ eventStore: store, state, signer, policy: { everyEvents: Math.ceil(target / 4), everySeconds: 3600 }, instance: 'bench', clock, flushDelayMs: 5, leafFormat });
        const begun = nowNs();
        projection.start();
        await projection.caughtUp();
        await projection.checkpointNow();
        const seconds = secondsSince(begun);
        log(`projection (leaf format ${leafFormat}) recorded ${events} leaves in ${seconds.toFixed(1)} s`);
        await projection.close();
        projection = undefined;
        return seconds;
      };
      const projectionSeconds = await project(join(workDir, 'evidence.sqlite'), 2);
      const projectionV1Seconds = await project(join(workDir, 'evidence-v1.sqlite'), 1);

      // Export and verify each in a fresh process (bench/probes/evidence-pack.ts), like the CLI.
      const skeyFile = join(workDir, 'log.skey');
      writeFileSync(skeyFile, `${key.skey.reveal()}\n`, { mode: 0o600 });
      const to = new Date(START.getTime() + events + 60_000).toISOString();
      type Exported = { seconds: number; peakRssBytes: number; events: number; bytes: number };
      type Verified = { seconds: number; peakRssBytes: number; ok: boolean; complete: boolean; failure: { name: string; detail: string } | null; events: number };
      const exportAndVerify = async (statePath: string, packPath: string, identity?: string): Promise<{ exported: Exported; verified: Verified }> => {
        const exported = await probe<Exported>(['export', join(workDir, 'events.sqlite'), statePath, ORIGIN, skeyFile, START.toISOString(), to, packPath, ...(identity ? [identity] : [])]);
        log(`exported ${exported.events} events${identity ? ` of ${identity}` : ''}: ${(exported.bytes / MIB).toFixed(1)} MiB in ${exported.seconds.toFixed(1)} s, peak RSS ${(exported.peakRssBytes / MIB).toFixed(0)} MiB`);
        const verified = await probe<Verified>(['verify', packPath, key.vkey]);
        if (!verified.ok || !verified.complete) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `the pack did not verify as complete: ${verified.failure?.name}: ${verified.failure?.detail}`);
        log(`verified ${verified.events} events in ${verified.seconds.toFixed(1)} s, peak RSS ${(verified.peakRssBytes / MIB).toFixed(0)} MiB`);
        return { exported, verified };
      };
      const packPath = join(workDir, 'pack.tar.gz');
      const { exported, verified } = await exportAndVerify(join(workDir, 'evidence.sqlite'), packPath);
      if (exported.events < events) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `the pack holds ${exported.events} of ${events} events`);
      const v1 = await exportAndVerify(join(workDir, 'evidence-v1.sqlite'), join(workDir, 'pack-v1.tar.gz'));
      const agent = await exportAndVerify(join(workDir, 'evidence.sqlite'), join(workDir, 'pack-agent.tar.gz'), AGENTS[0]!.subject);

      // Floors, on the same bytes: compressing the events file; decompressing and hashing the pack.
      const packBytes = readFileSync(packPath);
      const files = readTarGz(packBytes);
      const eventsFile = files.find((f) => f.path === PACK_FILES.events)!.data;
      const proofBytes = files.find((f) => f.path === PACK_FILES.leafSet)!.data.length;
      started = nowNs();
      gzipSync(eventsFile, { level: 6 });
      const gzipSeconds = secondsSince(started);
      started = nowNs();
      createHash('sha256').update(gunzipSync(packBytes)).digest();
      const floorSeconds = secondsSince(started);

      const n = exported.events;
      return [
        figure(NAME, { metric: `Merkle-log projection over SQLite, ${events} events`, unit: 'leaves/s', better: 'higher', value: events / projectionSeconds, baseline: { name: 'SHA-256 of the same events (one hash per event: no tree, no store)', value: n / hashSeconds(eventsFile) } }),
        figure(NAME, { metric: `export ${n} events (tar.gz, leaf-set proof), own process`, unit: 's', better: 'lower', value: exported.seconds, baseline: { name: 'gzip -6 of the events file alone', value: gzipSeconds }, notes: `${(exported.bytes / MIB).toFixed(1)} MiB pack, ${(eventsFile.length / MIB).toFixed(0)} MiB of events uncompressed; leaf-set proof ${proofBytes} B; peak RSS ${(exported.peakRssBytes / MIB).toFixed(0)} MiB` }),
        figure(NAME, { metric: `verify ${n} events offline, own process (aim < 10 s)`, unit: 's', better: 'lower', value: verified.seconds, baseline: { name: 'gunzip + SHA-256 of the pack', value: floorSeconds }, notes: `${availableParallelism()} core(s); peak RSS ${(verified.peakRssBytes / MIB).toFixed(0)} MiB; leaf format 2 (headers)` }),
        figure(NAME, { metric: `verify ${n} events offline, leaf format 2 (headers) vs 1 (envelopes)`, unit: 's', better: 'lower', value: verified.seconds, baseline: { name: 'the same events in a format-1 log', value: v1.verified.seconds }, notes: `format-1 pack: peak RSS ${(v1.verified.peakRssBytes / MIB).toFixed(0)} MiB; projection ${projectionV1Seconds.toFixed(1)} s (format 1) vs ${projectionSeconds.toFixed(1)} s (format 2)` }),
        figure(NAME, { metric: `verify one agent's headers pack (${agent.exported.events} of ${n} events, every header)`, unit: 's', better: 'lower', value: agent.verified.seconds, baseline: { name: 'the complete pack of the same log', value: verified.seconds }, notes: `${(agent.exported.bytes / MIB).toFixed(1)} MiB pack; peak RSS ${(agent.verified.peakRssBytes / MIB).toFixed(0)} MiB` }),
      ];
    } finally {
      await projection?.close().catch(() => undefined);
      await store.close();
    }
  },
};

function hashSeconds(data: Buffer): number {
  const started = nowNs();
  for (let start = 0; start < data.length; ) {
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    createHash('sha256').update(data.subarray(start, end)).digest();
    start = end + 1;
  }
  return secondsSince(started);
}

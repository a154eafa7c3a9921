// The projector runs the evidence Merkle log from the `evidence` config section: the default key
// file is created in dataDir, checkpoints are signed every N events, readiness includes the log.
import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { configuredEvidence } from '@custodian/evidence-host';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { parseConfig } from '@custodian/runtime-config';
import { EvidenceLogService, ProjectorModule, type EvidenceLogStatus } from './index.js';
import type { EventStore, SubscribeToAllOptions } from '@custodian/event-store';

const dir = mkdtempSync(join(tmpdir(), 'custodian-projector-evidence-'));
const logLines: string[] = [];
let store: SqliteEventStore;
let running: RunningNestService;
const loaded = parseConfig(`dataDir: ${dir}\nevidence:\n  origin: projector.test/evidence\n  checkpoint: { everyEvents: 3, everySeconds: 30 }\n`, { env: {}, cwd: dir });

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const logger = createLogger({ service: 'projector', level: 'info', destination: { write: (s: string) => void logLines.push(s) } });
  running = await startNestService({ module: ProjectorModule.register({ eventStore: store, logger, evidence: configuredEvidence(loaded, {}) }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
});

afterAll(async () => {
  await running?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('projector evidence log', () => {
  it('creates the signing key file (0600) once, logs only its public half, and is ready', async () => {
    const keyFile = join(dir, 'evidence-log.skey');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const skey = readFileSync(keyFile, 'utf8').trim();
    expect(skey.startsWith('PRIVATE+KEY+projector.test/evidence+')).toBe(true);
    const logs = logLines.join('');
    expect(logs).toContain('created a new evidence log signing key');
    // The key material: everything after PRIVATE+KEY+<name>+<key hash>+ (base64, which may itself contain '+').
    const material = skey.split('+').slice(4).join('+');
    expect(material.length).toBeGreaterThan(40);
    expect(logs).not.toContain(material);
    const ready = await fetch(`${running.url}/health/ready`);
    expect(await ready.json()).toEqual({ status: 'ok', checks: [{ name: 'event-store', ok: true }, { name: 'evidence-log', ok: true }], failing: [] });
  });

  it('signs a checkpoint every 3 events and records it as a checkpoint.signed event', async () => {
    const factory = new EventFactory({ service: 'gateway', instance: 'test' });
    for (let i = 0; i < 3; i++) {
      await store.append(`policy-p${i}`, [factory.create({ type: 'policy.activated', stream: `policy-p${i}`, sequence: 0, identity: null, payload: { policyName: `p${i}`, version: 1, digest: 'a'.repeat(64), source: 'x', rules: 1 } })], { expectedRevision: 'no-stream' });
    }
    const deadline = Date.now() + 10_000;
    let found: { treeSize: number; note: string } | undefined;
    while (!found && Date.now() < deadline) {
      for await (const r of store.readStream('evidence-checkpoints')) if (r.event.type === 'checkpoint.signed') found = r.event.payload;
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    expect(found?.treeSize).toBe(3);
    expect(found?.note).toMatch(/^projector\.test\/evidence\n3\n/);
    const logs = logLines.join('');
    expect(logs).not.toContain('PRIVATE+KEY');
  });
});

describe('projector evidence log: a failed projection', () => {
  it('opens the log again after a delay and goes on from what it recorded', async () => {
    const restartDir = mkdtempSync(join(tmpdir(), 'custodian-projector-restart-'));
    const restartStore = await SqliteEventStore.open({ path: join(restartDir, 'events.sqlite'), pollIntervalMs: 20 });
    const lines: string[] = [];
    const logger = createLogger({ service: 'projector', level: 'info', destination: { write: (s: string) => void lines.push(s) } });
    // The first subscription fails at its first event (as a read from an unreachable database would).
    let failures = 0;
    const flaky: EventStore = Object.assign(Object.create(restartStore) as EventStore, {
      subscribeToAll: (options: SubscribeToAllOptions) =>
        restartStore.subscribeToAll({
          ...options,
          handler: async (recorded) => {
            if (failures === 0) {
              failures += 1;
              throw new Error('read all: timeout exceeded when trying to connect');
            }
            return options.handler(recorded);
          },
        }),
    });
    const status: EvidenceLogStatus = {};
    const evidence = configuredEvidence(parseConfig(`dataDir: ${restartDir}\nevidence:\n  origin: projector.test/restart\n`, { env: {}, cwd: restartDir }), {});
    const service = new EvidenceLogService({ evidence, eventStore: flaky, logger, status });
    try {
      await service.onApplicationBootstrap();
      const factory = new EventFactory({ service: 'gateway', instance: 'test' });
      for (let i = 0; i < 3; i++) {
        await restartStore.append(`policy-r${i}`, [factory.create({ type: 'policy.activated', stream: `policy-r${i}`, sequence: 0, identity: null, payload: { policyName: `r${i}`, version: 1, digest: 'a'.repeat(64), source: 'x', rules: 1 } })], { expectedRevision: 'no-stream' });
      }
      const deadline = Date.now() + 30_000;
      while (!lines.join('').includes('evidence log projection stopped; restarting it') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(failures).toBe(1);
      while ((service.projection?.size ?? 0) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await service.projection?.caughtUp();
      expect(service.projection?.size).toBe(3);
      expect(status.failure).toBeUndefined();
      expect(lines.join('')).toContain('evidence log projection restarted');
    } finally {
      await service.beforeApplicationShutdown();
      await restartStore.close();
      rmSync(restartDir, { recursive: true, force: true });
    }
  });
});

describe('projector evidence log: its database unreachable at start', () => {
  it('starts not ready and keeps trying, instead of exiting; a shutdown stops the attempts', async () => {
    const unreachableDir = mkdtempSync(join(tmpdir(), 'custodian-projector-unreachable-'));
    const unreachableStore = await SqliteEventStore.open({ path: join(unreachableDir, 'events.sqlite'), pollIntervalMs: 20 });
    const lines: string[] = [];
    const logger = createLogger({ service: 'projector', level: 'info', destination: { write: (s: string) => void lines.push(s) } });
    // Port 1 on loopback: nothing listens there.
    const loadedConfig = parseConfig(`dataDir: ${unreachableDir}\nevidence:\n  store: { kind: postgres, connectionString: { fromEnv: EVIDENCE_DB_URL } }\n`, { env: {}, cwd: unreachableDir });
    const status: EvidenceLogStatus = {};
    const service = new EvidenceLogService({ evidence: configuredEvidence(loadedConfig, { EVIDENCE_DB_URL: 'postgres://custodian@127.0.0.1:1/custodian' }), eventStore: unreachableStore, logger, status });
    try {
      await service.onApplicationBootstrap();
      expect(service.projection).toBeUndefined();
      expect(status.failure).toMatchObject({ code: 'EVIDENCE_LOG_UNAVAILABLE' });
      expect(lines.join('')).toContain('evidence log database unavailable at start; trying again');
    } finally {
      await service.beforeApplicationShutdown();
      await unreachableStore.close();
      rmSync(unreachableDir, { recursive: true, force: true });
    }
  });
});

// `log verify` against an event store tampered with underneath: the SQLite file is copied, its
// append-only triggers dropped, and one event modified, deleted, swapped or inserted, or a checkpoint
// replaced or forged with the right key. Each is reported, with its position.
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EventEnvelope } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { Ed25519NoteSigner, formatCheckpoint, signNote } from '@custodian/transparency-log';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLog, type LogVerificationReport } from './log-verification.js';
import { CHECKPOINT_STREAM } from './merkle-log-projection.js';
import { SqliteEvidenceLogState } from './sqlite/index.js';
import { appendSpecs, buildScenario, bulkSpecs } from './testing/evidence-scenario.js';
import { TEST_ORIGIN, createEvidenceLogFixture, type EvidenceLogFixture } from './testing/evidence-log-fixture.js';

let f: EvidenceLogFixture;
let state: SqliteEvidenceLogState;
let copies = 0;

beforeAll(async () => {
  f = await createEvidenceLogFixture();
  // A log from before leaf format 2, switched to header leaves after its first checkpoint: every
  // check below runs over both formats.
  const before = await f.openProjection({ leafFormat: 1 });
  await appendSpecs(f.store, f.factory, [...buildScenario().specs, ...bulkSpecs(10)]);
  await before.caughtUp();
  await before.checkpointNow();
  await before.close();
  const projection = await f.openProjection();
  expect(projection.leafFormatSwitch).toBeGreaterThan(10);
  await appendSpecs(f.store, f.factory, bulkSpecs(10, 'second'));
  await projection.caughtUp();
  await projection.checkpointNow();
  await projection.caughtUp();
  await projection.close();
  await f.store.close();
  state = await f.openState();
});

afterAll(async () => {
  await state?.close();
  await f.cleanup();
});

/** Copies a SQLite file (with its WAL) and applies `tamper` to the copy with the append-only triggers dropped. */
function tamperedCopy(source: string, tamper?: (db: BetterSqlite3.Database) => void): string {
  copies += 1;
  const path = join(f.dir, `tampered-${copies}.sqlite`);
  copyFileSync(source, path);
  if (existsSync(`${source}-wal`)) copyFileSync(`${source}-wal`, `${path}-wal`);
  if (tamper) {
    const db = new BetterSqlite3(path);
    for (const { name } of db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()) db.exec(`DROP TRIGGER ${name}`);
    tamper(db);
    db.close();
  }
  return path;
}

/** Copies the store (and, with `tamperState`, the log's database), tampers with the copies and verifies the log against them. */
async function verifyTampered(tamper?: (db: BetterSqlite3.Database) => void, tamperState?: (db: BetterSqlite3.Database) => void): Promise<LogVerificationReport> {
  const store = await SqliteEventStore.open({ path: tamperedCopy(f.storePath, tamper) });
  const logState = tamperState ? await SqliteEvidenceLogState.open({ path: tamperedCopy(f.statePath, tamperState), origin: TEST_ORIGIN }) : state;
  try {
    return await verifyLog({ origin: TEST_ORIGIN, verifiers: [f.signer.verifier()], events: store.readAll(), readAfter: (position) => store.readAll({ fromPosition: position }), state: logState });
  } finally {
    await store.close();
    if (logState !== state) await logState.close();
  }
}

const positionOf = (db: BetterSqlite3.Database, type: string, nth = 0): number =>
  db.prepare<[string, number], { position: number }>('SELECT position FROM events WHERE type = ? ORDER BY position LIMIT 1 OFFSET ?').get(type, nth)!.position;

describe('custodian log verify', () => {
  it('passes on the untouched store: every checkpoint (from the store and the log) matches', async () => {
    const report = await verifyTampered();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checkpoints.filter((c) => c.source === 'event-store')).toHaveLength(2);
    expect(report.checkpoints.filter((c) => c.source === 'log-state')).toHaveLength(2);
    expect(report.checkpoints.every((c) => c.ok)).toBe(true);
    // The trailing checkpoint events are verified as notes; nothing is left uncovered.
    expect(report.uncheckpointed).toBe(0);
    expect(report.complete).toBe(true);
  });

  it('finds the recorded switch to header leaves moved: the leaves on the wrong side no longer recompute', async () => {
    const switchedAt = (await state.leafFormatSwitch())!;
    const report = await verifyTampered(undefined, (db) => void db.prepare("UPDATE evidence_meta SET value = ? WHERE key = 'leafFormat2From'").run(String(switchedAt - 3)));
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.leafIndex)).toEqual(expect.arrayContaining([switchedAt - 3, switchedAt - 2, switchedAt - 1]));
    expect(report.checkpoints.some((c) => !c.ok)).toBe(true);
  });

  it('does not call events after the last checkpoint verified (ok, but not complete)', async () => {
    const late = f.factory.create(bulkSpecs(1, 'late')[0]!);
    const report = await verifyTampered((db) => {
      db.prepare('INSERT INTO events (position, id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES ((SELECT MAX(position) + 1 FROM events), ?, ?, 0, ?, 1, ?, ?, ?)').run(late.id, late.stream, late.type, late.occurredAt, late.occurredAt, JSON.stringify(late));
    });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.uncheckpointed).toBe(1);
    expect(report.complete).toBe(false);
  });

  it('finds a corrupted interior node of the log\'s stored tree (nothing blamed on the events)', async () => {
    const report = await verifyTampered(undefined, (db) => {
      db.prepare('UPDATE tlog_nodes SET hash = ? WHERE level = 2 AND idx = 1').run(Buffer.alloc(32, 7));
    });
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'log-state-mismatch', message: expect.stringContaining('(level 2, index 1) is not the hash of its children') }));
    expect(report.problems.filter((p) => p.kind.startsWith('event'))).toEqual([]);
  });

  it('finds a stored tree leaf rewritten together with its ancestors above the last checkpoint', async () => {
    // Leaves above the last checkpoint are signed by nothing yet; the log's leaf records still tell.
    const report = await verifyTampered(undefined, (db) => {
      db.prepare('UPDATE tlog_nodes SET hash = ? WHERE level = 0 AND idx = (SELECT MAX(idx) FROM tlog_nodes WHERE level = 0)').run(Buffer.alloc(32, 8));
    });
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'log-state-mismatch', message: expect.stringContaining('differs from its record of that leaf') }));
  });

  it('blames an altered leaf record on the log, not on the intact event', async () => {
    const report = await verifyTampered(undefined, (db) => {
      db.prepare('UPDATE evidence_leaves SET leaf_hash = ? WHERE leaf_index = 4').run(Buffer.alloc(32, 9));
    });
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'log-record-modified', leafIndex: 4 })]);
  });

  it('reports an unreadable (schema-invalid) event and goes on to find a later modification', async () => {
    let bad = 0;
    let modified = 0;
    const report = await verifyTampered((db) => {
      bad = positionOf(db, 'policy.activated', 2);
      modified = positionOf(db, 'policy.activated', 6);
      db.prepare("UPDATE events SET json = json_set(json, '$.payload.version', 'not a number') WHERE position = ?").run(bad);
      db.prepare("UPDATE events SET json = json_set(json, '$.payload.rules', 999) WHERE position = ?").run(modified);
    });
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'event-unreadable', position: `C${bad}/P${bad}`, leafIndex: bad - 1 }));
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'event-modified', position: `C${modified}/P${modified}` }));
    expect(report.events).toBeGreaterThan(modified);
  });

  it('reports a modified event with its position', async () => {
    let position = 0;
    const report = await verifyTampered((db) => {
      position = positionOf(db, 'policy.activated', 3);
      db.prepare("UPDATE events SET json = json_set(json, '$.payload.rules', 999) WHERE position = ?").run(position);
    });
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'event-modified', position: `C${position}/P${position}`, leafIndex: position - 1 }));
    expect(report.problems.some((p) => p.kind === 'checkpoint-root-mismatch')).toBe(true);
  });

  it('reports a deleted event with the position it had', async () => {
    let position = 0;
    const report = await verifyTampered((db) => {
      position = positionOf(db, 'command.issued');
      db.prepare('DELETE FROM events WHERE position = ?').run(position);
    });
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'event-deleted', position: `C${position}/P${position}` }));
    expect(report.problems.filter((p) => p.kind.startsWith('event'))).toHaveLength(1);
  });

  it('reports two reordered events', async () => {
    let position = 0;
    const report = await verifyTampered((db) => {
      position = positionOf(db, 'policy.activated', 5);
      db.prepare('UPDATE events SET position = -1 WHERE position = ?').run(position);
      db.prepare('UPDATE events SET position = ? WHERE position = ?').run(position, position + 1);
      db.prepare('UPDATE events SET position = ? WHERE position = -1').run(position + 1);
    });
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'events-reordered', leafIndex: position - 1 }));
    expect(report.problems.filter((p) => p.kind.startsWith('event'))).toHaveLength(1);
  });

  it('reports an event inserted (forged) between recorded ones, with its position', async () => {
    const forged = f.factory.create(bulkSpecs(1, 'forged')[0]!);
    let position = 0;
    const report = await verifyTampered((db) => {
      position = positionOf(db, 'session.closed');
      db.prepare('UPDATE events SET position = position + 1000000 WHERE position >= ?').run(position);
      db.prepare('UPDATE events SET position = position - 999999 WHERE position >= 1000000').run();
      db.prepare('INSERT INTO events (position, id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, ?, 0, ?, 1, ?, ?, ?)').run(
        position,
        forged.id,
        forged.stream,
        forged.type,
        forged.occurredAt,
        forged.occurredAt,
        JSON.stringify(forged),
      );
    });
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'event-inserted', eventId: forged.id, position: `C${position}/P${position}` }));
    expect(report.problems.filter((p) => p.kind.startsWith('event'))).toHaveLength(1);
  });

  it('reports a replaced checkpoint (signed by another key) and a fork signed with the right key', async () => {
    const intruder = Ed25519NoteSigner.generate(TEST_ORIGIN).signer;
    const replaced = await verifyTampered((db) => {
      const row = db.prepare<[], { position: number; json: string }>("SELECT position, json FROM events WHERE type = 'checkpoint.signed' ORDER BY position LIMIT 1").get()!;
      const event = JSON.parse(row.json) as EventEnvelope<'checkpoint.signed'>;
      const body = formatCheckpoint({ origin: TEST_ORIGIN, size: event.payload.treeSize, rootHash: Buffer.alloc(32, 1), extensions: [] });
      event.payload.note = signNote(body, [intruder]);
      db.prepare('UPDATE events SET json = ? WHERE position = ?').run(JSON.stringify(event), row.position);
    });
    expect(replaced.problems).toContainEqual(expect.objectContaining({ kind: 'checkpoint-signature-invalid' }));
    expect(replaced.problems).toContainEqual(expect.objectContaining({ kind: 'event-modified' }));

    // A fork: the right key signs a checkpoint over a tree that is not this one (appended as the last event).
    const fork = await verifyTampered((db) => {
      const last = db.prepare<[], { position: number; revision: number }>("SELECT MAX(position) AS position, (SELECT MAX(revision) FROM events WHERE stream = 'evidence-checkpoints') AS revision FROM events").get()!;
      const body = formatCheckpoint({ origin: TEST_ORIGIN, size: 7, rootHash: Buffer.alloc(32, 2), extensions: [] });
      const event = f.factory.create({ type: 'checkpoint.signed', stream: CHECKPOINT_STREAM, sequence: last.revision + 1, identity: null, payload: { origin: TEST_ORIGIN, treeSize: 7, rootHash: Buffer.alloc(32, 2).toString('base64'), note: signNote(body, [f.signer]), keyIds: ['00000000'] } });
      db.prepare('INSERT INTO events (position, id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)').run(
        last.position + 1,
        event.id,
        event.stream,
        last.revision + 1,
        event.type,
        event.occurredAt,
        event.occurredAt,
        JSON.stringify(event),
      );
    });
    expect(fork.problems).toContainEqual(expect.objectContaining({ kind: 'checkpoint-root-mismatch', treeSize: 7 }));
  });

  it('reports events deleted from the end, below the last checkpoint', async () => {
    const report = await verifyTampered((db) => {
      db.prepare('DELETE FROM events WHERE position > (SELECT MAX(position) - 5 FROM events)').run();
    });
    expect(report.problems.some((p) => p.kind === 'checkpoint-beyond-store')).toBe(true);
    expect(report.problems.filter((p) => p.kind === 'event-deleted').length).toBe(5);
  });
});

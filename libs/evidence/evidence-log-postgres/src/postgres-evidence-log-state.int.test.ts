// The PostgreSQL evidence log against a real PostgreSQL server: the EvidenceLogState and TreeStorage
// contract suites (the same ones the SQLite adapter passes), then what only a shared database adds:
// append-only enforced by the database even against the owner, a writer role without DDL, two
// writers on one log, and a database that cannot be reached.
import { randomBytes } from 'node:crypto';
import type { EvidenceLogState } from '@custodian/evidence';
import { CONTRACT_ORIGIN, contractLeaves, describeEvidenceLogStateContract } from '@custodian/evidence/testing';
import { MerkleTree, hashLeaf } from '@custodian/transparency-log';
import { describeTreeStorageContract, referenceRoot, testLeaves } from '@custodian/transparency-log/testing';
import { freePort, startPostgres, type StartedPostgres } from '@custodian/test-harness';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEvidenceLogState, type PostgresEvidenceLogStateOptions } from './postgres-evidence-log-state.js';
import { PostgresTreeStorage } from './postgres-tree-storage.js';
import { evidenceLogSchema } from './schema.js';

let server: StartedPostgres;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  server = await startPostgres();
}, 120_000);

afterAll(async () => {
  for (const handle of opened.splice(0)) await handle.close();
  await server?.stop();
});

const freshSchema = (): string => `ev_${randomBytes(6).toString('hex')}`;

async function open(options: Partial<PostgresEvidenceLogStateOptions> & { schema: string }): Promise<PostgresEvidenceLogState> {
  const state = await PostgresEvidenceLogState.open({
    connectionString: server.connectionString(),
    origin: CONTRACT_ORIGIN,
    ...options,
  });
  opened.push(state);
  return state;
}

async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = [], connectionString = server.connectionString()): Promise<R[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describeEvidenceLogStateContract('PostgresEvidenceLogState', async () => {
  const schema = freshSchema();
  const state = await PostgresEvidenceLogState.open({
    connectionString: server.connectionString(),
    schema,
    origin: CONTRACT_ORIGIN,
  });
  const others: EvidenceLogState[] = [];
  return {
    state,
    reopen: async (origin) => {
      const other = await PostgresEvidenceLogState.open({
        connectionString: server.connectionString(),
        schema,
        origin,
      });
      others.push(other);
      return other;
    },
    cleanup: async () => {
      for (const other of others) await other.close();
      await state.close();
    },
  };
});

describeTreeStorageContract('PostgresTreeStorage', async () => {
  const storage = await PostgresTreeStorage.open({
    connectionString: server.connectionString(),
    schema: freshSchema(),
  });
  return { storage, cleanup: () => storage.close() };
});

// The tree as the projection stores it (appends in the state's transactions) keeps every promise of a TreeStorage.
describeTreeStorageContract('PostgresEvidenceLogState.treeStorage', async () => {
  const state = await PostgresEvidenceLogState.open({
    connectionString: server.connectionString(),
    schema: freshSchema(),
    origin: CONTRACT_ORIGIN,
  });
  return { storage: state.treeStorage, cleanup: () => state.close() };
});

describe('PostgreSQL evidence log: what the database itself enforces', () => {
  it('refuses UPDATE, DELETE and TRUNCATE of nodes, leaves, keys and meta, even by the owner', async () => {
    const schema = freshSchema();
    const state = await open({ schema });
    const tree = await MerkleTree.open(state.treeStorage);
    await state.appendLeaves(contractLeaves(0, 4), tree);
    await state.recordKey(`${CONTRACT_ORIGIN}+01234567+AAAA`);
    const s = evidenceLogSchema(schema);
    const statements = [
      `UPDATE ${s.nodes} SET hash = hash WHERE level = 0 AND idx = 0`,
      `DELETE FROM ${s.nodes} WHERE level = 2`,
      `TRUNCATE ${s.nodes}`,
      `UPDATE ${s.leaves} SET type = 'x' WHERE leaf_index = 1`,
      `DELETE FROM ${s.leaves} WHERE leaf_index = 3`,
      `TRUNCATE ${s.leaves}`,
      `DELETE FROM ${s.keys}`,
      `UPDATE ${s.meta} SET value = 'another.origin' WHERE key = 'origin'`,
      `TRUNCATE ${s.meta}`,
    ];
    for (const statement of statements) await expect(sql(statement), statement).rejects.toThrow(/append-only/);
    expect(await state.leafCount()).toBe(4);
    expect(await state.treeStorage.size()).toBe(4);
    expect((await MerkleTree.open(state.treeStorage)).root).toEqual(tree.root);
  });

  it('refuses a node or leaf that is not the next one, an orphan interior node and a rewritten node', async () => {
    const schema = freshSchema();
    const state = await open({ schema });
    await state.appendLeaves(contractLeaves(0, 4), await MerkleTree.open(state.treeStorage));
    const s = evidenceLogSchema(schema);
    const hash = Buffer.alloc(32, 7);
    await expect(sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (0, 9, $1)`, [hash])).rejects.toThrow(/next one/);
    await expect(sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (1, 2, $1)`, [hash])).rejects.toThrow(/next one|both children/);
    await expect(sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (0, 1, $1)`, [hash])).rejects.toThrow(/next one|duplicate key/);
    await expect(sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (0, 1, $1) ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash`, [hash])).rejects.toThrow(/next one|append-only/);
    await expect(sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (0, 4, $1)`, [Buffer.alloc(31)])).rejects.toThrow(/check constraint/);
    // (1, 2) would need leaves 4 and 5: after leaf 4 alone it is still an orphan.
    await sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (0, 4, $1)`, [hash]);
    await expect(sql(`INSERT INTO ${s.nodes} (level, idx, hash) VALUES (1, 2, $1)`, [hash])).rejects.toThrow(/both children/);
    const leaf = contractLeaves(6, 1)[0]!;
    await expect(sql(`INSERT INTO ${s.leaves} (leaf_index, position, event_id, type, occurred_at, leaf_hash) VALUES (6, '1', $1, 'x', 'x', $2)`, [leaf.eventId, hash])).rejects.toThrow(
      /must be the next one/,
    );
    expect(await sql(`SELECT count(*)::int AS n FROM ${s.nodes}`)).toEqual([{ n: 8 }]);
  });

  it('lets a checkpoint change only its delivery flags, from false to true', async () => {
    const schema = freshSchema();
    const state = await open({ schema });
    await state.saveCheckpoint({
      treeSize: 4,
      rootHash: hashLeaf(Buffer.from('r')),
      note: 'n',
      keyIds: ['01234567'],
      signedAt: 't',
      eventJson: '{}',
      appended: false,
      published: false,
    });
    await state.markCheckpoint(4, { appended: true });
    const s = evidenceLogSchema(schema);
    for (const statement of [
      `UPDATE ${s.checkpoints} SET note = 'forged'`,
      `UPDATE ${s.checkpoints} SET appended = false`,
      `UPDATE ${s.checkpoints} SET tree_size = 5`,
      `DELETE FROM ${s.checkpoints}`,
      `TRUNCATE ${s.checkpoints}`,
    ]) {
      await expect(sql(statement), statement).rejects.toThrow(/append-only/);
    }
    await sql(`UPDATE ${s.checkpoints} SET published = true`);
    expect(await state.checkpoints()).toMatchObject([{ treeSize: 4, note: 'n', appended: true, published: true }]);
  });

  it('a writer role appends, reads and adds cosignatures, but cannot disable the triggers, delete or migrate', async () => {
    const schema = freshSchema();
    const role = `evwriter_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await sql(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await open({ schema, writerRole: role });
    const writerUrl = server.connectionString(undefined, {
      user: role,
      password,
    });
    const writer = await open({
      schema,
      connectionString: writerUrl,
      migrate: false,
    });
    const tree = await MerkleTree.open(writer.treeStorage);
    await writer.appendLeaves(contractLeaves(0, 5), tree);
    await writer.saveCheckpoint({
      treeSize: 5,
      rootHash: tree.root,
      note: 'n',
      keyIds: [],
      signedAt: 't',
      eventJson: '{}',
      appended: false,
      published: false,
    });
    await writer.markCheckpoint(5, { appended: true, published: true });
    await writer.addCosignature({
      treeSize: 5,
      witness: 'w',
      keyId: '01234567',
      timestamp: 1,
      line: 'l',
    });
    await writer.addCosignature({
      treeSize: 5,
      witness: 'w',
      keyId: '01234567',
      timestamp: 2,
      line: 'l2',
    });
    await writer.recordKey(`${CONTRACT_ORIGIN}+01234567+AAAA`);
    expect(await writer.leafCount()).toBe(5);
    const s = evidenceLogSchema(schema);
    await expect(sql(`ALTER TABLE ${s.leaves} DISABLE TRIGGER USER`, [], writerUrl)).rejects.toThrow(/must be owner/);
    await expect(sql(`DELETE FROM ${s.leaves}`, [], writerUrl)).rejects.toThrow(/permission denied|append-only/);
    await expect(sql(`UPDATE ${s.checkpoints} SET note = 'x'`, [], writerUrl)).rejects.toThrow(/permission denied/);
    // A writer role cannot create the schema either: opening a new schema with migrate fails, naming no secret.
    const refused = PostgresEvidenceLogState.open({
      connectionString: writerUrl,
      schema: freshSchema(),
      origin: CONTRACT_ORIGIN,
    });
    await expect(refused).rejects.toMatchObject({
      code: 'EVIDENCE_LOG_STATE_CORRUPT',
    });
    await expect(refused).rejects.not.toThrow(password);
    // Without migrate, a schema that does not exist is named as such.
    await expect(
      PostgresEvidenceLogState.open({
        connectionString: writerUrl,
        schema: freshSchema(),
        origin: CONTRACT_ORIGIN,
        migrate: false,
      }),
    ).rejects.toMatchObject({
      code: 'EVIDENCE_LOG_UNAVAILABLE',
      message: expect.stringContaining('does not exist'),
    });
  });
});

describe('PostgreSQL evidence log: several processes', () => {
  it('two writers on one log: the stale one gets TREE_SIZE_CONFLICT, keeps no leaf record, and catches up on refresh', async () => {
    const schema = freshSchema();
    const a = await open({ schema });
    const b = await open({ schema });
    const treeA = await MerkleTree.open(a.treeStorage);
    const treeB = await MerkleTree.open(b.treeStorage);
    await a.appendLeaves(contractLeaves(0, 3), treeA);
    await expect(b.appendLeaves(contractLeaves(0, 1), treeB)).rejects.toMatchObject({ code: 'TREE_SIZE_CONFLICT' });
    expect(await b.leafCount()).toBe(3);
    expect(treeB.size).toBe(3);
    await b.appendLeaves(contractLeaves(3, 2), treeB);
    await treeA.refresh();
    expect(treeA.root).toEqual(referenceRoot(contractLeaves(0, 5).map((l) => l.leafHash)));
  });

  it('concurrent appends from two processes on one tree storage never interleave into a wrong tree', async () => {
    const schema = freshSchema();
    const one = await PostgresTreeStorage.open({
      connectionString: server.connectionString(),
      schema,
    });
    const two = await PostgresTreeStorage.open({
      connectionString: server.connectionString(),
      schema,
    });
    opened.push(one, two);
    const trees = [await MerkleTree.open(one), await MerkleTree.open(two)];
    const appended: Buffer[] = [];
    // Each writer retries after a conflict (its tree reloads the stored state), as a restarted projector would.
    await Promise.all(
      trees.map(async (tree, w) => {
        for (let i = 0; i < 20; i++) {
          const leaf = testLeaves(1, `w${w}-${i}`)[0]!;
          for (;;) {
            try {
              await tree.appendLeaves([leaf]);
              appended.push(leaf);
              break;
            } catch (error) {
              if ((error as { code?: string }).code !== 'TREE_SIZE_CONFLICT') throw error;
            }
          }
        }
      }),
    );
    expect(await one.size()).toBe(40);
    const reader = await MerkleTree.open(two);
    const stored = await Promise.all(Array.from({ length: 40 }, (_, i) => reader.leafHash(i)));
    expect(new Set(stored.map((h) => Buffer.from(h).toString('hex')))).toEqual(new Set(appended.map((l) => hashLeaf(l).toString('hex'))));
    expect(reader.root).toEqual(referenceRoot(stored));
  });

  it('an unreachable database fails the open with EVIDENCE_LOG_UNAVAILABLE, without the password', async () => {
    const password = 'not-to-be-printed-9f3a';
    const attempt = PostgresEvidenceLogState.open({
      connectionString: `postgres://custodian:${password}@127.0.0.1:${await freePort()}/nothing`,
      origin: CONTRACT_ORIGIN,
      connectTimeoutMs: 2_000,
    });
    await expect(attempt).rejects.toMatchObject({
      code: 'EVIDENCE_LOG_UNAVAILABLE',
    });
    await expect(attempt).rejects.not.toThrow(password);
  });
});

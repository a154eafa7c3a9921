// The evidence Merkle log's cost against the limit that matters: SHA-256. An append hashes the leaf
// (SHA-256 of 0x00 ‖ entry) and, amortized, about one interior node per leaf, so the best possible
// append rate is about half the raw SHA-256 rate of the same entries. Also: inclusion proofs built
// from SQLite vs memory storage, and proofs verified per second.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { MemoryTreeStorage, MerkleTree, hashLeaf, verifyInclusion, type InclusionProof } from '@custodian/transparency-log';
import { SqliteTreeStorage } from '@custodian/transparency-log/sqlite';
import { figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedMedians, timeAsync, timeSync } from '../measurement.ts';

const NAME = 'merkle-log';
const ENTRY_BYTES = 400; // about the size of a canonical command.issued envelope

function entries(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const b = Buffer.alloc(ENTRY_BYTES, 0x61);
    b.writeUInt32BE(i, 0);
    return b;
  });
}

export const merkle: Benchmark = {
  name: NAME,
  description: 'leaves/s appended to the RFC 6962 tree (memory and SQLite storage) vs raw SHA-256 of the same entries; inclusion proofs built and verified per second',
  async run({ quick, workDir, log }): Promise<Figure[]> {
    const count = quick ? 20_000 : 200_000;
    const batch = 4096;
    const data = entries(count);
    let sink = 0;
    let sqliteRun = 0;
    const appendAll = async (tree: MerkleTree): Promise<void> => {
      for (let i = 0; i < data.length; i += batch) await tree.appendLeaves(data.slice(i, i + batch));
    };
    const rates = await interleavedMedians(quick ? 2 : 3, {
      rawSha256: () => count / timeSync(() => {
        for (const d of data) sink += createHash('sha256').update(d).digest()[0]!;
      }),
      leafHash: () => count / timeSync(() => {
        for (const d of data) sink += hashLeaf(d)[0]!;
      }),
      memoryAppend: async () => {
        const tree = await MerkleTree.open(new MemoryTreeStorage());
        const seconds = await timeAsync(() => appendAll(tree));
        await tree.close();
        return count / seconds;
      },
      sqliteAppend: async () => {
        sqliteRun += 1;
        const tree = await MerkleTree.open(await SqliteTreeStorage.open({ path: join(workDir, `tree-${sqliteRun}.sqlite`) }));
        const seconds = await timeAsync(() => appendAll(tree));
        await tree.close();
        return count / seconds;
      },
    });
    log(`appended ${count} leaves of ${ENTRY_BYTES} B in batches of ${batch}`);

    const proofs = quick ? 2_000 : 20_000;
    const memoryTree = await MerkleTree.open(new MemoryTreeStorage());
    await appendAll(memoryTree);
    const sqliteTree = await MerkleTree.open(await SqliteTreeStorage.open({ path: join(workDir, 'proofs.sqlite') }));
    await appendAll(sqliteTree);
    const indices = Array.from({ length: proofs }, (_, i) => (i * 7919) % count);
    const built: InclusionProof[] = [];
    const proofRates = await interleavedMedians(quick ? 2 : 3, {
      memory: async () => proofs / (await timeAsync(async () => {
        for (const i of indices) sink += (await memoryTree.inclusionProof(i)).hashes.length;
      })),
      sqlite: async () => proofs / (await timeAsync(async () => {
        built.length = 0;
        for (const i of indices) built.push(await sqliteTree.inclusionProof(i));
      })),
    });
    const root = sqliteTree.root;
    const leafHashes = indices.map((i) => hashLeaf(data[i]!));
    const verifyRate = proofs / timeSync(() => {
      for (const [k, proof] of built.entries()) verifyInclusion(leafHashes[k]!, proof.index, proof.size, proof.hashes, root);
    });
    await memoryTree.close();
    await sqliteTree.close();
    if (sink === 0) log('(sink is zero)');

    const baseline = { name: 'raw SHA-256 of the same entries (createHash)', value: rates.rawSha256 };
    const notes = `${count} entries of ${ENTRY_BYTES} B; an append costs ≈2 SHA-256 per leaf, so ratio 0.5 is the hashing limit`;
    return [
      figure(NAME, { metric: 'RFC 6962 leaf hash (crypto.hash, 0x00 ‖ entry)', unit: 'leaves/s', better: 'higher', value: rates.leafHash, baseline }),
      figure(NAME, { metric: 'append, memory storage (leaf + interior nodes)', unit: 'leaves/s', better: 'higher', value: rates.memoryAppend, baseline, notes }),
      figure(NAME, { metric: `append, SQLite storage (WAL, synchronous=FULL, batches of ${batch})`, unit: 'leaves/s', better: 'higher', value: rates.sqliteAppend, baseline, notes }),
      figure(NAME, { metric: `inclusion proof built, SQLite storage (tree of ${count})`, unit: 'proofs/s', better: 'higher', value: proofRates.sqlite, baseline: { name: 'same proofs from memory storage', value: proofRates.memory } }),
      figure(NAME, { metric: `inclusion proof verified (tree of ${count})`, unit: 'proofs/s', better: 'higher', value: verifyRate, baseline, notes: `a proof is ≈${Math.ceil(Math.log2(count))} node hashes` }),
    ];
  },
};

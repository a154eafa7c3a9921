// Hashing and append throughput of the transparency log, on this machine, right now:
//   scripts/node24 node --experimental-transform-types libs/evidence/transparency-log/bench/hashing.bench.ts
// Prints raw SHA-256 rates (crypto.hash vs createHash, 65-byte node inputs and 200-byte leaves),
// RFC 6962 leaf+node hashing per leaf, and MerkleTree appends over memory and SQLite storage.
// Other processes share the two cores, so compare figures from the same run, not across runs.
import { createHash, hash as oneShotHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerHooks } from 'node:module';

// The sources use NodeNext-style './x.js' specifiers for './x.ts' files: map them, then load the
// sources themselves (dynamic imports, so they resolve after the hook is in place).
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
      try {
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      } catch {
        // not a TypeScript source: fall through
      }
    }
    return nextResolve(specifier, context);
  },
});
const tlog = await import('../src/index.ts');
const { SqliteTreeStorage } = await import('../src/sqlite/index.ts');

function rate(label: string, count: number, run: () => void): number {
  run(); // warm up
  const start = process.hrtime.bigint();
  run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const perSecond = count / seconds;
  console.log(`${label.padEnd(58)} ${Math.round(perSecond).toLocaleString('en-US').padStart(12)} /s`);
  return perSecond;
}

async function rateAsync(label: string, count: number, run: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const perSecond = count / seconds;
  console.log(`${label.padEnd(58)} ${Math.round(perSecond).toLocaleString('en-US').padStart(12)} /s`);
  return perSecond;
}

const N = 300_000;
const node = Buffer.alloc(65, 1);
const leaf = Buffer.alloc(201, 2);
rate('raw SHA-256, 65 B, crypto.hash', N, () => {
  for (let i = 0; i < N; i += 1) oneShotHash('sha256', node, 'buffer');
});
rate('raw SHA-256, 65 B, createHash().update().digest()', N, () => {
  for (let i = 0; i < N; i += 1) createHash('sha256').update(node).digest();
});
rate('raw SHA-256, 201 B, crypto.hash', N, () => {
  for (let i = 0; i < N; i += 1) oneShotHash('sha256', leaf, 'buffer');
});
rate('raw SHA-256, 201 B, createHash().update().digest()', N, () => {
  for (let i = 0; i < N; i += 1) createHash('sha256').update(leaf).digest();
});

const l = tlog.hashLeaf(Buffer.from('l'));
const r = tlog.hashLeaf(Buffer.from('r'));
rate('hashChildren (RFC 6962 node)', N, () => {
  for (let i = 0; i < N; i += 1) tlog.hashChildren(l, r);
});
const entries = Array.from({ length: 100_000 }, (_, i) => Buffer.from(`{"type":"command.issued","n":${i},"text":"${'x'.repeat(150)}"}`));
rate('hashLeaf (200 B event)', entries.length, () => {
  for (const e of entries) tlog.hashLeaf(e);
});
// Leaf hash plus the ~1 interior node each leaf completes: what an append costs in hashing.
rate('leaves/s through growTree (leaf + interior hashes)', entries.length, () => {
  tlog.growTree(0, entries.map(tlog.hashLeaf), new Map());
});

for (const batch of [1, 100, 4096]) {
  const tree = await tlog.MerkleTree.open(new tlog.MemoryTreeStorage());
  const count = batch === 1 ? 20_000 : 100_000;
  await rateAsync(`MerkleTree.appendLeaves, memory, batches of ${batch}`, count, async () => {
    for (let i = 0; i < count; i += batch) await tree.appendLeaves(entries.slice(i % 90_000, (i % 90_000) + batch));
  });
}
const dir = mkdtempSync(join(tmpdir(), 'tlog-bench-'));
try {
  for (const batch of [1, 100, 4096]) {
    const tree = await tlog.MerkleTree.open(await SqliteTreeStorage.open({ path: join(dir, `tree-${batch}.db`) }));
    const count = batch === 1 ? 500 : batch === 100 ? 20_000 : 100_000;
    await rateAsync(`MerkleTree.appendLeaves, SQLite FULL sync, batches of ${batch}`, count, async () => {
      for (let i = 0; i < count; i += batch) await tree.appendLeaves(entries.slice(i % 90_000, (i % 90_000) + batch));
    });
    const proofs = 2_000;
    await rateAsync(`inclusion proofs from SQLite (size ${tree.size})`, proofs, async () => {
      for (let i = 0; i < proofs; i += 1) await tree.inclusionProof((i * 7919) % tree.size);
    });
    await tree.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

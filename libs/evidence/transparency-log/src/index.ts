// Custodian's tamper-evident evidence log core: an RFC 6962 Merkle tree over append-only storage,
// RFC 9162 proofs, and C2SP checkpoints / signed notes / cosignatures / tlog-proofs.
// SQLite storage: @custodian/transparency-log/sqlite. Storage contract suite: @custodian/transparency-log/testing.
export * from './errors.js';
export * from './hashing.js';
export * from './tree-shape.js';
export * from './tree-storage.js';
export * from './memory-tree-storage.js';
export * from './merkle-tree.js';
export * from './compact-range.js';
export * from './leaf-set-proof.js';
export * from './proof-verification.js';
export * from './note-keys.js';
export * from './signed-note.js';
export * from './checkpoint.js';
export * from './checkpoint-signer.js';
export * from './cosignature.js';
export * from './tlog-proof.js';

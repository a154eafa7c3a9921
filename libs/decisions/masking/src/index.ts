// Masking engine: detectors for PII and secrets, masking strategies, named field rules for SQL
// columns and JSON paths, and a streaming masker with bounded hold-back. Findings name the field,
// rule and detector with a count, never the value; the caller turns them into `data.masked`.
export * from './errors.js';
export * from './detectors/index.js';
export * from './strategies.js';
export * from './findings.js';
export * from './text-masker.js';
export * from './json-path.js';
export * from './json-text-masker.js';
export * from './column-pattern.js';
export * from './policy.js';
export * from './json-stream-masker.js';

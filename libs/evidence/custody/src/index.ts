// Credential custody: the scanner that watches a session's client-bound bytes and events for the
// credential the gateway injected, the signed (DSSE / in-toto) custody statement, its verifier, and
// the DSSE implementation the evidence pack's attestation shares.
export * from './errors.js';
export * from './dsse.js';
export * from './exposure-needles.js';
export * from './credential-exposure-scanner.js';
export * from './custody-statement.js';

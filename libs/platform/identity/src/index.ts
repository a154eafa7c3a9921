// Identity: who is on the other end of a session (subject, issuer, groups, kind), proven by an
// OIDC token. This package holds the port, the issuer policy and the claim rules; adapters
// (e.g. @custodian/identity-oidc) fetch keys and check signatures.
export * from './access-token-verifier.js';
export * from './authentication-events.js';
export * from './claim-mapping.js';
export * from './compact-jwt.js';
export * from './human-session-store.js';
export * from './identity-error.js';
export * from './issuer-config.js';
export * from './token-claims.js';
export * from './bearer-authentication.js';

// The gateway conformance suite (test code only: imports vitest). A protocol adapter's test file
// calls describeGatewayConformance() with a GatewayConformanceFixture.
export * from './conformance-fixture.js';
export { describeGatewayConformance, type GatewayConformanceOptions } from './gateway-conformance.js';
export { startRecordingRelay, type RecordingRelay } from './recording-relay.js';
export { findSecret, scanForSecrets, secretNeedles, type SecretEncoding, type SecretFinding } from './secret-scan.js';
export { verifyCustodyAttestation, dssePae, CustodyVerificationError, type CustodyEnvelope, type VerifiedCustody } from './custody-verification.js';
export { conformancePolicyYaml, RULES as CONFORMANCE_RULES } from './conformance-world.js';

// The embedded demo (`custodian start --demo`): a PGlite target on the wire protocol, a
// development OIDC issuer with demo identities, and a sample policy. Development use only.
export { startDemoEnvironment, DEMO_CONNECTION, DEMO_AUDIENCE, DEMO_IDENTITIES, type DemoEnvironment } from './demo-environment.js';
export { startDevOidcIssuer, DEMO_LOGIN_CLIENT_ID, DemoEnvironmentError, type DevOidcIssuer, type DemoIdentity } from './dev-oidc-issuer.js';
export { startDemoDatabase, DEMO_SEED_SQL, type DemoDatabase } from './demo-database.js';
export { DEMO_POLICY_YAML } from './demo-policy.js';

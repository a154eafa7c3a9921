// `custodian start --demo`: a demo target database, a development OIDC issuer with demo
// identities (an agent, an approver, an auditor) and a sample policy, wired into the config so
// that the embedded host serves them through the PostgreSQL gateway.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CustodianConfig } from '@custodian/runtime-config';
import { startDemoDatabase, type DemoDatabase } from './demo-database.js';
import { DEMO_POLICY_YAML } from './demo-policy.js';
import { startDevOidcIssuer, type DemoIdentity, type DevOidcIssuer } from './dev-oidc-issuer.js';

export const DEMO_CONNECTION = 'demo';
export const DEMO_AUDIENCE = 'urn:custodian:demo';

export const DEMO_IDENTITIES: readonly DemoIdentity[] = [
  { clientId: 'demo-agent', clientSecret: 'demo-agent-secret', kind: 'agent', groups: ['demo-agents'], description: 'an AI agent that reads the shop and asks to write' },
  { clientId: 'demo-approver', clientSecret: 'demo-approver-secret', kind: 'human', groups: ['demo-approvers'], description: 'a human who approves held statements' },
  { clientId: 'demo-auditor', clientSecret: 'demo-auditor-secret', kind: 'human', groups: ['auditors'], description: 'a human who reads the evidence' },
];

export interface DemoEnvironment {
  readonly issuer: DevOidcIssuer;
  readonly database: DemoDatabase;
  readonly policyFile: string;
  /** `<dataDir>/demo/db-password` (0600): the demo database's password, which only the gateway reads (by reference). */
  readonly passwordFile: string;
  /** The config with the demo's issuer, gateway and connection added (explicit settings kept). */
  apply(config: CustodianConfig): CustodianConfig;
  /** What to print: the psql line and what to try. */
  instructions(gateway: { host: string; port: number }): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A fresh password for the demo database at each start, written for the gateway alone: the file
 * is replaced (never rewritten in place, so an older file's looser mode cannot carry over) and
 * created 0600.
 */
async function writeDemoPassword(file: string): Promise<string> {
  const password = randomBytes(32).toString('base64url');
  await rm(file, { force: true });
  await writeFile(file, password, { mode: 0o600, flag: 'wx' });
  return password;
}

export async function startDemoEnvironment(options: { dataDir: string; gatewayPort?: number }): Promise<DemoEnvironment> {
  const dir = resolve(options.dataDir, 'demo');
  await mkdir(dir, { recursive: true });
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, DEMO_POLICY_YAML);
  const passwordFile = join(dir, 'db-password');
  const password = await writeDemoPassword(passwordFile);
  const issuer = await startDevOidcIssuer({ audience: DEMO_AUDIENCE, identities: DEMO_IDENTITIES });
  let database: DemoDatabase;
  try {
    database = await startDemoDatabase({ password });
  } catch (error) {
    await issuer.stop();
    await rm(passwordFile, { force: true });
    throw error;
  }
  return {
    issuer,
    database,
    policyFile,
    passwordFile,
    apply(config) {
      const postgres = config.gateways.postgres;
      return {
        ...config,
        identity: { ...config.identity, issuers: [...config.identity.issuers, { issuer: issuer.issuer, audiences: [DEMO_AUDIENCE], algorithms: ['RS256'], clockSkewSeconds: 30, maxTokenLifetimeSeconds: 3600 }] },
        gateways: {
          ...config.gateways,
          policyFile: config.gateways.policyFile ?? policyFile,
          postgres: {
            ...postgres,
            enabled: true,
            listen: { ...postgres.listen, ...(options.gatewayPort !== undefined ? { port: options.gatewayPort } : {}) },
            connections: [
              ...postgres.connections,
              {
                name: DEMO_CONNECTION,
                // The gateway holds the demo database's password by reference and injects it at each login (SCRAM; loopback, no TLS).
                upstream: { host: database.host, port: database.port, database: database.database, user: database.user, credential: { fromFile: passwordFile }, tls: { mode: 'disable' }, connectTimeoutMs: 10_000 },
              },
            ],
          },
        },
      };
    },
    async instructions(gateway) {
      const token = await issuer.mint('demo-agent');
      const tokenCommand = `curl -s -u demo-agent:demo-agent-secret -d grant_type=client_credentials ${issuer.issuer}/token | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/'`;
      return [
        'Demo: a PGlite database behind the Custodian PostgreSQL gateway, a development OIDC issuer and the demo policy',
        `  policy: ${policyFile} (edit it; it reloads)`,
        `  database password: held by the gateway (${passwordFile}); agents never see it, each session gets a signed custody statement`,
        `  issuer: ${issuer.issuer} (identities: ${DEMO_IDENTITIES.map((i) => `${i.clientId} = ${i.description}`).join('; ')})`,
        '',
        'Connect as the demo agent (the password is its OIDC access token, valid for an hour):',
        '',
        `  PGPASSWORD='${token}' psql "host=${gateway.host} port=${gateway.port} dbname=${DEMO_CONNECTION} user=demo-agent sslmode=disable"`,
        '',
        `  (a fresh token: PGPASSWORD=$(${tokenCommand}) psql …)`,
        '',
        'Then try:',
        '  SELECT name, email, notes FROM customers;                -- e-mail masked by column rule, card and e-mail in notes by detectors',
        '  DELETE FROM orders;                                      -- blocked: DELETE without WHERE (rule no-unbounded-deletes)',
        '  TRUNCATE orders;                                         -- blocked as well (rule no-truncate)',
        "  UPDATE orders SET status = 'shipped' WHERE id = 102;     -- held until a demo approver approves it (rule agents-writes-need-approval)",
        '',
        'Approve the held statement as the demo approver, from another terminal:',
        '',
        `  export CUSTODIAN_TOKEN=$(${tokenCommand.replaceAll('demo-agent', 'demo-approver')})`,
        '  custodian approvals list',
        "  custodian approvals approve <id> -j 'looks right'",
        '',
      ].join('\n');
    },
    async stop() {
      await database.stop();
      await issuer.stop();
      // The password dies with the database; the next start writes a new one.
      await rm(passwordFile, { force: true });
    },
  };
}

// Test-only: the PostgreSQL side of the gateway conformance suite (@custodian/gateway-conformance).
// A real PostgreSQL logging every statement it receives (`log_statement = all`, the observation
// point for "did it reach the upstream"), the PostgresGateway on the suite's evidence pipeline,
// approval gate, issuer and logger, and node-postgres as the client behind a recording relay.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { startRecordingRelay, type ConformanceClient, type ConformanceEnvironment, type ConformanceGateway, type ConformanceReply, type GatewayConformanceFixture } from '@custodian/gateway-conformance';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startPostgres, type StartedPostgres } from '@custodian/test-harness';
import { PostgresGateway } from '../postgres-gateway.js';

const CONNECTION = 'conformance';
const UPSTREAM_ROLE = 'conformance_svc';

/** What node-postgres reports for a reply: rows as JSON and the command tag; errors with their SQLSTATE. */
function describeResult(result: pg.QueryResult | pg.QueryResult[]): string {
  return (Array.isArray(result) ? result : [result]).map((r) => `${r.command ?? ''} ${r.rowCount ?? ''} ${JSON.stringify(r.rows)}`).join('\n');
}

async function runQuery(client: pg.Client, text: string): Promise<ConformanceReply> {
  try {
    return { ok: true, output: describeResult(await client.query(text)) };
  } catch (error) {
    const e = error as Error & { code?: string; detail?: string };
    return { ok: false, output: `${e.message}${e.code ? ` (SQLSTATE ${e.code})` : ''}${e.detail ? ` ${e.detail}` : ''}` };
  }
}

async function connectClient(gateway: PostgresGateway, token: string): Promise<ConformanceClient> {
  const relay = await startRecordingRelay({ host: gateway.host, port: gateway.port });
  const client = new pg.Client({ host: relay.host, port: relay.port, user: 'conformance-agent', database: CONNECTION, password: token, ssl: false, application_name: 'gateway-conformance' });
  // A reset connection is reported on the pending query; this keeps it from being an unhandled 'error'.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await relay.close();
    throw error;
  }
  let gone = false;
  return {
    run: (command) => runQuery(client, command),
    clientBound: () => relay.clientBound(),
    async close() {
      if (!gone) {
        gone = true;
        await Promise.race([client.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5_000))]);
      }
      await relay.close();
    },
    disconnect() {
      gone = true;
      relay.cut();
    },
  };
}

export function postgresConformanceFixture(): GatewayConformanceFixture {
  let postgres: StartedPostgres | undefined;
  let credential: string | undefined;
  const upstream = (): StartedPostgres => {
    if (!postgres) throw new Error('the upstream PostgreSQL is not started');
    return postgres;
  };
  return {
    protocol: 'postgres',
    ocsfClassUid: 6005,
    policy: {
      allowed: { sql: { kinds: ['read'] } },
      blocked: { sql: { kinds: ['ddl'] } },
      held: { sql: { kinds: ['write'], objects: ['public.conformance_held'] } },
    },
    commands: {
      allowed: (marker) => `SELECT '${marker}' AS marker`,
      blocked: (marker) => `CREATE TABLE ${marker} (id int)`,
      held: (marker) => `INSERT INTO conformance_held (marker) VALUES ('${marker}')`,
      pii: () => 'SELECT contact FROM conformance_pii',
    },

    async startUpstream(setup) {
      postgres = await startPostgres({ settings: { log_statement: 'all' } });
      credential = setup.credential;
      await postgres.psql(
        [
          `CREATE ROLE ${UPSTREAM_ROLE} LOGIN PASSWORD '${setup.credential}'`,
          'CREATE TABLE conformance_held (marker text)',
          'CREATE TABLE conformance_pii (contact text)',
          `INSERT INTO conformance_pii VALUES ('${setup.piiValue}')`,
          `GRANT ALL ON ALL TABLES IN SCHEMA public TO ${UPSTREAM_ROLE}`,
          `GRANT ALL ON SCHEMA public TO ${UPSTREAM_ROLE}`,
        ].join('; '),
      );
    },

    async startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway> {
      const target = upstream();
      const pipeline = new SessionPipeline({
        verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: environment.issuer.issuer, audiences: [environment.issuer.audience] }] }),
        policy: { policy: parsePolicy(environment.policyYaml, 'conformance-policy.yaml') },
        evidence: environment.evidence,
        strict: environment.strict,
        approvals: environment.approvals,
        approvalWaitSeconds: environment.approvalWaitSeconds,
        source: environment.source,
        maskingKey: randomBytes(32),
        custodyKey: environment.custodyKey,
      });
      const gateway = new PostgresGateway({
        host: '127.0.0.1',
        port: 0,
        requireTls: 'non-loopback',
        pipeline,
        logger: environment.logger,
        connections: [
          {
            name: CONNECTION,
            upstream: { host: target.host, port: target.port, database: target.database, user: UPSTREAM_ROLE, password: () => credential, credentialRef: environment.credentialRef, tls: { mode: 'disable' } },
          },
        ],
      });
      await gateway.listen();
      return { connect: (token) => connectClient(gateway, token), stop: () => gateway.close() };
    },

    async reachedUpstream(marker) {
      const target = upstream();
      // A statement of our own after everything the gateway sent: once it is in the log, so is all that came before.
      const barrier = `barrier_${randomBytes(6).toString('hex')}`;
      await target.psql(`SELECT '${barrier}'`);
      for (let attempt = 0; ; attempt++) {
        const log = await readFile(target.logPath, 'utf8');
        if (log.includes(barrier)) return log.includes(marker);
        if (attempt > 100) throw new Error(`the PostgreSQL statement log (${target.logPath}) does not show statements: is log_statement = all in effect?`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },

    async stop() {
      await postgres?.stop();
    },
  };
}

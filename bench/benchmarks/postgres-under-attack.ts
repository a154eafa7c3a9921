// Bystander latency through the PostgreSQL gateway while another identity attacks it (issue 19 §3):
// one client sends `SELECT 1` in a loop and its round trips are measured (p50, p99) while, on
// another session of the same gateway process, an attacker sends (a) 800 KB statements (over the
// default statement limit: refused unread), (b) 250 KB statements (under the limit: classified),
// (c) SELECTs returning a 250 KB value the detectors find expensive (under the scan limit: scanned),
// (d) SELECTs returning a 4 MB value of repeated private-key headers (over the scan limit, replaced
// unscanned), (e) a flood of Parse messages without Sync (capped per session). Each attack runs
// twice in the same run: against a gateway doing all that work on its event loop (`inlineWorkBytes`
// as large as the statement limit: the gateway before issue 19's worker threads) and against one
// with the default (work on statements and values over 4 KiB in worker threads). Baseline: the
// bystander alone, same gateway, same run. No assertion on time anywhere: the figures are reported
// with the load average.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { loadPolicyFile } from '@custodian/policy';
import { PostgresGateway } from '@custodian/postgres-gateway';
import { encodeParse, encodePasswordMessage, encodeStartupMessage, encodeSync } from '@custodian/postgres-wire';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider } from '@custodian/test-harness';
import { figure, type Benchmark, type Figure } from '../benchmark.ts';
import { nowNs, percentile } from '../measurement.ts';

const NAME = 'postgres-under-attack';

const POLICY = `
name: bench-attack
rules:
  - id: attack-read
    match: { identity: { groups: [bench] }, sql: { kinds: [read] } }
    decision: allow
masking:
  - { id: attack-detectors, detectors: [card, email, private-key], strategy: redact }
`;

interface Phase {
  readonly name: string;
  readonly description: string;
  /** Runs the attack until `signal` aborts. */
  attack(signal: AbortSignal): Promise<number>;
}

/** Round trips of `SELECT 1` (µs) until the signal aborts. */
async function bystander(client: pg.Client, signal: AbortSignal): Promise<number[]> {
  const latencies: number[] = [];
  while (!signal.aborted) {
    const start = nowNs();
    await client.query('SELECT 1');
    latencies.push(Number(nowNs() - start) / 1000);
  }
  return latencies.sort((a, b) => a - b);
}

/** A raw wire session (for a Parse flood no driver sends): logs in, then writes what it is given. */
async function rawSession(port: number, token: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      // Authentication request ('R', cleartext = 3): answer with the token; ReadyForQuery ('Z'): logged in.
      if (seen[0] === 0x52 && seen.length >= 9 && seen.readInt32BE(5) === 3) {
        seen = seen.subarray(9);
        socket.write(encodePasswordMessage(token));
      }
      if (seen.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) {
        socket.off('data', onData);
        resolve();
      }
      if (seen[0] === 0x45) reject(new Error('attacker login refused'));
    };
    socket.on('data', onData);
  });
  socket.write(encodeStartupMessage({ user: 'attacker', database: 'bench' }));
  await ready;
  // Responses are read and dropped, as an attacker that never reads would otherwise only stall itself.
  socket.on('data', () => undefined);
  return socket;
}

export const postgresUnderAttack: Benchmark = {
  name: NAME,
  description: 'Bystander SELECT 1 latency (p50, p99) through the PostgreSQL gateway while another identity sends 800 KB / 250 KB statements, 250 KB detector-heavy and 4 MB values, a Parse flood; all work on the event loop (before) and large work in worker threads (after)',
  async run({ quick, harness, workDir, log }): Promise<Figure[]> {
    const postgres = await harness.postgres();
    const oidc = await startOidcProvider({
      clients: [
        { clientId: 'bystander', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 },
        { clientId: 'attacker', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 },
      ],
    });
    const store = await SqliteEventStore.open({ path: join(workDir, 'attack-events.sqlite') });
    const evidence = new StoreEvidencePipeline({ store, instance: 'attack' });
    const policyPath = join(workDir, 'attack-policy.yaml');
    writeFileSync(policyPath, POLICY);
    const pipeline = new SessionPipeline({
      verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], maxTokenLifetimeSeconds: 3600 }] }),
      policy: { policy: loadPolicyFile(policyPath) },
      evidence,
      strict: true,
      source: { service: 'gateway', instance: 'attack' },
      maskingKey: randomBytes(32),
    });
    const startGateway = async (inlineWorkBytes: number): Promise<PostgresGateway> => {
      const gateway = new PostgresGateway({
        host: '127.0.0.1',
        port: 0,
        requireTls: 'non-loopback',
        pipeline,
        limits: { inlineWorkBytes },
        connections: [
          {
            name: 'bench',
            upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user, password: () => postgres.password, credentialRef: 'env:BENCH_PASSWORD', tls: { mode: 'disable' } },
          },
        ],
      });
      await gateway.listen();
      return gateway;
    };
    const token = async (clientId: string): Promise<string> => (await oidc.issueToken({ clientId })).accessToken;
    const connectAs = async (port: number, clientId: string): Promise<pg.Client> => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: clientId, database: 'bench', password: await token(clientId), ssl: false });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    };
    const seconds = quick ? 2 : 10;
    const bigStatement = (bytes: number): string => `SELECT 1 WHERE 'x' IN (${Array.from({ length: Math.floor(bytes / 12) }, (_, i) => `'v${String(i).padStart(7, '0')}'`).join(',')})`;
    const over = bigStatement(800 * 1024);
    const under = bigStatement(250 * 1024);
    const loop = async (signal: AbortSignal, one: () => Promise<unknown>): Promise<number> => {
      let sent = 0;
      while (!signal.aborted) {
        await one().catch(() => undefined);
        sent += 1;
      }
      return sent;
    };
    const phasesFor = (attackerClient: pg.Client, port: number): Phase[] => [
      { name: 'statement-800kb', description: '800 KB statements (over the 256 KiB limit: refused unread)', attack: (signal) => loop(signal, () => attackerClient.query(over)) },
      { name: 'statement-250kb', description: '250 KB statements (under the limit: parsed and classified)', attack: (signal) => loop(signal, () => attackerClient.query(under)) },
      {
        name: 'value-250kb-detector-heavy',
        description: 'SELECTs of a 250 KB value the detectors find expensive (under the 256 KiB scan limit: scanned)',
        attack: (signal) => loop(signal, () => attackerClient.query("SELECT repeat('hello world 1234 5678 foo@bar x ', 8000) AS v")),
      },
      {
        name: 'value-4mb-private-keys',
        description: 'SELECTs of a 4 MB value of repeated private-key headers (over the scan limit: replaced unscanned)',
        attack: (signal) => loop(signal, () => attackerClient.query("SELECT repeat(E'-----BEGIN RSA PRIVATE KEY-----\\n', 131072) AS v")),
      },
      {
        name: 'parse-flood',
        description: 'Parse messages without Sync, 2,000 per write (named statements capped at 10,000 per session)',
        attack: async (signal) => {
          let sent = 0;
          while (!signal.aborted) {
            const socket = await rawSession(port, await token('attacker'));
            try {
              for (let batch = 0; batch < 20 && !signal.aborted; batch += 1) {
                const messages: Buffer[] = [];
                for (let i = 0; i < 2000; i += 1) messages.push(encodeParse({ statement: `s${sent + i}`, query: 'SELECT 1', parameterTypes: [] }));
                sent += 2000;
                if (!socket.write(Buffer.concat(messages))) await new Promise((resolve) => socket.once('drain', resolve));
                await new Promise((resolve) => setImmediate(resolve));
              }
              socket.write(encodeSync());
            } finally {
              socket.destroy();
            }
          }
          return sent;
        },
      },
    ];
    const figures: Figure[] = [];
    const modes = [
      { name: 'inline', label: 'all work on the event loop (before)', inlineWorkBytes: 256 * 1024 },
      { name: 'workers', label: 'work over 4 KiB in worker threads (after, the default)', inlineWorkBytes: 4 * 1024 },
    ];
    try {
      for (const mode of modes) {
        const gateway = await startGateway(mode.inlineWorkBytes);
        const bystanderClient = await connectAs(gateway.port, 'bystander');
        const attackerClient = await connectAs(gateway.port, 'attacker');
        try {
          const measure = async (attack?: Phase): Promise<{ latencies: number[]; sent: number; load: number }> => {
            const controller = new AbortController();
            const timer = setTimeout(() => controller.abort(), seconds * 1000);
            const [latencies, sent] = await Promise.all([bystander(bystanderClient, controller.signal), attack ? attack.attack(controller.signal) : Promise.resolve(0)]);
            clearTimeout(timer);
            return { latencies, sent, load: loadavg()[0] ?? 0 };
          };
          log(`${NAME}: ${mode.name}: bystander alone for ${seconds} s`);
          const quiet = await measure();
          const quietP50 = percentile(quiet.latencies, 50);
          const quietP99 = percentile(quiet.latencies, 99);
          for (const phase of phasesFor(attackerClient, gateway.port)) {
            log(`${NAME}: ${mode.name}: ${phase.name} for ${seconds} s`);
            const result = await measure(phase);
            const notes = `${mode.label}; ${phase.description}; ${result.sent} attack messages sent; bystander ${result.latencies.length} round trips (alone: ${quiet.latencies.length}); 1-min load average ${result.load.toFixed(1)} (alone: ${quiet.load.toFixed(1)})`;
            figures.push(
              figure(NAME, { metric: `bystander p50 under ${phase.name} (${mode.name})`, unit: 'µs', better: 'lower', value: percentile(result.latencies, 50), baseline: { name: `bystander p50 alone (${mode.name})`, value: quietP50 }, notes }),
              figure(NAME, { metric: `bystander p99 under ${phase.name} (${mode.name})`, unit: 'µs', better: 'lower', value: percentile(result.latencies, 99), baseline: { name: `bystander p99 alone (${mode.name})`, value: quietP99 }, notes }),
            );
          }
          const stats = gateway.offloadStats;
          log(`${NAME}: ${mode.name}: worker threads completed ${stats.completed} tasks, refused ${JSON.stringify(stats.refused)}`);
        } finally {
          await bystanderClient.end().catch(() => undefined);
          await attackerClient.end().catch(() => undefined);
          await gateway.close();
        }
      }
    } finally {
      await evidence.close();
      await store.close();
      await oidc.stop();
    }
    return figures;
  },
};

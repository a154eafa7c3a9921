// `kubectl exec`-style sessions with @kubernetes/client-node's Exec: straight to the STAND-IN API
// server (real WebSocket channel framing over TLS; commands run as local processes, since a real
// API server with a kubelet cannot run here) vs through the Custodian Kubernetes gateway (OIDC
// login, shell policy, recording of every channel in strict mode, masking on), in one run:
// exec round trip (open, run `true`, exit Status, close) and stdout throughput of a large output.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Exec, KubeConfig } from '@kubernetes/client-node';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { KubernetesGateway } from '@custodian/kubernetes-gateway';
import { makeTestPki, startStandInApiServer } from '@custodian/kubernetes-gateway/testing';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider } from '@custodian/test-harness';
import { join } from 'node:path';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { median, nowNs, percentile, secondsSince } from '../measurement.ts';

const NAME = 'kubernetes-exec';

const BENCH_POLICY = `
name: bench-kubernetes
rules:
  - id: bench-exec
    match: { identity: { groups: [bench] }, shell: { programs: ["true", head, yes, sh] } }
    decision: allow
masking:
  - { id: bench-detectors, detectors: [card, email], strategy: redact }
`;

function kubeConfig(server: string, token: string, ca: Buffer): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false, caData: ca.toString('base64') }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return config;
}

/** One exec to its end; resolves with the stdout bytes received (fails loudly on a non-Success status). */
async function execOnce(config: KubeConfig, command: string[]): Promise<number> {
  let bytes = 0;
  let status: { status?: string; message?: string } | undefined;
  const out = new Writable({ write: (chunk: Buffer, _e, done) => ((bytes += chunk.length), done()) });
  const socket = await new Exec(config).exec('default', 'bench-0', 'app', command, out, null, null, false, (s) => (status = s as typeof status));
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
  if (status?.status !== 'Success') throw new BenchmarkError('BENCH_COMMAND_FAILED', `exec ${command.join(' ')} ended with ${JSON.stringify(status)}`);
  return bytes;
}

export const kubernetesExec: Benchmark = {
  name: NAME,
  description: 'Kubernetes exec with @kubernetes/client-node: direct to the stand-in API server vs through the Custodian gateway (strict recording, shell policy, masking): exec round trip and stdout throughput',
  async run({ quick, workDir, log }): Promise<Figure[]> {
    const pki = await makeTestPki();
    const clusterToken = randomBytes(24).toString('base64url');
    const apiServer = await startStandInApiServer({ cert: pki.serverCert, key: pki.serverKey, token: clusterToken });
    const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 }] });
    const store = await SqliteEventStore.open({ path: join(workDir, 'k8s-events.sqlite') });
    const evidence = new StoreEvidencePipeline({ store, instance: 'bench-k8s' });
    const gateway = new KubernetesGateway({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey },
      pipeline: new SessionPipeline({
        verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], maxTokenLifetimeSeconds: 3600 }] }),
        policy: { policy: parsePolicy(BENCH_POLICY, 'bench-policy.yaml') },
        evidence,
        strict: true,
        source: { service: 'gateway', instance: 'bench-k8s' },
        maskingKey: randomBytes(32),
      }),
      clusters: [{ name: 'bench', server: apiServer.url, namespaces: ['default'], credential: { kind: 'bearer', token: () => clusterToken }, credentialRef: 'env:BENCH_CLUSTER_TOKEN', ca: pki.ca }],
    });
    await gateway.listen();
    try {
      const token = (await oidc.issueToken({ clientId: 'bench-agent' })).accessToken;
      const direct = kubeConfig(apiServer.url, clusterToken, pki.ca);
      const through = kubeConfig(`https://127.0.0.1:${gateway.port}/clusters/bench`, token, pki.ca);
      const rounds = quick ? 15 : 60;
      const outputBytes = quick ? 8 * 1024 * 1024 : 64 * 1024 * 1024;

      const roundTrips = async (config: KubeConfig): Promise<number[]> => {
        await execOnce(config, ['true']); // warm-up (TLS session, parser)
        const times: number[] = [];
        for (let i = 0; i < rounds; i++) {
          const start = nowNs();
          await execOnce(config, ['true']);
          times.push(secondsSince(start) * 1000);
        }
        return times.sort((a, b) => a - b);
      };
      log(`${NAME}: ${rounds} exec round trips, direct then through the gateway`);
      const directTimes = await roundTrips(direct);
      const gatewayTimes = await roundTrips(through);

      const throughput = async (config: KubeConfig): Promise<number> => {
        const rates: number[] = [];
        for (let i = 0; i < (quick ? 1 : 3); i++) {
          const start = nowNs();
          // Text, as a shell's output is (masking works on text).
          const bytes = await execOnce(config, ['sh', '-c', `yes '2026-12-07T11:59:00Z INFO request served path=/api/orders status=200 ms=12' | head -c ${outputBytes}`]);
          if (bytes !== outputBytes) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `expected ${outputBytes} stdout bytes, got ${bytes}`);
          rates.push(bytes / 1024 / 1024 / secondsSince(start));
        }
        return median(rates);
      };
      log(`${NAME}: ${outputBytes / 1024 / 1024} MiB of stdout, direct then through the gateway`);
      const directRate = await throughput(direct);
      const gatewayRate = await throughput(through);

      const subject = 'Custodian gateway (strict, masking on)';
      return [
        figure(NAME, { metric: 'exec round trip p50 (`true`)', unit: 'ms', better: 'lower', subject, value: percentile(gatewayTimes, 50), baseline: { name: 'direct to the stand-in API server', value: percentile(directTimes, 50) } }),
        figure(NAME, { metric: 'exec round trip p99 (`true`)', unit: 'ms', better: 'lower', subject, value: percentile(gatewayTimes, 99), baseline: { name: 'direct to the stand-in API server', value: percentile(directTimes, 99) } }),
        figure(NAME, {
          metric: `stdout throughput (${outputBytes / 1024 / 1024} MiB)`,
          unit: 'MiB/s',
          better: 'higher',
          subject,
          value: gatewayRate,
          baseline: { name: 'direct to the stand-in API server', value: directRate },
          notes: 'log-like text lines; every stdout message masked (card + email detectors) and recorded as a frame',
        }),
      ];
    } finally {
      await gateway.close();
      await evidence.close();
      await store.close();
      await Promise.all([apiServer.close(), oidc.stop()]);
    }
  },
};

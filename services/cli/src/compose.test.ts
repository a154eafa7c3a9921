// Static checks of the distributed deployment (compose.yaml): there is no Docker engine here,
// so this proves what can be proved without one — that compose and the code agree.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parsePolicy } from '@custodian/policy';
import { CONFIG_FILE_ENV, isAcceptedEnvVariable, loadConfig, SERVICE_NAMES, type LoadedConfig, type ServiceName } from '@custodian/runtime-config';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

interface ComposeService {
  readonly image?: string;
  readonly command?: readonly string[];
  readonly environment?: Readonly<Record<string, string | number | boolean>>;
  readonly ports?: readonly string[];
  readonly depends_on?: Readonly<Record<string, { condition: string }>> | readonly string[];
  readonly healthcheck?: { readonly test: readonly string[] };
  readonly volumes?: readonly string[];
}

interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
}

// `merge: true`: compose files use YAML merge keys (`<<: *anchor`), as does ours.
const compose = parse(readFileSync(join(repoRoot, 'compose.yaml'), 'utf8'), { merge: true }) as ComposeFile;
const services = Object.entries(compose.services);
const custodianServices = services.filter(([, s]) => s.command?.some((part) => /^services\/[^/]+\/dist\/main\.js$/.test(part)));

function environmentOf(service: ComposeService): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

/** Where a container path comes from on this machine, through the service's bind mounts (`./dir:/path[:ro]`). */
function hostPathOf(service: ComposeService, containerPath: string): string | undefined {
  for (const spec of service.volumes ?? []) {
    const [source, target] = spec.split(':');
    if (!source?.startsWith('.') || target === undefined) continue;
    const relative = posix.relative(target, containerPath);
    if (!relative.startsWith('..') && !posix.isAbsolute(relative)) return join(repoRoot, source, relative);
  }
  return undefined;
}

/** The service's config as its container loads it: its CUSTODIAN_* variables, and the mounted file CUSTODIAN_CONFIG names. */
function configOf(service: ComposeService): LoadedConfig {
  const { [CONFIG_FILE_ENV]: file, ...env } = environmentOf(service);
  if (file === undefined) return loadConfig({ env, cwd: '/app' });
  const onHost = hostPathOf(service, file);
  expect(onHost, `${file} is not in a directory mounted from the repository`).toBeDefined();
  return loadConfig({ file: onHost!, env, cwd: '/app' });
}

/** "127.0.0.1:7400:7400" → { host: '127.0.0.1', published: 7400, target: 7400 }. */
function parsePort(spec: string): { host: string | undefined; published: number; target: number } {
  const parts = spec.split(':');
  const target = Number(parts.at(-1));
  const published = Number(parts.at(-2) ?? parts.at(-1));
  return { host: parts.length === 3 ? parts[0] : undefined, published, target };
}

describe('compose.yaml (distributed deployment)', () => {
  it('runs every Custodian service, each as its own process', () => {
    expect(custodianServices.map(([name]) => name).sort()).toEqual([...SERVICE_NAMES].sort());
  });

  it.each(custodianServices)('%s: the command runs the built main of a service that exists', (name, service) => {
    expect(service.command).toEqual(['node', `services/${name}/dist/main.js`]);
    expect(existsSync(join(repoRoot, 'services', name, 'src', 'main.ts'))).toBe(true);
  });

  it.each(custodianServices)('%s: every CUSTODIAN_* variable is accepted and the resulting config is valid', (name, service) => {
    const env = environmentOf(service);
    const custodianVariables = Object.keys(env).filter((k) => k.startsWith('CUSTODIAN_'));
    expect(custodianVariables.length).toBeGreaterThan(0);
    expect(custodianVariables.filter((k) => !isAcceptedEnvVariable(k))).toEqual([]);
    const { config } = configOf(service);
    expect(config.deployment).toBe('distributed');
    expect(config.eventStore.kind).toBe('postgres');
    expect(config.bus.kind).toBe('kafka');
    expect(config.services[name as ServiceName].http.host).toBe('0.0.0.0');
  });

  it.each(custodianServices)('%s: the healthcheck probes /health/ready on the configured port; the published ports are that one and its enabled listeners', (name, service) => {
    const { config } = configOf(service);
    const port = config.services[name as ServiceName].http.port;
    const probe = (service.healthcheck?.test ?? []).join(' ');
    const match = /http:\/\/127\.0\.0\.1:(\d+)(\/health\/ready)/.exec(probe);
    expect(match?.[2]).toBe('/health/ready');
    expect(Number(match?.[1])).toBe(port);
    const listeners = name === 'gateway' && config.gateways.postgres.enabled ? [config.gateways.postgres.listen.port] : [];
    expect((service.ports ?? []).map(parsePort).map((p) => p.target)).toEqual([port, ...listeners]);
  });

  describe('the gateway proxies the compose PostgreSQL service', () => {
    const gateway = compose.services['gateway']!;
    const database = compose.services['postgres']!;
    const loaded = configOf(gateway);
    const listener = loaded.config.gateways.postgres;
    const gatewayEnv = environmentOf(gateway);
    const databaseEnv = environmentOf(database);

    it('the PostgreSQL listener is enabled, listens on all interfaces in the container and is published on loopback', () => {
      expect(listener.enabled).toBe(true);
      expect(listener.listen.host).toBe('0.0.0.0');
      expect((gateway.ports ?? []).map(parsePort)).toContainEqual({ host: '127.0.0.1', published: listener.listen.port, target: listener.listen.port });
    });

    it('has a connection to the postgres service as its database and user, and starts after it is healthy', () => {
      expect(listener.connections.length).toBeGreaterThan(0);
      const upstream = listener.connections[0]!.upstream;
      expect(upstream).toMatchObject({ host: 'postgres', port: 5432, database: databaseEnv['POSTGRES_DB'], user: databaseEnv['POSTGRES_USER'] });
      expect(gateway.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
    });

    it('holds the database password by reference, and the referenced variable (or file) is defined for the gateway', () => {
      for (const connection of listener.connections) {
        const credential = connection.upstream.credential;
        expect(credential, `${connection.name} has no credential reference`).toBeDefined();
        if (credential && 'fromEnv' in credential) {
          expect(Object.keys(gatewayEnv)).toContain(credential.fromEnv);
          // The same value the database was initialised with.
          expect(gatewayEnv[credential.fromEnv]).toBe(databaseEnv['POSTGRES_PASSWORD']);
        } else if (credential) {
          const inContainer = posix.resolve('/etc/custodian', credential.fromFile);
          expect(hostPathOf(gateway, inContainer) ?? (gateway.volumes ?? []).find((v) => v.split(':')[1] === inContainer), `${inContainer} is not mounted`).toBeDefined();
        }
      }
    });

    it('the policy file is mounted with the config and is a valid policy', () => {
      expect(loaded.config.gateways.policyFile).toBeDefined();
      const file = join(loaded.baseDir, loaded.config.gateways.policyFile!);
      expect(existsSync(file)).toBe(true);
      expect(parsePolicy(readFileSync(file, 'utf8'), file).name).toBe('compose-example');
    });

    it('keeps its data directory (spool, masking key, custody signing key) on a named volume', () => {
      const volume = (gateway.volumes ?? []).find((v) => v.split(':')[1] === loaded.config.dataDir);
      expect(volume, `no volume at ${loaded.config.dataDir}`).toBeDefined();
      expect(Object.keys((compose as unknown as { volumes: Record<string, unknown> }).volumes)).toContain(volume!.split(':')[0]);
    });
  });

  it('the projector and the api share no data directory: the evidence log is in PostgreSQL, each keeps its keys on its own volume', () => {
    const projector = compose.services['projector']!;
    const api = compose.services['api']!;
    const volumeAt = (service: ComposeService) => (service.volumes ?? []).find((v) => v.split(':')[1] === configOf(service).config.dataDir)?.split(':')[0];
    expect(volumeAt(projector)).toBeDefined();
    expect(volumeAt(api)).toBeDefined();
    expect(volumeAt(api)).not.toBe(volumeAt(projector));
    for (const service of [projector, api]) {
      const { evidence, eventStore } = configOf(service).config;
      expect(evidence.store).toMatchObject({ kind: 'postgres', schema: 'custodian_evidence', connectionString: { fromEnv: 'EVENT_STORE_URL' } });
      expect(eventStore).toMatchObject({ kind: 'postgres', connectionString: { fromEnv: 'EVENT_STORE_URL' } });
    }
  });

  it('creates topics that a single broker can hold (one replica, one in sync)', () => {
    for (const [, service] of custodianServices) {
      const { bus } = configOf(service).config;
      expect(bus.kind === 'kafka' ? [bus.topics.replicationFactor, bus.topics.minInSyncReplicas] : []).toEqual([1, 1]);
    }
  });

  it('depends_on names only services that exist', () => {
    const names = new Set(Object.keys(compose.services));
    for (const [, service] of services) {
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(names.has(dep), `${dep} is not a service`).toBe(true);
    }
  });

  it('every published port is unique and bound to loopback', () => {
    const published = services.flatMap(([, s]) => (s.ports ?? []).map(parsePort));
    const numbers = published.map((p) => p.published);
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(published.every((p) => p.host === '127.0.0.1')).toBe(true);
  });

  it('the Dockerfile builds the workspace that the commands run', () => {
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('tsc -b tsconfig.build.json');
    expect(dockerfile).toMatch(/^FROM node:24/m);
    for (const [, service] of custodianServices) expect(service.image).toBe('custodian:dev');
  });
});

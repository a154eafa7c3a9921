// Static checks of the distributed deployment (compose.yaml): there is no Docker engine here,
// so this proves what can be proved without one — that compose and the code agree.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { isAcceptedEnvVariable, loadConfig, SERVICE_NAMES, type ServiceName } from '@custodian/runtime-config';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

interface ComposeService {
  readonly image?: string;
  readonly command?: readonly string[];
  readonly environment?: Readonly<Record<string, string | number | boolean>>;
  readonly ports?: readonly string[];
  readonly depends_on?: Readonly<Record<string, { condition: string }>> | readonly string[];
  readonly healthcheck?: { readonly test: readonly string[] };
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
    const { config } = loadConfig({ env, cwd: '/app' });
    expect(config.deployment).toBe('distributed');
    expect(config.eventStore.kind).toBe('eventstoredb');
    expect(config.bus.kind).toBe('kafka');
    expect(config.services[name as ServiceName].http.host).toBe('0.0.0.0');
  });

  it.each(custodianServices)('%s: the healthcheck probes /health/ready on the configured port, which is the published one', (name, service) => {
    const { config } = loadConfig({ env: environmentOf(service), cwd: '/app' });
    const port = config.services[name as ServiceName].http.port;
    const probe = (service.healthcheck?.test ?? []).join(' ');
    const match = /http:\/\/127\.0\.0\.1:(\d+)(\/health\/ready)/.exec(probe);
    expect(match?.[2]).toBe('/health/ready');
    expect(Number(match?.[1])).toBe(port);
    expect((service.ports ?? []).map(parsePort).map((p) => p.target)).toEqual([port]);
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

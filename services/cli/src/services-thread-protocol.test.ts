// Errors and the configuration cross the thread boundary of the embedded host as the CLI needs
// them: a ConfigError stays one (exit 2, its issues named), others keep name, message and code.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@custodian/runtime-config';
import { deserializeError, issueSourcesOf, loadedFromData, serializeError, type ServicesThreadData } from './services-thread-protocol.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-thread-protocol-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const across = <T>(value: T): T => structuredClone(value);

describe('services thread protocol', () => {
  it('a ConfigError arrives as a ConfigError with its code, message and issues', () => {
    const issue = { pointer: '/identity', path: 'identity', message: 'cannot be read', source: { kind: 'env', variable: 'X' } } as const;
    const sent = new ConfigError('CONFIG_SECRET_UNRESOLVED', 'the API cannot start', [issue]);
    const received = deserializeError(across(serializeError(sent)));
    expect(received).toBeInstanceOf(ConfigError);
    expect(received).toMatchObject({ name: 'ConfigError', code: 'CONFIG_SECRET_UNRESOLVED', message: sent.message, issues: [issue] });
  });

  it('any other error keeps its name, message and code; a thrown non-error its text', () => {
    const sent = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:1'), { code: 'EADDRINUSE' });
    const received = deserializeError(across(serializeError(sent)));
    expect(received).toMatchObject({ name: 'Error', code: 'EADDRINUSE', message: sent.message });
    class StoreError extends Error {
      override readonly name = 'EventStoreUnavailableError';
      readonly code = 'EVENT_STORE_UNAVAILABLE';
    }
    expect(deserializeError(across(serializeError(new StoreError('gone'))))).toMatchObject({ name: 'EventStoreUnavailableError', code: 'EVENT_STORE_UNAVAILABLE', message: 'gone' });
    expect(deserializeError(across(serializeError('plain')))).toMatchObject({ name: 'Error', message: 'plain' });
  });

  it('the loaded configuration crosses (structured clone) and names where each key came from, as on the main thread', () => {
    const file = join(dir, 'custodian.yaml');
    writeFileSync(file, 'log:\n  level: warn\nservices:\n  api:\n    http:\n      port: 0\n');
    const loaded = loadConfig({ file, cwd: dir, env: { CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: '0' } });
    const data: ServicesThreadData = across({ config: loaded.config, file: loaded.file, baseDir: loaded.baseDir, overriddenBy: loaded.overriddenBy, issueSources: issueSourcesOf(loaded), services: ['api'], log: { to: 'host' } });
    const rebuilt = loadedFromData(data);
    expect(rebuilt.config).toEqual(loaded.config);
    for (const path of ['log.level', 'services.api.http.port', 'services.gateway.http.port', 'metrics.enabled', 'services.api.http.port.missing']) {
      expect(rebuilt.issueAt(path, 'm')).toEqual(loaded.issueAt(path, 'm'));
    }
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, isAcceptedEnvVariable, loadConfig, parseConfig, redactConfig, resolveSecret, type CustodianConfig } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig defaults (embedded deployment)', () => {
  it('an absent file yields the embedded defaults rooted in cwd', () => {
    const { config, file } = loadConfig({ env: {}, cwd: dir });
    expect(file).toBeUndefined();
    expect(config).toEqual<CustodianConfig>({
      deployment: 'embedded',
      dataDir: join(dir, '.custodian'),
      eventStore: { kind: 'sqlite', path: join(dir, '.custodian', 'events.sqlite') },
      bus: { kind: 'in-process' },
      // Strict by default; the spool is only used with bus: kafka.
      pipeline: { strict: true, spool: { path: join(dir, '.custodian', 'spool'), maxBytes: 268435456, segmentBytes: 16777216 } },
      metrics: { enabled: true },
      services: {
        gateway: { enabled: true, http: { host: '127.0.0.1', port: 7400 } },
        ingest: { enabled: true, http: { host: '127.0.0.1', port: 7401 } },
        projector: { enabled: true, http: { host: '127.0.0.1', port: 7402 } },
        api: { enabled: true, http: { host: '127.0.0.1', port: 7403 } },
      },
      log: { level: 'info' },
      // No trusted issuer by default: every agent token is refused until one is configured.
      identity: { issuers: [], maxTokenBytes: 16384, httpTimeoutMs: 5000, jwksRefreshCooldownMs: 30000, jwksMaxAgeMs: 600000 },
      // Approvals: read models in dataDir, no webhooks until configured.
      approvals: {
        readModel: 'file',
        toolDefinitionApproverGroups: [],
        expirySweep: { enabled: true, intervalSeconds: 30, graceSeconds: 5 },
        notifications: { timeoutSeconds: 10, retry: { maxAttempts: 5, initialDelaySeconds: 1, maxDelaySeconds: 60 }, webhooks: [] },
      },
      // Evidence log: key file created in dataDir at first start unless signingKey names one.
      evidence: {
        origin: 'custodian.local/evidence',
        path: 'evidence.sqlite',
        store: { kind: 'sqlite' },
        previousKeys: [],
        checkpoint: { everyEvents: 1000, everySeconds: 60, maxDelaySeconds: 300 },
        witnesses: [],
        auditorGroups: ['auditors'],
        maskingRules: [],
      },
      // Shared gateway settings; the PostgreSQL, MCP, Kubernetes and SSH listeners are off until enabled; loopback, TLS required off loopback.
      gateways: {
        approvalWaitSeconds: 300,
        maxFrameBytes: 65536,
        postgres: { enabled: false, listen: { host: '127.0.0.1', port: 7432 }, requireTls: 'non-loopback', maxMessageBytes: 16777216, connections: [] },
        mcp: { enabled: false, listen: { host: '127.0.0.1', port: 7480 }, maxMessageBytes: 4194304, keepAliveSeconds: 15, idleTimeoutSeconds: 1800, structuredMaskingConflict: 'placeholder', connections: [] },
        kubernetes: { enabled: false, listen: { host: '127.0.0.1', port: 7443 }, maxMessageBytes: 1048576, maskingIdleFlushMs: 100, unverifiableLines: 'agent-refuses', clusters: [] },
        ssh: { enabled: false, listen: { host: '127.0.0.1', port: 2222 }, unverifiableLines: 'agent-refuses', loginTimeoutMs: 30000, maxChannels: 10, connections: [] },
        http: { enabled: false, listen: { host: '127.0.0.1', port: 7490 }, http2: false, maxHeaderBytes: 16384, headersTimeoutMs: 10000, connections: [] },
      },
    });
  });

  it('a Kafka bus gets producer, consumer and topic defaults; single-broker overrides come from the environment', () => {
    const { config } = loadConfig({
      cwd: dir,
      env: { CUSTODIAN_BUS__KIND: 'kafka', CUSTODIAN_BUS__BROKERS: '127.0.0.1:9092', CUSTODIAN_BUS__CLIENT_ID: 'gw-1', CUSTODIAN_BUS__TOPICS__REPLICATION_FACTOR: '1' },
    });
    expect(config.bus).toEqual({
      kind: 'kafka',
      brokers: ['127.0.0.1:9092'],
      clientId: 'gw-1',
      ssl: false,
      topics: { create: true, replicationFactor: 1 },
      producer: { compression: 'gzip', lingerMs: 5, maxBatchBytes: 1048576 },
      consumer: { groupId: 'custodian-ingest', sessionTimeoutMs: 10000 },
    });
  });

  it('an identity issuer is validated: asymmetric algorithms only, bounded lifetime', () => {
    const ok = writeConfig('issuer.yaml', 'identity:\n  issuers:\n    - issuer: https://idp.example\n      audiences: [custodian]\n');
    const issuer = loadConfig({ file: ok, env: {}, cwd: dir }).config.identity.issuers[0];
    expect(issuer).toMatchObject({ issuer: 'https://idp.example', algorithms: ['RS256', 'ES256', 'EdDSA', 'PS256'], maxTokenLifetimeSeconds: 3600 });
    const hs = writeConfig('hs.yaml', 'identity:\n  issuers:\n    - issuer: https://idp.example\n      audiences: [custodian]\n      algorithms: [HS256]\n');
    expect(() => loadConfig({ file: hs, env: {}, cwd: dir })).toThrow(/identity\.issuers\.0\.algorithms\.0/);
    const secret = writeConfig('inline-secret.yaml', 'identity:\n  login:\n    issuer: https://idp.example\n    clientId: dash\n    redirectUri: https://custodian.example/cb\n    clientSecret: hunter2-inline\n');
    let message = '';
    try {
      loadConfig({ file: secret, env: {}, cwd: dir });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/identity\.login\.clientSecret/);
    expect(message).not.toContain('hunter2-inline');
  });

  it('an empty file is valid and partial sections are completed from defaults', () => {
    const file = writeConfig('partial.yaml', 'services:\n  api:\n    http:\n      port: 9000\n');
    const { config } = loadConfig({ file, env: {}, cwd: dir });
    expect(config.services.api.http).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(config.services.gateway.enabled).toBe(true);
    expect(loadConfig({ file: writeConfig('empty.yaml', ''), env: {}, cwd: dir }).config.deployment).toBe('embedded');
  });

  it('CUSTODIAN_CONFIG names the file when none is passed', () => {
    const file = writeConfig('via-env.yaml', 'log:\n  level: debug\n');
    expect(loadConfig({ env: { CUSTODIAN_CONFIG: file }, cwd: dir }).config.log.level).toBe('debug');
  });
});

describe('a valid distributed config', () => {
  it('loads Kafka and EventStoreDB with secret references', () => {
    const file = writeConfig(
      'distributed.yaml',
      [
        'deployment: distributed',
        'eventStore:',
        '  kind: eventstoredb',
        '  connectionString: { fromEnv: ESDB_URL }',
        'bus:',
        '  kind: kafka',
        '  brokers: [kafka:9092]',
        '  clientId: custodian-gateway',
        '  sasl: { mechanism: scram-sha-512, username: custodian, password: { fromFile: kafka.pass } }',
        'services:',
        '  gateway: { http: { host: 0.0.0.0, port: 8400 } }',
      ].join('\n'),
    );
    const { config, baseDir } = loadConfig({ file, env: {}, cwd: '/' });
    expect(baseDir).toBe(dir);
    expect(config.eventStore).toEqual({ kind: 'eventstoredb', connectionString: { fromEnv: 'ESDB_URL' } });
    expect(config.bus).toEqual({
      kind: 'kafka',
      brokers: ['kafka:9092'],
      clientId: 'custodian-gateway',
      ssl: false,
      sasl: { mechanism: 'scram-sha-512', username: 'custodian', password: { fromFile: 'kafka.pass' } },
      topics: { create: true },
      producer: { compression: 'gzip', lingerMs: 5, maxBatchBytes: 1048576 },
      consumer: { groupId: 'custodian-ingest', sessionTimeoutMs: 10000 },
    });
    expect(config.services.gateway.http).toEqual({ host: '0.0.0.0', port: 8400 });
  });
});

describe('validation errors name the file, the key and the line', () => {
  it('an unknown key', () => {
    const file = writeConfig('typo.yaml', ['log:', '  level: info', 'services:', '  api:', '    http:', '      prot: 9000', ''].join('\n'));
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`${file}:6:7`);
    expect(err.message).toContain('services.api.http.prot');
    expect(err.message).toContain('/services/api/http/prot');
    expect(err.issues[0]).toMatchObject({ path: 'services.api.http.prot', source: { kind: 'file', file, line: 6 } });
  });

  it('a gateway setting under its old key (gateways.postgres.policyFile) says where it moved', () => {
    const file = writeConfig('moved.yaml', ['gateways:', '  postgres:', '    enabled: true', '    policyFile: policy.yaml', ''].join('\n'));
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.issues).toEqual([expect.objectContaining({ path: 'gateways.postgres.policyFile', message: 'has moved: set gateways.policyFile instead', source: expect.objectContaining({ file, line: 4 }) })]);
    expect(err.message).toContain(`${file}:4:5`);
    const shared = writeConfig('shared.yaml', ['gateways:', '  policyFile: policy.yaml', '  audiences: [urn:custodian:gw]', '  postgres: { enabled: true, audiences: [urn:custodian:pg] }', ''].join('\n'));
    const { config } = loadConfig({ file: shared, env: { CUSTODIAN_GATEWAYS__APPROVAL_WAIT_SECONDS: '60' }, cwd: dir });
    expect(config.gateways).toMatchObject({ policyFile: 'policy.yaml', audiences: ['urn:custodian:gw'], approvalWaitSeconds: 60, postgres: { enabled: true, audiences: ['urn:custodian:pg'] } });
  });

  it('a value of the wrong type and an unknown enum value, all reported', () => {
    const file = writeConfig('types.yaml', ['deployment: cluster', 'services:', '  gateway:', '    http: { port: "eighty" }', ''].join('\n'));
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    const byPath = new Map(err.issues.map((i) => [i.path, i]));
    expect(byPath.get('deployment')).toMatchObject({ message: 'must be one of: "embedded", "distributed"', source: { line: 1 } });
    expect(byPath.get('services.gateway.http.port')).toMatchObject({ message: 'must be integer', source: { line: 4 } });
  });

  it('an unknown kind names the allowed kinds', () => {
    const file = writeConfig('kind.yaml', 'eventStore:\n  kind: mysql\n');
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.issues).toEqual([
      expect.objectContaining({ path: 'eventStore.kind', message: 'must be one of: sqlite, eventstoredb, postgres', source: expect.objectContaining({ line: 2 }) }),
    ]);
  });

  it('a YAML syntax error gives the line without quoting the source', () => {
    const file = writeConfig('syntax.yaml', ['log:', '  level: info', ' bad: "hunter2-in-the-source', ''].join('\n'));
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.code).toBe('CONFIG_YAML_SYNTAX');
    expect(err.message).toContain(file);
    expect(err.issues[0]?.source).toMatchObject({ kind: 'file', line: 3 });
    expect(err.message).not.toContain('hunter2');
  });

  it('a missing file', () => {
    const err = configError(() => loadConfig({ file: join(dir, 'nope.yaml'), env: {}, cwd: dir }));
    expect(err.code).toBe('CONFIG_FILE_UNREADABLE');
    expect(err.message).toContain('nope.yaml');
  });
});

describe('environment overrides CUSTODIAN_<SECTION>__<KEY>', () => {
  it('override file values with schema-typed values', () => {
    const file = writeConfig('env.yaml', 'services:\n  api:\n    http: { port: 9000 }\n');
    const { config, overriddenBy } = loadConfig({
      file,
      cwd: dir,
      env: {
        CUSTODIAN_SERVICES__API__HTTP__PORT: '9100',
        CUSTODIAN_SERVICES__INGEST__ENABLED: 'false',
        CUSTODIAN_LOG__LEVEL: 'warn',
        CUSTODIAN_DEPLOYMENT: 'distributed',
        CUSTODIAN_BUS__KIND: 'kafka',
        CUSTODIAN_BUS__BROKERS: 'kafka-1:9092, kafka-2:9092',
        CUSTODIAN_BUS__CLIENT_ID: 'custodian',
        PATH: '/usr/bin',
      },
    });
    expect(config.services.api.http.port).toBe(9100);
    expect(config.services.ingest.enabled).toBe(false);
    expect(config.log.level).toBe('warn');
    expect(config.deployment).toBe('distributed');
    expect(config.bus).toMatchObject({ kind: 'kafka', brokers: ['kafka-1:9092', 'kafka-2:9092'], clientId: 'custodian', ssl: false });
    expect(overriddenBy).toContain('CUSTODIAN_SERVICES__API__HTTP__PORT');
  });

  it('switching a kind replaces the section instead of inheriting keys of the old kind', () => {
    const { config } = loadConfig({
      cwd: dir,
      env: { CUSTODIAN_EVENT_STORE__KIND: 'eventstoredb', CUSTODIAN_EVENT_STORE__CONNECTION_STRING__FROM_ENV: 'ESDB_URL' },
    });
    expect(config.eventStore).toEqual({ kind: 'eventstoredb', connectionString: { fromEnv: 'ESDB_URL' } });
  });

  it('an overridden value is validated like the file and blamed on the variable', () => {
    const err = configError(() => loadConfig({ cwd: dir, env: { CUSTODIAN_SERVICES__API__HTTP__PORT: '70000' } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('environment variable CUSTODIAN_SERVICES__API__HTTP__PORT');
    expect(err.issues[0]).toMatchObject({ path: 'services.api.http.port', message: 'must be <= 65535' });
  });

  it('a missing key after a kind switch is blamed on the variable that switched it', () => {
    const err = configError(() => loadConfig({ cwd: dir, env: { CUSTODIAN_EVENT_STORE__KIND: 'eventstoredb' } }));
    expect(err.issues[0]).toMatchObject({ path: 'eventStore.connectionString', message: 'is required', source: { kind: 'env', variable: 'CUSTODIAN_EVENT_STORE__KIND' } });
  });

  it('an override naming an unknown key is an error; other CUSTODIAN_* variables are not overrides', () => {
    const err = configError(() =>
      loadConfig({ cwd: dir, env: { CUSTODIAN_SERVICES__API__HTTP__PROT: '1', CUSTODIAN_LOGG__LEVEL: 'debug', CUSTODIAN_ROOT: '/x', CUSTODIAN_PG_BIN_DIR: '/y' } }),
    );
    expect(err.code).toBe('CONFIG_UNKNOWN_OVERRIDE');
    expect(err.issues.map((i) => i.source)).toEqual([
      { kind: 'env', variable: 'CUSTODIAN_LOGG__LEVEL' },
      { kind: 'env', variable: 'CUSTODIAN_SERVICES__API__HTTP__PROT' },
    ]);
    expect(err.message).toContain('unknown key PROT under services.api.http (known: HOST, PORT)');
  });

  it('a variable naming a whole section is rejected', () => {
    const err = configError(() => loadConfig({ cwd: dir, env: { CUSTODIAN_LOG: 'debug' } }));
    expect(err.message).toContain('CUSTODIAN_LOG__<KEY>');
  });

  it('isAcceptedEnvVariable classifies names', () => {
    expect(isAcceptedEnvVariable('CUSTODIAN_EVENT_STORE__CONNECTION_STRING__FROM_ENV')).toBe(true);
    expect(isAcceptedEnvVariable('CUSTODIAN_CONFIG')).toBe(true);
    expect(isAcceptedEnvVariable('CUSTODIAN_BUS__BROKERS')).toBe(true);
    expect(isAcceptedEnvVariable('CUSTODIAN_BUS__BROKER')).toBe(false);
    expect(isAcceptedEnvVariable('CUSTODIAN_EVENTSTORE__KIND')).toBe(false);
    expect(isAcceptedEnvVariable('CUSTODIAN_SERVICES')).toBe(false);
  });
});

describe('secrets', () => {
  const password = 'S3cr3t-Pa55w0rd-do-not-print';

  it('an inline connection string with a password is refused, and the password is not echoed', () => {
    const file = writeConfig('inline.yaml', `eventStore:\n  kind: eventstoredb\n  connectionString: esdb://admin:${password}@db:2113?tls=false\n`);
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.issues).toEqual([expect.objectContaining({ path: 'eventStore.connectionString', source: expect.objectContaining({ line: 3 }) })]);
    expect(err.message).toContain('secret reference');
    expect(JSON.stringify(err.issues) + err.message + String(err.stack)).not.toContain(password);
  });

  it('an inline password given through the environment is refused without echoing it', () => {
    const err = configError(() =>
      loadConfig({ cwd: dir, env: { CUSTODIAN_EVENT_STORE__KIND: 'eventstoredb', CUSTODIAN_EVENT_STORE__CONNECTION_STRING: `esdb://admin:${password}@db:2113` } }),
    );
    expect(err.message).toContain('CUSTODIAN_EVENT_STORE__CONNECTION_STRING');
    expect(err.message).not.toContain(password);
  });

  it('references resolve from the environment and from files relative to the config file', () => {
    writeFileSync(join(dir, 'esdb.secret'), `esdb://admin:${password}@db:2113\n`);
    const file = writeConfig(
      'refs.yaml',
      'deployment: distributed\neventStore: { kind: eventstoredb, connectionString: { fromFile: esdb.secret } }\nbus: { kind: kafka, brokers: ["k:9092"], clientId: c, sasl: { mechanism: plain, username: u, password: { fromEnv: KAFKA_PASSWORD } } }\n',
    );
    const loaded = loadConfig({ file, env: {}, cwd: '/' });
    const { config } = loaded;
    if (config.eventStore.kind !== 'eventstoredb' || config.bus.kind !== 'kafka' || !config.bus.sasl) throw new Error('unexpected config shape');
    expect(resolveSecret(config.eventStore.connectionString, { baseDir: loaded.baseDir })).toBe(`esdb://admin:${password}@db:2113`);
    expect(resolveSecret(config.bus.sasl.password, { env: { KAFKA_PASSWORD: password } })).toBe(password);
  });

  it('an unresolvable reference names the variable or file, never content', () => {
    const missingEnv = configError(() => resolveSecret({ fromEnv: 'NOT_SET_ANYWHERE' }, { env: {} }));
    expect(missingEnv.code).toBe('CONFIG_SECRET_UNRESOLVED');
    expect(missingEnv.message).toContain('NOT_SET_ANYWHERE');
    const missingFile = configError(() => resolveSecret({ fromFile: 'absent.secret' }, { baseDir: dir }));
    expect(missingFile.message).toContain(join(dir, 'absent.secret'));
    expect(missingFile.message).toContain('ENOENT');
  });

  it('a config error elsewhere never prints the secret a reference points to', () => {
    const file = writeConfig('other-error.yaml', 'eventStore: { kind: eventstoredb, connectionString: { fromEnv: ESDB_URL } }\nlog: { level: loud }\n');
    const err = configError(() => loadConfig({ file, env: { ESDB_URL: `esdb://admin:${password}@db:2113` }, cwd: dir }));
    expect(err.issues.map((i) => i.path)).toEqual(['log.level']);
    expect(err.message).not.toContain(password);
  });

  it('redactConfig keeps references and hides inline secret-bearing values', () => {
    const withRef = loadConfig({ cwd: dir, env: { CUSTODIAN_EVENT_STORE__KIND: 'eventstoredb', CUSTODIAN_EVENT_STORE__CONNECTION_STRING__FROM_ENV: 'ESDB_URL' } });
    expect(redactConfig(withRef.config).eventStore).toEqual({ kind: 'eventstoredb', connectionString: { fromEnv: 'ESDB_URL' } });
    const inline = loadConfig({ cwd: dir, env: { CUSTODIAN_EVENT_STORE__KIND: 'eventstoredb', CUSTODIAN_EVENT_STORE__CONNECTION_STRING: 'esdb://db:2113?tls=false' } });
    expect(redactConfig(inline.config).eventStore).toEqual({ kind: 'eventstoredb', connectionString: '[redacted]' });
    expect(inline.config.eventStore).toEqual({ kind: 'eventstoredb', connectionString: 'esdb://db:2113?tls=false' });
  });
});

describe('parseConfig', () => {
  it('accepts text and rejects a document that is not a mapping', () => {
    expect(parseConfig('log: { level: error }', { env: {}, cwd: dir }).config.log.level).toBe('error');
    const err = configError(() => parseConfig('- a\n- b\n', { env: {}, cwd: dir, file: '/etc/custodian.yaml' }));
    expect(err.message).toContain('/etc/custodian.yaml:1:1');
  });
});

describe('issueAt: errors found after loading name file, line and key', () => {
  it('points at the key in the file, at an environment override, or at a default', () => {
    const file = writeConfig('issue-at.yaml', 'dataDir: data\ngateways:\n  ssh:\n    enabled: true\n    hostKey: { fromEnv: GW_HOST_KEY }\n');
    const loaded = loadConfig({ file, env: { CUSTODIAN_GATEWAYS__SSH__LISTEN__PORT: '2022' }, cwd: dir });
    const issue = loaded.issueAt('gateways.ssh.hostKey', 'is not a usable SSH private key');
    expect(issue.source).toEqual({ kind: 'file', file, line: 5, column: 5 });
    expect(new ConfigError('CONFIG_SECRET_UNRESOLVED', 'the SSH gateway cannot start', [issue]).message).toContain(`${file}:5:5: gateways.ssh.hostKey (/gateways/ssh/hostKey) is not a usable SSH private key`);
    expect(loaded.issueAt('gateways.ssh.listen.port', 'x').source).toEqual({ kind: 'env', variable: 'CUSTODIAN_GATEWAYS__SSH__LISTEN__PORT' });
    expect(loaded.issueAt('gateways.postgres.listen.port', 'x').source.kind).not.toBe('env');
  });
});

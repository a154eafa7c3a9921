import { execFileSync } from 'node:child_process';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

// The Nx lint rule reads the cached project graph (package.json `nx.tags`) and skips itself when
// there is none, so compute it first (as scripts/lint.sh does). These cases prove the tags and
// constraints in eslint.config.mjs are real: a forbidden import is a lint error.
process.env.NX_DAEMON = 'false';

let eslint: ESLint;
beforeAll(() => {
  execFileSync('npx', ['nx', 'show', 'projects'], { stdio: 'ignore', env: { ...process.env, NX_NO_CLOUD: 'true' } });
  eslint = new ESLint({ cwd: process.cwd() });
}, 120_000);

async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
}

describe('module boundaries', () => {
  it.each([
    ['a platform lib importing a service', 'libs/platform/observability/src/probe.ts', '@custodian/gateway-service'],
    ['a port importing an adapter', 'libs/events/event-store/src/probe.ts', '@custodian/event-store-sqlite'],
    ['a contract importing a platform lib', 'libs/events/event-contracts/src/probe.ts', '@custodian/observability'],
    ['a service importing another service', 'services/gateway/src/probe.ts', '@custodian/api-service'],
    ['production code importing the test harness', 'services/api/src/probe.ts', '@custodian/test-harness'],
    ['the service host importing a service', 'libs/platform/service-host/src/probe.ts', '@custodian/gateway-service'],
    ['a domain lib importing an adapter', 'libs/decisions/masking/src/probe.ts', '@custodian/event-store-sqlite'],
    // The session pipeline knows no command language and no protocol.
    ['the session pipeline importing the SQL classifier', 'libs/gateway/session-pipeline/src/probe.ts', '@custodian/sql-classification'],
    ['the session pipeline importing the shell classifier', 'libs/gateway/session-pipeline/src/probe.ts', '@custodian/shell-classification'],
    ['the session pipeline importing the policy language plugins', 'libs/gateway/session-pipeline/src/probe.ts', '@custodian/policy-languages'],
    ['the session pipeline importing a protocol codec', 'libs/gateway/session-pipeline/src/probe.ts', '@custodian/postgres-wire'],
    ['the session pipeline importing a protocol gateway', 'libs/gateway/session-pipeline/src/probe.ts', '@custodian/postgres-gateway'],
  ])('forbids %s', async (_case, file, target) => {
    const errors = await boundaryErrors(file, `import * as m from '${target}';\nexport const probe = m;\n`);
    expect(errors.length).toBeGreaterThan(0);
  });

  it.each([
    ['an adapter importing its port', 'libs/events/event-store-sqlite/src/probe.ts', '@custodian/event-store'],
    ['a service importing an adapter', 'services/api/src/probe.ts', '@custodian/event-store-sqlite'],
    ['a service importing the service host', 'services/api/src/probe.ts', '@custodian/service-host'],
    ['the launcher importing a service', 'services/cli/src/probe.ts', '@custodian/gateway-service'],
    ['a test importing the test harness', 'services/api/src/probe.test.ts', '@custodian/test-harness'],
    ['the session pipeline importing the policy engine', 'libs/gateway/session-pipeline/src/probe.ts', '@custodian/policy'],
    ['a protocol gateway importing the policy language plugins', 'libs/protocols/postgres-gateway/src/probe.ts', '@custodian/policy-languages'],
  ])('allows %s', async (_case, file, target) => {
    expect(await boundaryErrors(file, `import * as m from '${target}';\nexport const probe = m;\n`)).toEqual([]);
  });
});

import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// One runner for the whole repo. SWC compiles TypeScript so that NestJS decorator
// metadata (emitDecoratorMetadata) is present in tests, as it is in the tsc build.
const TEST_FILES = ['libs/*/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'scripts/**/*.test.ts', 'bench/**/*.test.ts', 'schemas/**/*.test.ts'];
const EXCLUDED = ['**/node_modules/**', '**/dist/**'];

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  resolve: {
    // Workspace packages resolve to their TypeScript sources in tests (see package.json exports).
    conditions: ['@custodian/source'],
  },
  ssr: {
    resolve: { conditions: ['@custodian/source'], externalConditions: ['@custodian/source'] },
  },
  test: {
    // Two lanes (README "Working on it"): `unit` runs in-process (parsers, codecs, SQLite files);
    // `integration` (`*.int.test.ts`) starts real servers, clients or tools (PostgreSQL, Kafka,
    // sshd, the OIDC provider, psql, cosign, Go). `vitest run` runs both; `--project` picks one.
    projects: [
      { extends: true, test: { name: 'unit', include: TEST_FILES, exclude: [...EXCLUDED, '**/*.int.test.ts'] } },
      // Real servers on a shared 2-core machine: a failed integration test runs once more, and
      // scripts/test-summary.ts names every test that passed only on its retry, so none is hidden.
      { extends: true, test: { name: 'integration', include: TEST_FILES.map((glob) => glob.replace(/\.test\.ts$/, '.int.test.ts')), exclude: EXCLUDED, retry: 1 } },
    ],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Integration tests start real servers; two cores, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});

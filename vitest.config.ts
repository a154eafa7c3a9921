import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// One runner for the whole repo. SWC compiles TypeScript so that NestJS decorator
// metadata (emitDecoratorMetadata) is present in tests, as it is in the tsc build.
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
    include: ['libs/*/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'scripts/**/*.test.ts', 'bench/**/*.test.ts', 'schemas/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Integration tests start real servers; two cores, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});

import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Module boundaries (docs/architecture.md#module-boundaries). Two tag dimensions:
//   type: what a project is — launcher > app > adapter > domain > port > contract; platform is cross-cutting; testing is test-only.
//   scope: which deployable it belongs to — shared code may not reach into a service.
const typeConstraints = [
  { sourceTag: 'type:launcher', onlyDependOnLibsWithTags: ['type:app', 'type:host', 'type:adapter', 'type:domain', 'type:port', 'type:contract', 'type:platform'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:host', 'type:adapter', 'type:domain', 'type:port', 'type:contract', 'type:platform'] },
  // A host is a composition root: it picks adapters from configuration.
  { sourceTag: 'type:host', onlyDependOnLibsWithTags: ['type:adapter', 'type:domain', 'type:port', 'type:contract', 'type:platform'] },
  { sourceTag: 'type:adapter', onlyDependOnLibsWithTags: ['type:domain', 'type:port', 'type:contract', 'type:platform'] },
  { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain', 'type:port', 'type:contract'] },
  { sourceTag: 'type:port', onlyDependOnLibsWithTags: ['type:contract'] },
  { sourceTag: 'type:contract', onlyDependOnLibsWithTags: ['type:contract'] },
  { sourceTag: 'type:platform', onlyDependOnLibsWithTags: ['type:contract', 'type:platform'] },
  // Test-only libraries (harness, contract and conformance suites) run real domain libraries and adapters.
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:testing', 'type:adapter', 'type:domain', 'type:port', 'type:contract', 'type:platform'] },
];
// The session pipeline knows no protocol and no command language (issue 21): it may not depend,
// directly or through another library, on a classifier (`kind:classifier`: the SQL and shell
// parsers, the policy language plugins) or a protocol library (`kind:protocol`). Nx checks
// notDependOnLibsWithTags over the whole dependency tree.
const kindConstraints = [{ sourceTag: 'kind:pipeline', notDependOnLibsWithTags: ['kind:classifier', 'kind:protocol'] }];
const scopeConstraints = [
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:testing', onlyDependOnLibsWithTags: ['scope:testing', 'scope:shared'] },
  { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:gateway', 'scope:shared'] },
  { sourceTag: 'scope:ingest', onlyDependOnLibsWithTags: ['scope:ingest', 'scope:shared'] },
  { sourceTag: 'scope:projector', onlyDependOnLibsWithTags: ['scope:projector', 'scope:shared'] },
  { sourceTag: 'scope:api', onlyDependOnLibsWithTags: ['scope:api', 'scope:shared'] },
  { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['scope:cli', 'scope:shared', 'scope:gateway', 'scope:ingest', 'scope:projector', 'scope:api'] },
];

/** Tests may additionally use the test harness and the adapters they exercise. */
const withTesting = (constraints) =>
  constraints.map((c) => ({
    ...c,
    onlyDependOnLibsWithTags: [...new Set([...c.onlyDependOnLibsWithTags, 'type:testing', 'scope:testing', 'type:adapter'])],
  }));

const boundaries = (constraints) => ({
  '@nx/enforce-module-boundaries': [
    'error',
    { enforceBuildableLibDependency: false, allow: [], depConstraints: constraints, checkDynamicDependenciesExceptions: [] },
  ],
});

const testFiles = ['**/*.test.ts', '**/testing/**/*.ts', 'bench/**/*.ts'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.tools/**', '.nx/**', '**/generated/**', '.custodian/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { plugins: { '@nx': nx } },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/utils', '**/utils/*', '**/helpers'], message: 'Name modules for what they are; no utils dumping ground.' }] }],
    },
  },
  {
    files: ['**/*.ts'],
    ignores: testFiles,
    rules: boundaries([...typeConstraints, ...scopeConstraints, ...kindConstraints]),
  },
  {
    files: testFiles,
    rules: boundaries(withTesting([...typeConstraints, ...scopeConstraints])),
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);

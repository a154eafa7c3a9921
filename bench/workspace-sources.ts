// Lets plain `node` run the workspace's TypeScript sources, compiled the way the tests compile them
// (SWC, as in vitest.config.ts), so a benchmark always measures the working tree and needs no build:
// - workspace packages resolve to `src/` through their `@custodian/source` export condition;
// - NodeNext-style `./x.js` specifiers find `./x.ts`;
// - SWC compiles what Node's type stripping cannot run (parameter properties, enums, and the
//   decorators with metadata that the NestJS services will bring when the gateway is benchmarked).
import { readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';
import { transformSync } from '@swc/core';

const SOURCE_CONDITION = '@custodian/source';
const REPO_ROOT_URL = new URL('../', import.meta.url).href;

function isWorkspaceTypeScript(url: string): boolean {
  return url.startsWith(REPO_ROOT_URL) && url.endsWith('.ts') && !url.includes('/node_modules/');
}

function compile(url: string): string {
  const filename = fileURLToPath(url);
  return transformSync(readFileSync(filename, 'utf8'), {
    filename,
    swcrc: false,
    configFile: false,
    sourceMaps: 'inline',
    module: { type: 'es6' },
    jsc: {
      target: 'es2022',
      keepClassNames: true,
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
    },
  }).code;
}

let registered = false;

/** Installs the resolve/load hooks for this process. Import workspace code only afterwards (dynamic `import()`). */
export function registerWorkspaceSources(): void {
  if (registered) return;
  registered = true;
  process.setSourceMapsEnabled(true);
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const conditions = context.conditions.includes(SOURCE_CONDITION) ? context.conditions : [...context.conditions, SOURCE_CONDITION];
      const withSources = { ...context, conditions };
      try {
        return nextResolve(specifier, withSources);
      } catch (error) {
        const fromWorkspaceSource = context.parentURL !== undefined && isWorkspaceTypeScript(context.parentURL);
        if (fromWorkspaceSource && specifier.startsWith('.') && specifier.endsWith('.js')) {
          return nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, withSources);
        }
        throw error;
      }
    },
    load(url, context, nextLoad) {
      if (!isWorkspaceTypeScript(url)) return nextLoad(url, context);
      return { format: 'module', source: compile(url), shortCircuit: true };
    },
  });
}

// Loaded with `--import` into a worker thread started from the TypeScript sources (tests, the
// benchmarks): Node strips the types itself (`--experimental-transform-types`, which also runs
// parameter properties and enums) and the `@custodian/source` condition maps workspace packages to
// their sources, but NodeNext-style relative specifiers (`./x.js`) name files that only exist in
// dist. This hook retries such a specifier as `./x.ts` when it comes from a workspace source file.
// From dist (production) the worker starts without it. Only `node:` imports here: this file runs
// before any resolution help exists.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      const parent = context.parentURL;
      const fromSource = parent !== undefined && parent.endsWith('.ts') && !parent.includes('/node_modules/');
      if (fromSource && specifier.startsWith('.') && specifier.endsWith('.js')) return nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, context);
      throw error;
    }
  },
});

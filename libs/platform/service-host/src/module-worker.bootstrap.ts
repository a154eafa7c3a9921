// The entry point of a worker started by startModuleWorker from sources (see module-worker.ts).
// Loaded by Node's own type stripping, so it imports only `node:` built-ins (and SWC, lazily, by require) and uses only
// erasable TypeScript. It installs, for this thread only:
// - resolve: the `@custodian/source` export condition (workspace packages → their src/), and
//   `./x.js` → `./x.ts` for specifiers written in workspace sources;
// - load: workspace TypeScript compiled as the tests and benchmarks compile it: by SWC (a dev
//   dependency, present wherever sources run), with decorators and their metadata, so Nest
//   modules run in such a worker too (the embedded host's services thread); without SWC, by
//   Node's own transform (parameter properties and enums included, decorators not);
// then imports the entry named last in argv.
import { readFileSync } from 'node:fs';
import { createRequire, registerHooks, stripTypeScriptTypes } from 'node:module';
import { fileURLToPath } from 'node:url';

interface SwcTransform {
  transformSync(source: string, options: object): { code: string };
}

const SOURCE_CONDITION = '@custodian/source';

function isWorkspaceTypeScript(url: string): boolean {
  return url.startsWith('file:') && url.endsWith('.ts') && !url.endsWith('.d.ts') && !url.includes('/node_modules/');
}

const entry = process.argv.pop();
if (entry === undefined || !entry.startsWith('file:')) throw new Error(`module worker bootstrap: no entry module URL in argv (got ${String(entry)})`);

// The transform is marked experimental: say so once in the parent's log, not for every worker.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === 'string' ? warning : warning.message;
  if (text.includes('stripTypeScriptTypes')) return;
  (emitWarning as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

/** SWC when it can be loaded (a dev dependency: from sources it is installed), else undefined. */
function loadSwc(): SwcTransform | undefined {
  try {
    return createRequire(import.meta.url)('@swc/core') as SwcTransform;
  } catch {
    return undefined;
  }
}
const swc = loadSwc();

function compile(url: string): string {
  const filename = fileURLToPath(url);
  const text = readFileSync(filename, 'utf8');
  if (swc === undefined) return stripTypeScriptTypes(text, { mode: 'transform', sourceMap: true, sourceUrl: url });
  // The options of vitest.config.ts and bench/workspace-sources.ts: legacy decorators with metadata (NestJS).
  return swc.transformSync(text, {
    filename,
    swcrc: false,
    configFile: false,
    sourceMaps: 'inline',
    module: { type: 'es6' },
    jsc: { target: 'es2022', keepClassNames: true, parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true } },
  }).code;
}

process.setSourceMapsEnabled(true);
registerHooks({
  resolve(specifier, context, nextResolve) {
    const conditions = context.conditions.includes(SOURCE_CONDITION) ? context.conditions : [...context.conditions, SOURCE_CONDITION];
    const withSources = { ...context, conditions };
    try {
      return nextResolve(specifier, withSources);
    } catch (error) {
      if (context.parentURL !== undefined && isWorkspaceTypeScript(context.parentURL) && specifier.startsWith('.') && specifier.endsWith('.js')) {
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

await import(entry);

// Entry point of the benchmark suite: `npm run bench -- [--only <name>[,<name>]] [--quick] [--out <dir>]`
// (= `scripts/node24 node bench/run.ts …`). Installs the hooks that let Node run the workspace's
// TypeScript sources first, then loads everything else: static imports would be resolved before
// the hooks exist. See docs/benchmarks.md.
import { registerWorkspaceSources } from './workspace-sources.ts';

registerWorkspaceSources();
const { main } = await import('./runner.ts');
process.exitCode = await main(process.argv.slice(2));

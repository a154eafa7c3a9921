// Entry point of the `custodian` command (bin/custodian runs this with Node 24).
import 'reflect-metadata';
import { runCli } from './cli.js';

// Listen from the start, so a signal during start-up also stops cleanly once services are up.
const stopRequested = new Promise<string>((resolve) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      resolve(signal);
      // A second signal while stopping means "now".
      process.once(signal, () => process.exit(130));
    });
  }
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  waitForStop: () => stopRequested,
  isTerminal: () => process.stderr.isTTY === true,
});

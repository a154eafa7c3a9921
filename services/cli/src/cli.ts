import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { startDemoEnvironment, type DemoEnvironment } from '@custodian/demo-environment';
import { ConfigError, loadConfig, redactConfig, type LoadedConfig } from '@custodian/runtime-config';
import { runApprovalsCommand } from './approvals-command.js';
import { runMcpToolsCommand } from './mcp-tools-command.js';
import { runCompletionCommand } from './completion-command.js';
import { startEmbedded } from './embedded-host.js';
import { runEvidenceCommand, runLogCommand, verifyPack } from './evidence-command.js';
import { runPolicyCommand } from './policy-command.js';
import { runStoreCommand } from './store-command.js';
import { cliVersion } from './version.js';

export const USAGE = `Usage: custodian <command> [options]

Commands:
  start [--config FILE] [--demo] Run gateway, ingest, projector and api in one process
                                 (embedded deployment: SQLite event store in .custodian/,
                                 in-process bus; the gateway on its own thread). Stops cleanly
                                 on SIGTERM or Ctrl-C.
                                 --demo adds a demo database (PGlite), a development OIDC
                                 issuer and a sample policy behind the PostgreSQL gateway, and
                                 prints a psql line to try masking, a block and a held statement.
  config check [--config FILE]   Validate a configuration and print the effective config
                                 (defaults and CUSTODIAN_* overrides applied, secrets redacted).
  policy test FILE --identity SUB --connection NAME (--sql | --shell | --http | --mcp | --llm) …
                                 Decide one command under a policy file; prints decision,
                                 rule and reason (exit 0 allowed, 3 blocked or held for
                                 approval). \`custodian policy --help\` for all options.
  log verify [--config FILE]     Recompute the evidence Merkle log from the event store and check
                                 every signed checkpoint; names each tampered event and its position
                                 (exit 0 verified, 1 failed, 3 events not yet under a checkpoint).
  log keygen --origin NAME --out FILE
                                 Make an evidence log signing key; prints its vkey.
  evidence export --from T --to T [--identity S] [--connection N] [--control C] --out FILE
                                 Write a signed evidence pack (OSCAL, proofs, DSSE attestation).
  evidence verify FILE [--key VKEY] [--trust-pack-keys]
                                 Verify a pack offline (also: custodian verify FILE); exit 3
                                 when no key is pinned unless --trust-pack-keys.
                                 \`custodian log --help\`, \`custodian evidence --help\` for details.
  store copy --to-config FILE [--config FILE]
                                 Copy every event into another event store (e.g. the embedded
                                 SQLite store into PostgreSQL), in order, and compare both
                                 stores' Merkle leaves. \`custodian store --help\` for details.
  approvals list | show ID | approve ID -j TEXT | deny ID -j TEXT
                                 Held commands waiting for approval, through the API with
                                 your access token ($CUSTODIAN_TOKEN).
                                 \`custodian approvals --help\` for all options.
  mcp-tools list CONNECTION | accept CONNECTION TOOL -f FINGERPRINT -j TEXT
                                 MCP tool-definition pins; accept a changed (blocked)
                                 definition. \`custodian mcp-tools --help\`.
  completion bash                Print a bash completion script:
                                 source <(custodian completion bash)
  version                        Print the version.

Options:
  -c, --config FILE   YAML configuration file (default: $CUSTODIAN_CONFIG, else built-in defaults)
  -h, --help          Show this help
  -v, --version       Print the version

Environment overrides: CUSTODIAN_<SECTION>__<KEY>=value, e.g.
  CUSTODIAN_SERVICES__API__HTTP__PORT=8080  CUSTODIAN_LOG__LEVEL=debug
`;

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration (`policy test` adds 3: not allowed). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Resolves with the signal that asks `start` to stop. */
  readonly waitForStop: () => Promise<string>;
  /** Whether stderr is a terminal (progress bars are drawn only then). */
  readonly isTerminal?: () => boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'CLI_USAGE';
}

interface ParsedCommand {
  readonly command: readonly string[];
  readonly config: string | undefined;
  readonly help: boolean;
  readonly version: boolean;
  /** `start --demo`: bring up the demo target, issuer and policy. */
  readonly demo: boolean;
}

function parseCommand(argv: readonly string[]): ParsedCommand {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        demo: { type: 'boolean' },
      },
    });
    return { command: positionals, config: values.config, help: values.help ?? false, version: values.version ?? false, demo: values.demo ?? false };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function load(parsed: ParsedCommand, io: CliIo): LoadedConfig {
  return loadConfig({ file: parsed.config, env: io.env, cwd: io.cwd });
}

async function start(parsed: ParsedCommand, io: CliIo): Promise<number> {
  let loaded = load(parsed, io);
  let demo: DemoEnvironment | undefined;
  if (parsed.demo) {
    demo = await startDemoEnvironment({ dataDir: loaded.config.dataDir });
    loaded = { ...loaded, config: demo.apply(loaded.config) };
  }
  const { config } = loaded;
  // In the demo the screen is for what to do next: service logs go to a file in the data directory.
  let logFile: { path: string; stream: WriteStream } | undefined;
  if (demo) {
    const path = join(config.dataDir, 'logs', 'custodian.log');
    mkdirSync(dirname(path), { recursive: true });
    logFile = { path, stream: createWriteStream(path, { flags: 'a' }) };
  }
  let host: Awaited<ReturnType<typeof startEmbedded>>;
  try {
    host = await startEmbedded(loaded, logFile ? { logDestination: logFile.stream } : {});
  } catch (error) {
    await demo?.stop();
    logFile?.stream.end();
    throw error;
  }
  const store = config.eventStore.kind === 'sqlite' ? `sqlite ${config.eventStore.path}` : config.eventStore.kind === 'postgres' ? `postgres (schema ${config.eventStore.schema})` : 'eventstoredb';
  const width = Math.max(...host.services.map((s) => s.name.length));
  io.stderr(
    [
      `custodian ${cliVersion()} started (${config.deployment} deployment; event store: ${store}; bus: ${config.bus.kind})`,
      ...host.services.map((s) => `  ${s.name.padEnd(width)}  ${s.url}  (ready: ${s.url}/health/ready)`),
      ...host.notices.map((n) => `  note: ${n}`),
      ...(logFile ? [`  logs: ${logFile.path}`] : []),
      host.services.length === 0 ? '  no services enabled' : 'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  const api = host.services.find((s) => s.name === 'api');
  if (demo) io.stdout(`${await demo.instructions(config.gateways.postgres.listen, config.identity.login && api ? `${api.url}/` : undefined)}\n`);
  // A stop signal, or the host stopping itself (fail closed) because its services thread ended.
  const ended = await Promise.race([io.waitForStop().then((signal) => ({ signal })), host.failed.then((error) => ({ error }))]);
  if ('signal' in ended) io.stderr(`custodian: ${ended.signal} received, stopping\n`);
  else io.stderr(`custodian: ${ended.error.message}; stopped every service (fail closed)\n`);
  await host.stop();
  await demo?.stop();
  if (logFile) await new Promise<void>((resolve) => logFile.stream.end(resolve));
  io.stderr('custodian: stopped\n');
  return 'signal' in ended ? EXIT.ok : EXIT.failure;
}

function configCheck(parsed: ParsedCommand, io: CliIo): number {
  const loaded = load(parsed, io);
  io.stdout(stringify(redactConfig(loaded.config)));
  const overrides = loaded.overriddenBy.length > 0 ? `; overridden by ${loaded.overriddenBy.join(', ')}` : '';
  io.stderr(`custodian: config OK (${loaded.file ?? 'built-in defaults'}${overrides})\n`);
  return EXIT.ok;
}

/** Runs one CLI invocation; resolves with the exit code. Never prints secret values. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    // `policy` has options of its own; it parses them itself.
    if (argv[0] === 'policy') return await runPolicyCommand(argv.slice(1), io);
    if (argv[0] === 'approvals') return await runApprovalsCommand(argv.slice(1), io);
    if (argv[0] === 'mcp-tools') return await runMcpToolsCommand(argv.slice(1), io);
    if (argv[0] === 'log') return await runLogCommand(argv.slice(1), io);
    if (argv[0] === 'evidence') return await runEvidenceCommand(argv.slice(1), io);
    if (argv[0] === 'verify') return await verifyPack(argv.slice(1), io);
    if (argv[0] === 'store') return await runStoreCommand(argv.slice(1), io);
    if (argv[0] === 'completion') return runCompletionCommand(argv.slice(1), io, USAGE);
    const parsed = parseCommand(argv);
    const [command, sub, ...extra] = parsed.command;
    if (parsed.help || command === 'help') {
      io.stdout(USAGE);
      return EXIT.ok;
    }
    if (parsed.version || command === 'version') {
      io.stdout(`custodian ${cliVersion()}\n`);
      return EXIT.ok;
    }
    if (command === undefined) {
      io.stderr(USAGE);
      return EXIT.usage;
    }
    if (command === 'start' && sub === undefined) return await start(parsed, io);
    if (command === 'config' && sub === 'check' && extra.length === 0) return configCheck(parsed, io);
    throw new UsageError(`unknown command: ${parsed.command.join(' ')}`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`custodian: ${err.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      io.stderr(`custodian: ${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr(`custodian: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
    return EXIT.failure;
  }
}

// `custodian store copy`: moves an installation's events into another event store (typically the
// embedded SQLite store into the PostgreSQL one), in global order, exactly, and proves it.
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { AppendResult, EventStore, RecordedEvent } from '@custodian/event-store';
import { LEAF_FORMAT_ENVELOPE, eventLeafHash } from '@custodian/evidence';
import { loadConfig } from '@custodian/runtime-config';
import { openConfiguredEventStore } from '@custodian/service-host';
import type { CliIo } from './cli.js';

export const STORE_USAGE = `Usage: custodian store copy --to-config FILE [--config FILE]

  Copies every event of the event store named by --config (default: $CUSTODIAN_CONFIG, else the
  embedded SQLite store) into the event store named by --to-config, in global order, each event
  exactly as read (same id, stream and revision), then reads both stores back and compares the
  Merkle leaf of every event (the RFC 8785 canonical envelope the evidence log hashes).

  Safe to re-run: events already in the destination are recognised by their id and skipped. The
  destination must not hold other events (the evidence log's leaf order is the store's order).
  Stop the gateways writing to the source first; events appended during the copy are not copied.

  Exit codes: 0 copied and verified; 1 the copy or the comparison failed; 2 bad usage.
  After the copy, \`custodian log verify --config <destination config>\` recomputes the evidence
  log over the new store.
`;

class StoreUsageError extends Error {
  readonly code = 'STORE_USAGE';
}

/** Appends in flight at once: both stores commit queued appends in queue order, so order is kept. */
const IN_FLIGHT = 256;
/** Consecutive events of one stream go in one append, up to this many. */
const BATCH = 500;

interface Digest {
  count: number;
  readonly hash: ReturnType<typeof createHash>;
}

function leafDigest(): Digest {
  return { count: 0, hash: createHash('sha256') };
}

function addLeaf(digest: Digest, recorded: RecordedEvent): void {
  digest.count += 1;
  digest.hash.update(eventLeafHash(recorded.event, LEAF_FORMAT_ENVELOPE));
}

export async function runStoreCommand(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
      io.stdout(STORE_USAGE);
      return 0;
    }
    if (sub !== 'copy') throw new StoreUsageError(`unknown command: store ${sub}`);
    let values;
    try {
      ({ values } = parseArgs({ args: [...rest], strict: true, allowPositionals: false, options: { config: { type: 'string', short: 'c' }, 'to-config': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
    } catch (error) {
      throw new StoreUsageError((error as Error).message);
    }
    if (values.help) {
      io.stdout(STORE_USAGE);
      return 0;
    }
    if (!values['to-config']) throw new StoreUsageError('store copy needs --to-config FILE (the destination store)');
    const source = await openConfiguredEventStore(loadConfig({ file: values.config, env: io.env, cwd: io.cwd }));
    try {
      const destination = await openConfiguredEventStore(loadConfig({ file: values['to-config'], env: io.env, cwd: io.cwd }));
      try {
        return await copyAndVerify(source, destination, io);
      } finally {
        await destination.close();
      }
    } finally {
      await source.close();
    }
  } catch (error) {
    if (error instanceof StoreUsageError) {
      io.stderr(`custodian: ${error.message}\n\n${STORE_USAGE}`);
      return 2;
    }
    const code = (error as { code?: unknown }).code;
    io.stderr(`custodian: store copy failed: ${(error as Error).message}${typeof code === 'string' ? ` (${code})` : ''}\n`);
    return 1;
  }
}

async function copyAndVerify(source: EventStore, destination: EventStore, io: CliIo): Promise<number> {
  let copied = 0;
  let present = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const send = (batch: RecordedEvent[]): void => {
    const first = batch[0]!;
    const append = destination
      .append(first.stream, batch.map((r) => r.event), { expectedRevision: first.revision === 0 ? 'no-stream' : first.revision - 1 })
      .then((result: AppendResult) => {
        if (result.deduplicated) present += batch.length;
        else copied += batch.length;
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => inFlight.delete(append));
    inFlight.add(append);
  };
  let batch: RecordedEvent[] = [];
  for await (const recorded of source.readAll()) {
    if (failure) break;
    if (batch.length > 0 && (batch[0]!.stream !== recorded.stream || batch.length >= BATCH)) {
      send(batch);
      batch = [];
      while (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    batch.push(recorded);
  }
  if (batch.length > 0 && !failure) send(batch);
  await Promise.all(inFlight);
  if (failure) throw failure;
  io.stderr(`custodian: copied ${copied} events (${present} already in the destination); comparing both stores…\n`);

  const from = leafDigest();
  const to = leafDigest();
  for await (const recorded of source.readAll()) addLeaf(from, recorded);
  for await (const recorded of destination.readAll()) addLeaf(to, recorded);
  const fromHex = from.hash.digest('hex');
  const toHex = to.hash.digest('hex');
  io.stdout(`source:      ${from.count} events, leaf digest sha256:${fromHex}\ndestination: ${to.count} events, leaf digest sha256:${toHex}\n`);
  if (from.count !== to.count || fromHex !== toHex) {
    io.stderr(
      `custodian: the stores differ${to.count > from.count ? ' (the destination holds events the source does not: it was not empty, or the source was written during the copy)' : ''}\n`,
    );
    return 1;
  }
  io.stderr('custodian: the destination holds every event of the source, in the same order, byte for byte in canonical form\n');
  return 0;
}

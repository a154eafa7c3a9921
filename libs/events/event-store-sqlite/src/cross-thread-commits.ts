// Several SqliteEventStore instances on one database file in one process (the embedded host: one
// in the gateway's thread, one in the services thread) wake each other's live subscriptions when
// a commit wrote events, instead of waiting for their poll. Commits by other processes are still
// found by the poll (SqliteEventStoreOptions.pollIntervalMs).
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';

/** The channel of one database file: its resolved path, so that two spellings of it meet. */
function channelName(path: string): string {
  let resolved: string;
  try {
    resolved = realpathSync.native(path);
  } catch {
    resolved = resolve(path);
  }
  return `@custodian/event-store-sqlite/commits:${resolved}`;
}

/**
 * A BroadcastChannel per store instance, named after its database file. `committed()` sends one
 * message per committed group (not per event); a message from any other instance on the same file
 * in this process (any thread) calls `onCommit`. A channel never hears its own messages.
 */
export class CrossThreadCommits {
  readonly #channel: BroadcastChannel;

  constructor(path: string, onCommit: () => void) {
    this.#channel = new BroadcastChannel(channelName(path));
    this.#channel.onmessage = () => onCommit();
    // Listening must not keep a process (or thread) alive that has nothing else to do.
    this.#channel.unref();
  }

  committed(): void {
    this.#channel.postMessage(0);
  }

  close(): void {
    this.#channel.close();
  }
}

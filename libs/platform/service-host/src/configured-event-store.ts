// Opens the event store the configuration names: every service process and the CLI's embedded
// host is a composition root and needs exactly this.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventStore } from '@custodian/event-store';
import { EventStoreDbEventStore } from '@custodian/event-store-eventstoredb';
import { PostgresEventStore } from '@custodian/event-store-postgres';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { resolveSecret, type LoadedConfig } from '@custodian/runtime-config';

export async function openConfiguredEventStore(loaded: LoadedConfig): Promise<EventStore> {
  const settings = loaded.config.eventStore;
  if (settings.kind === 'sqlite') {
    mkdirSync(dirname(settings.path), { recursive: true });
    return SqliteEventStore.open({ path: settings.path });
  }
  // Resolved here, at the point of use, so the secret never sits in the config object.
  const connectionString = resolveSecret(settings.connectionString, { baseDir: loaded.baseDir });
  if (settings.kind === 'postgres') {
    return PostgresEventStore.open({
      connectionString,
      schema: settings.schema,
      migrate: settings.migrate,
      ...(settings.writerRole === undefined ? {} : { writerRole: settings.writerRole }),
    });
  }
  return EventStoreDbEventStore.open({ connectionString });
}

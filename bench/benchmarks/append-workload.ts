// The append workload shared by the event-store-append benchmark and its peak-RSS probe: one
// `session.opened` event per append, each on a fresh stream, and the raw better-sqlite3 baseline
// that writes the same JSON rows.
import { EventFactory, type CustodianEvent } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { sessionOpenedSpec } from './session-events.ts';

export interface SingleEventAppend {
  readonly stream: string;
  readonly event: CustodianEvent;
}

export function makeAppends(count: number, factory = new EventFactory({ service: 'gateway', instance: 'bench' })): SingleEventAppend[] {
  return Array.from({ length: count }, () => {
    const event = factory.create(sessionOpenedSpec());
    return { stream: event.stream, event };
  });
}

/** The physical baseline: a plain table in the same journal mode and durability as the store (WAL, synchronous=FULL). */
export class RawSqliteTable {
  private readonly db: Database;
  private readonly insertStatement: BetterSqlite3.Statement<[string]>;

  constructor(path: string) {
    this.db = new BetterSqlite3(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec('CREATE TABLE IF NOT EXISTS events (position INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL)');
    this.insertStatement = this.db.prepare('INSERT INTO events (json) VALUES (?)');
  }

  /** One autocommit INSERT, i.e. one transaction (and one WAL fsync) per row. */
  insert(json: string): void {
    this.insertStatement.run(json);
  }

  /** Many rows in one transaction (one fsync), as the store's group commit does. */
  insertMany(jsons: readonly string[]): void {
    this.db.transaction(() => {
      for (const json of jsons) this.insertStatement.run(json);
    })();
  }

  count(): number {
    return Number(this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM events').get()?.n);
  }

  close(): void {
    this.db.close();
  }
}

export async function appendSequentially(store: EventStore, appends: readonly SingleEventAppend[]): Promise<void> {
  for (const a of appends) await store.append(a.stream, [a.event], { expectedRevision: 'no-stream' });
}

/** `inFlight` appends issued together, the next group when they all resolved. */
export async function appendInGroups(store: EventStore, appends: readonly SingleEventAppend[], inFlight: number): Promise<void> {
  for (let i = 0; i < appends.length; i += inFlight) {
    await Promise.all(appends.slice(i, i + inFlight).map((a) => store.append(a.stream, [a.event], { expectedRevision: 'no-stream' })));
  }
}

/** Counts the store's rows on a separate connection (cheaper than reading every event back through validation). */
export function countStoredEvents(path: string): number {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return Number(db.prepare<[], { n: number }>('SELECT count(*) AS n FROM events').get()?.n);
  } finally {
    db.close();
  }
}

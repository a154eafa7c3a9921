// The demo target: PGlite (PostgreSQL compiled to WebAssembly) served on the wire protocol on
// loopback behind a password (SCRAM-SHA-256), seeded with a small shop. Nothing to install; it
// lives in memory and is gone on stop.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { DemoEnvironmentError } from './dev-oidc-issuer.js';
import { startPasswordFront } from './password-front.js';

export const DEMO_SEED_SQL = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, country text, notes text);
INSERT INTO customers VALUES
  (1, 'Ada Lovelace', 'ada@analytical.example', 'GB', 'VIP; prefers invoices by e-mail'),
  (2, 'Grace Hopper', 'grace@navy.example', 'US', 'paid with card 4111 1111 1111 1111 last time'),
  (3, 'Alan Turing', 'alan@bletchley.example', 'GB', 'backup contact: turing.backup@bletchley.example'),
  (4, 'Katherine Johnson', 'katherine@nasa.example', 'US', NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2), status text);
INSERT INTO orders VALUES (101, 1, 120.00, 'shipped'), (102, 2, 80.50, 'pending'), (103, 3, 42.00, 'pending'), (104, 1, 9.99, 'cancelled');
`;

export interface DemoDatabase {
  readonly host: string;
  /** The password-checking front (password-front.ts); PGlite itself is reachable only through it. */
  readonly port: number;
  readonly database: string;
  readonly user: string;
  stop(): Promise<void>;
}

export interface DemoDatabaseOptions {
  /** The password the demo database asks for (SCRAM-SHA-256), as a real server would. */
  readonly password: string;
  readonly host?: string;
  readonly port?: number;
}

const DEMO_USER = 'postgres';

export async function startDemoDatabase(options: DemoDatabaseOptions): Promise<DemoDatabase> {
  const host = options.host ?? '127.0.0.1';
  // PGlite's socket server asks for no password: it listens on a Unix socket in a directory only
  // this user can enter (mkdtemp: 0700), so the password front is the one way in.
  let socketDir: string | undefined;
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  const stop = async (): Promise<void> => {
    await server?.stop();
    await db?.close();
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
  };
  try {
    socketDir = await mkdtemp(join(tmpdir(), 'custodian-demo-'));
    const path = join(socketDir, 'pglite.sock');
    db = await PGlite.create();
    await db.exec(DEMO_SEED_SQL);
    // Several connections: the gateway's session connections and its catalog connection.
    server = new PGLiteSocketServer({ db, path, maxConnections: 16 });
    await server.start();
    const front = await startPasswordFront({ host, ...(options.port !== undefined ? { port: options.port } : {}), user: DEMO_USER, password: options.password, upstreamPath: path });
    return {
      host,
      port: front.port,
      database: 'postgres',
      user: DEMO_USER,
      stop: async () => {
        await front.stop();
        await stop();
      },
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw new DemoEnvironmentError('DEMO_START_FAILED', `the demo database (PGlite) did not start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

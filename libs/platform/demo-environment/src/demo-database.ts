// The demo target: PGlite (PostgreSQL compiled to WebAssembly) served on the wire protocol on
// loopback, seeded with a small shop. Nothing to install; it lives in memory and is gone on stop.
import { createServer } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { DemoEnvironmentError } from './dev-oidc-issuer.js';

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
  readonly port: number;
  readonly database: string;
  readonly user: string;
  stop(): Promise<void>;
}

/** A port free on `host` now (the socket server needs a number up front). */
async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, host, () => resolve());
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

export async function startDemoDatabase(options: { host?: string; port?: number } = {}): Promise<DemoDatabase> {
  const host = options.host ?? '127.0.0.1';
  try {
    const db = await PGlite.create();
    await db.exec(DEMO_SEED_SQL);
    // Several connections: the gateway's session connections and its catalog connection.
    const port = options.port ?? (await freePort(host));
    const server = new PGLiteSocketServer({ db, host, port, maxConnections: 16 });
    await server.start();
    return {
      host,
      port,
      database: 'postgres',
      user: 'postgres',
      stop: async () => {
        await server.stop();
        await db.close();
      },
    };
  } catch (error) {
    throw new DemoEnvironmentError('DEMO_START_FAILED', `the demo database (PGlite) did not start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

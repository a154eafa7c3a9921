// Test-only: a real local JSON API (node:http) behind the gateway. It accepts only the held
// credential (a bearer token), logs every request it receives (the observation point for "did it
// reach the upstream"), and serves JSON, text, gzip and chunked responses.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';

export interface JsonApiUpstream {
  readonly url: string;
  /** Every request received: `METHOD path?query body`. */
  readonly log: string[];
  /** Authorization headers received (to prove the client's token never arrives). */
  readonly authorizations: string[];
  /** Lets every pending `/slow` response finish. */
  releaseSlow(): void;
  stop(): Promise<void>;
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startJsonApiUpstream(options: { readonly credential: string; readonly piiValue: string }): Promise<JsonApiUpstream> {
  const log: string[] = [];
  const authorizations: string[] = [];
  const documents = new Map<number, string>();
  const slowWaiters: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      log.push(`${req.method} ${req.url} ${body}`);
      authorizations.push(req.headers.authorization ?? '');
      if (req.headers.authorization !== `Bearer ${options.credential}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad credential"}');
        return;
      }
      const url = new URL(req.url ?? '/', 'http://upstream');
      const json = (status: number, value: unknown): void => {
        const text = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
      };
      if (url.pathname === '/pii') return json(200, { customers: [{ id: 1, contact: options.piiValue, nested: { notes: [`write to ${options.piiValue}`] } }] });
      if (url.pathname === '/pii-gzip') {
        const zipped = gzipSync(JSON.stringify({ contact: options.piiValue }));
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': zipped.length }).end(zipped);
        return;
      }
      if (url.pathname === '/pii-chunked-text') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        // The address split over writes: masking must still find it.
        const text = `contact: ${options.piiValue} end`;
        for (let i = 0; i < text.length; i += 3) res.write(text.slice(i, i + 3));
        res.end();
        return;
      }
      if (url.pathname === '/customers') {
        // A large JSON document (the benchmark's masked-JSON workload): `count` customers, each with an e-mail address.
        // Built once per size, so that a timed request measures the transfer, not JSON.stringify.
        const count = Math.min(Number(url.searchParams.get('count') ?? '100') || 100, 200_000);
        let text = documents.get(count);
        if (text === undefined) {
          text = JSON.stringify({ customers: Array.from({ length: count }, (_, i) => ({ id: i, name: `Customer ${i}`, contact: `customer${i}@example.com`, ssn: `123-45-${String(i % 10_000).padStart(4, '0')}`, note: 'prefers e-mail' })) });
          documents.set(count, text);
        }
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
        return;
      }
      if (url.pathname === '/big-text') {
        // `mib` MiB of text in 64 KiB writes with backpressure, an address in every 1 KiB line.
        const total = Math.min(Number(url.searchParams.get('mib') ?? '1') || 1, 1024) * 1024 * 1024;
        const line = `${'lorem ipsum dolor sit amet '.repeat(36)}contact ${options.piiValue}`.slice(0, 1023) + '\n';
        const chunk = Buffer.from(line.repeat(64));
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(total - (total % chunk.length)) });
        for (let sent = 0; sent + chunk.length <= total; sent += chunk.length) {
          if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
        }
        res.end();
        return;
      }
      if (url.pathname === '/big-json') {
        // `mib` MiB of one JSON document, `{"customers":[…]}`, chunked (no length), written in
        // 65,537-byte slices so that values (addresses included) split across chunk boundaries.
        const total = Math.min(Number(url.searchParams.get('mib') ?? '1') || 1, 1024) * 1024 * 1024;
        res.writeHead(200, { 'content-type': 'application/json' });
        let pending = '{"customers":[';
        let sent = 0;
        const flush = async (final: boolean): Promise<void> => {
          while (pending.length >= 65_537 || (final && pending.length > 0)) {
            const slice = pending.slice(0, 65_537);
            pending = pending.slice(slice.length);
            sent += slice.length;
            if (!res.write(slice)) await new Promise((resolve) => res.once('drain', resolve));
          }
        };
        for (let i = 0; sent + pending.length < total; i++) {
          pending += `${i === 0 ? '' : ','}{"id":${i},"name":"Customer ${i}","contact":"${options.piiValue}","ssn":"123-45-${String(i % 10_000).padStart(4, '0')}","nested":{"notes":["write to ${options.piiValue}"],"token":"tok-${i}"}}`;
          if (pending.length >= 65_537) await flush(false);
        }
        pending += ']}';
        await flush(true);
        res.end();
        return;
      }
      if (url.pathname === '/not-json') {
        // Starts like JSON, larger than a small connection masks whole, then breaks off into text
        // (after `after` elements written apart from the rest, so that masked JSON went out first).
        const after = Number(url.searchParams.get('after') ?? '0');
        res.writeHead(200, { 'content-type': 'application/json' });
        if (after > 0) {
          res.write(`{"customers":[${'{"id":1},'.repeat(after)}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
          res.end(` this is not JSON, ${options.piiValue}`);
        } else res.end(`{"customers":[${'{"id":1},'.repeat(20)} this is not JSON, ${options.piiValue}`);
        return;
      }
      if (url.pathname === '/slow') {
        // Answers only once released (`release()`) or after `ms`: a stream the client waits on.
        const ms = Math.min(Number(url.searchParams.get('ms') ?? '1000') || 1000, 120_000);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"slow":');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          slowWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        res.end('true}');
        return;
      }
      if (url.pathname === '/deep') {
        // Nested 100 levels (deeper than JSON-path masking follows), an address at the bottom.
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${'{"a":'.repeat(100)}"${options.piiValue}"${'}'.repeat(100)}`);
        return;
      }
      if (url.pathname === '/binary') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(options.piiValue));
        return;
      }
      json(200, { ok: true, method: req.method, path: url.pathname, received: body === '' ? null : body.length });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    log,
    authorizations,
    releaseSlow: () => {
      for (const release of slowWaiters.splice(0)) release();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

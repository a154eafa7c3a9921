// Every gateway listens the same way: bind, fail with the bind error (address in use, permission),
// and know the port it got (0 asks the system for one).
import type { AddressInfo } from 'node:net';

/** What listens like net.Server: net, http, https, http2 servers (and ssh2's, through its net server). */
export interface ListeningServer {
  listen(port: number, host: string, listening: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

/**
 * Listens on `host`:`port`; resolves with the bound port, rejects with the bind error. The error
 * listener is removed once listening, so later server errors reach the server's own listeners.
 */
export function listenOn(server: ListeningServer, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const failed = (error: Error): void => reject(error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

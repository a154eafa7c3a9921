import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { listenOn } from './listen.js';

describe('listenOn', () => {
  it('resolves with the port the system chose, and leaves no error listener behind', async () => {
    const server = createServer();
    try {
      const port = await listenOn(server, 0, '127.0.0.1');
      expect(port).toBeGreaterThan(0);
      expect(port).toBe((server.address() as { port: number }).port);
      expect(server.listenerCount('error')).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('rejects with the bind error when the port is taken', async () => {
    const first = createServer();
    const second = createServer();
    try {
      const port = await listenOn(first, 0, '127.0.0.1');
      await expect(listenOn(second, port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise<void>((resolve) => first.close(() => resolve()));
    }
  });
});

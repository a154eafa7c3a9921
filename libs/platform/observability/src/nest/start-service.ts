import type { AddressInfo } from 'node:net';
import type { DynamicModule, INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Logger } from 'pino';
import { PinoNestLogger } from './pino-nest-logger.js';

export interface StartNestServiceOptions {
  readonly module: DynamicModule;
  readonly logger: Logger;
  readonly listen: { readonly host: string; readonly port: number };
  /**
   * Standalone processes let Nest handle SIGTERM/SIGINT (close, then exit 0). When several
   * apps share a process (embedded deployment), the host handles signals once instead.
   */
  readonly shutdownHooks: boolean;
}

export interface RunningNestService {
  readonly app: INestApplication;
  readonly host: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** http://host:port, for messages and probes. */
  readonly url: string;
  close(): Promise<void>;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Creates a Nest HTTP app with JSON logs, starts listening, and reports where. */
export async function startNestService(options: StartNestServiceOptions): Promise<RunningNestService> {
  const app = await NestFactory.create(options.module, { logger: new PinoNestLogger(options.logger), abortOnError: false });
  if (options.shutdownHooks) app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  try {
    await app.listen(options.listen.port, options.listen.host);
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = (app.getHttpServer() as { address(): AddressInfo | string | null }).address();
  const port = typeof address === 'object' && address !== null ? address.port : options.listen.port;
  const url = `http://${urlHost(options.listen.host)}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    app,
    host: options.listen.host,
    port,
    url,
    close: () => (closing ??= app.close()),
  };
}

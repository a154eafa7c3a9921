import { Injectable, type BeforeApplicationShutdown, type Provider } from '@nestjs/common';

/** Something a service runs besides answering HTTP (a consumer, a projection, a pipeline drainer). */
export interface ServiceWork {
  /** Finishes what is in hand and releases resources. */
  close(): Promise<void>;
}

/**
 * Nest providers that start `work` while the app initialises (its promise is awaited, so a
 * failure fails the start) and close it when shutdown begins, before any provider's
 * onApplicationShutdown (the event store is closed there and the work may still need it).
 * The started value is injectable under `token`.
 */
export function serviceWorkProviders<T extends ServiceWork>(token: symbol, start: () => Promise<T>): Provider[] {
  let started: T | undefined;
  @Injectable()
  class ServiceWorkShutdown implements BeforeApplicationShutdown {
    async beforeApplicationShutdown(): Promise<void> {
      const work = started;
      started = undefined;
      await work?.close();
    }
  }
  return [{ provide: token, useFactory: async () => (started = await start()) }, ServiceWorkShutdown];
}

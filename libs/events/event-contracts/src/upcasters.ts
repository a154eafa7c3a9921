import type { EventType } from './envelope.js';

/**
 * Upcasters turn a payload of version N into version N+1. Stored events never change;
 * consumers upcast on read. One function per step, pure, registered by type and source version.
 */
export type Upcaster = (payload: Readonly<Record<string, unknown>>) => Record<string, unknown>;

export const UPCASTERS: { readonly [T in EventType]?: { readonly [fromVersion: number]: Upcaster } } = {
  'session.opened': {
    // v1 carried the connection name as `target` and the client address flat; v2 names
    // the protocol on the connection (policies and evidence views key on it).
    1: (p) => ({
      sessionId: p.sessionId,
      connection: { name: p.target, protocol: p.protocol },
      client: { address: p.clientAddress },
    }),
  },
};

import type { EventType } from './envelope.js';

/**
 * Upcasters turn a payload of version N into version N+1. Stored events never change;
 * consumers upcast on read. One function per step, pure, registered by type and source version.
 */
export type Upcaster = (payload: Readonly<Record<string, unknown>>) => Record<string, unknown>;

/** Policy language of each protocol, for approvals recorded before requests named their language. */
const LANGUAGE_OF_PROTOCOL: Readonly<Record<string, string>> = { postgres: 'sql', ssh: 'shell', http: 'http', kubernetes: 'http', anthropic: 'llm', mcp: 'mcp' };

export const UPCASTERS: { readonly [T in EventType]?: { readonly [fromVersion: number]: Upcaster } } = {
  'approval.requested': {
    // v1 showed approvers the normalized text only and bound nothing; v2 names the language (and,
    // when produced at v2, the full masked command, its parameters, the policy and the binding
    // digest). A v1 request keeps its text and stays unbound: no gateway acts on its grant.
    1: (p) => {
      const protocol = (p.connection as { protocol?: unknown } | undefined)?.protocol;
      return { ...p, language: LANGUAGE_OF_PROTOCOL[typeof protocol === 'string' ? protocol : ''] };
    },
  },
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

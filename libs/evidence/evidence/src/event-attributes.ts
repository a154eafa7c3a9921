import type { CustodianEvent } from '@custodian/event-contracts';

/** Fields evidence views select on, read from any event: who, which connection, which session. */
export interface EventAttributes {
  readonly subject: string | null;
  readonly connection: string | null;
  readonly sessionId: string | null;
}

export function eventAttributes(event: CustodianEvent): EventAttributes {
  const payload = event.payload as { readonly sessionId?: unknown; readonly connection?: unknown };
  const connection = typeof payload.connection === 'object' && payload.connection !== null && typeof (payload.connection as { name?: unknown }).name === 'string' ? (payload.connection as { name: string }).name : null;
  return {
    subject: event.identity?.subject ?? null,
    connection,
    sessionId: typeof payload.sessionId === 'string' ? payload.sessionId : null,
  };
}

export type EventContractErrorCode =
  | 'EVENT_INVALID_ENVELOPE'
  | 'EVENT_INVALID_PAYLOAD'
  | 'EVENT_UNKNOWN_TYPE'
  | 'EVENT_UNKNOWN_VERSION'
  | 'EVENT_UPCAST_FAILED'
  | 'EVENT_NOT_JSON'
  | 'JSON_NOT_CANONICALIZABLE';

export interface ValidationIssue {
  /** JSON pointer into the event, e.g. `/payload/sessionId`. */
  readonly path: string;
  readonly message: string;
}

/** An event that does not satisfy its contract. Carries no event values, only paths and rules. */
export class EventContractError extends Error {
  override readonly name = 'EventContractError';
  constructor(
    readonly code: EventContractErrorCode,
    message: string,
    readonly issues: readonly ValidationIssue[] = [],
  ) {
    super(issues.length > 0 ? `${message}: ${issues.map((i) => `${i.path || '/'} ${i.message}`).join('; ')}` : message);
  }
}

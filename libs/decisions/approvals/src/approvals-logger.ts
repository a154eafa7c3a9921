/** The slice of a structured logger (pino-compatible) the approvals workflow writes to. */
export interface ApprovalsLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const SILENT_LOGGER: ApprovalsLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

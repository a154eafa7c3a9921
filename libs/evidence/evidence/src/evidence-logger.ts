/** The few logging calls this library makes; a pino logger fits it. Nothing secret is ever passed. */
export interface EvidenceLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const SILENT_LOGGER: EvidenceLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

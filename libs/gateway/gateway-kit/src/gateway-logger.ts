// The logger a protocol adapter takes: three levels, fields first. Adapters do not depend on the
// service's logging library; the service hands them its logger through gatewayLogger().
import type { Logger } from '@custodian/observability';

export interface GatewayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Logs nothing (adapters' default). */
export const SILENT_GATEWAY_LOGGER: GatewayLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The service's logger as a GatewayLogger; `bindings` (e.g. `{ gateway: 'postgres' }`) are added to every line. */
export function gatewayLogger(logger: Logger, bindings?: Readonly<Record<string, unknown>>): GatewayLogger {
  const target = bindings ? logger.child(bindings) : logger;
  return {
    info: (fields, message) => target.info(fields, message),
    warn: (fields, message) => target.warn(fields, message),
    error: (fields, message) => target.error(fields, message),
  };
}

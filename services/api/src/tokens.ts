/** Injection token for the event store port (an interface, so it needs an explicit token). */
export const API_EVENT_STORE = Symbol.for('@custodian/api-service/event-store');
export const API_VERSION_INFO = Symbol.for('@custodian/api-service/version-info');

export interface VersionInfo {
  readonly name: string;
  readonly version: string;
}

/** Injection token for what GET /v1/version reports. */
export const API_VERSION_INFO = Symbol.for('@custodian/api-service/version-info');

export interface VersionInfo {
  readonly name: string;
  readonly version: string;
}

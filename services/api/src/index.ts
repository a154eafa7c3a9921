// The api service: a Nest module that the embedded host (custodian start) and the standalone
// process (src/main.ts, distributed deployment) both mount.
export { ApiModule, type ApiDependencies, type ApiApprovalsOptions } from './api.module.js';
export { configuredApprovals, type ConfiguredApprovalsOptions } from './approvals/configured-approvals.js';
export type { ApprovalDetailView, ApprovalListResponse, ApprovalResponse, ApprovalView, SessionContextEvent } from './approvals/approval-views.js';
export { API_VERSION_INFO, type VersionInfo } from './tokens.js';
export { MAX_EVENTS_PER_PAGE, type StreamEventResponse, type StreamEventsResponse } from './streams.controller.js';
export type { VersionResponse } from './version.controller.js';
export type { ApiErrorBody } from './authentication/api-error.js';
export type { ToolPinAcceptResponse, ToolPinListResponse, ToolPinView } from './mcp-tools/mcp-tools.controller.js';
export type { MeResponse } from './authentication/auth.controller.js';
export { LOGIN_COOKIE, SESSION_COOKIE } from './authentication/session-cookie.js';
export const SERVICE_NAME = 'api';
export { configuredSessionsReadModelPath } from './sessions/configured-sessions.js';
export type { SessionListResponse, SessionResponse, SessionTimelineResponse } from './sessions/sessions.controller.js';
export type { SessionSummary } from './sessions/session-read-model.js';
export type { TimelineCommand } from './sessions/query-timeline.js';

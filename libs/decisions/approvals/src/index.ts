// Just-in-time approvals: the event-sourced approval aggregate (NestJS CQRS commands and event
// handlers over the event store), the ApprovalGate the protocol gateways hold commands on, the
// approvals read model (approver queue, window grants) and signed webhook notifications.
export * from './approval-error.js';
export * from './approval.js';
export * from './approval-repository.js';
export * from './approval-commands.js';
export * from './approval-events.js';
export * from './approval-read-model.js';
export * from './approvals-logger.js';
export * from './event-sourced-approval-gate.js';
export * from './approvals.module.js';
export * from './notifications/webhook-signature.js';
export * from './notifications/approval-notification-message.js';
export * from './notifications/webhook-notifier.js';

// A pure, dependency-free codec for the PostgreSQL frontend/backend protocol 3.0, as a proxy
// needs it: a framer that cuts either direction into messages (startup-phase messages without a
// type byte; bounded memory; bad lengths refused at the header), decoders for what a proxy
// inspects and encoders for what it rewrites or sends itself.
export * from './errors.js';
export * from './protocol-codes.js';
export * from './framer.js';
export * from './frontend-messages.js';
export * from './backend-messages.js';
export { MessageReader } from './message-reader.js';

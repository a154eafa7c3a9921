// In-process adapter of the event bus port (embedded deployment, tests).
export { InProcessEventBus, type InProcessEventBusOptions } from './in-process-event-bus.js';

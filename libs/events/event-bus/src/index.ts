// The event bus port (publisher + consumer), the topic contract from schemas/topics, and the
// pipeline's metric observation points. Adapters: @custodian/event-bus-kafka, @custodian/event-bus-in-process.
export * from './event-bus.js';
export * from './topics.js';
export * from './pipeline-metrics.js';

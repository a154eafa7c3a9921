// Kafka adapter of the event bus port: the only package that imports kafkajs.
export { KafkaEventBus, type KafkaEventBusOptions, type KafkaLogEntry, type KafkaLogLevel } from './kafka-event-bus.js';

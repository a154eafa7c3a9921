// Kafka adapter of the event bus port: the only package that imports a Kafka client (@platformatic/kafka, docs/adr/0011-kafka-client.md).
export { KafkaEventBus, type KafkaEventBusOptions, type KafkaLogEntry, type KafkaLogLevel } from './kafka-event-bus.js';

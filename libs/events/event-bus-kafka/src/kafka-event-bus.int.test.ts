import { describeEventBusContract } from '@custodian/event-bus/testing';
import { startKafka } from '@custodian/test-harness';
import { KafkaEventBus } from './kafka-event-bus.js';

describeEventBusContract(
  'kafka (real KRaft broker)',
  async () => {
    const kafka = await startKafka({ brokerLogLevel: 'warn' });
    const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId: 'event-bus-contract', producer: { lingerMs: 2 } });
    return {
      bus,
      cleanup: async () => {
        await bus.close();
        await kafka.stop();
      },
    };
  },
  { deliveryTimeoutMs: 90_000 },
);

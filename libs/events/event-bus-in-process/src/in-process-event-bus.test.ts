import { describeEventBusContract } from '@custodian/event-bus/testing';
import { InProcessEventBus } from './in-process-event-bus.js';

describeEventBusContract('in-process', async () => {
  const bus = new InProcessEventBus();
  return { bus, cleanup: () => bus.close() };
});

// server.properties for a single combined broker+controller node in KRaft mode.

export type KafkaConfigValue = string | number | boolean;

export interface KafkaNodeLayout {
  readonly brokerPort: number;
  readonly controllerPort: number;
  readonly dataDir: string;
  readonly autoCreateTopics: boolean;
}

export function kafkaServerProperties(layout: KafkaNodeLayout, overrides: Readonly<Record<string, KafkaConfigValue>> = {}): string {
  const properties: Record<string, KafkaConfigValue> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    // Static quorum of one voter: valid in 3.x and 4.x, and needs no --standalone at format time.
    'controller.quorum.voters': `1@127.0.0.1:${layout.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${layout.brokerPort},CONTROLLER://127.0.0.1:${layout.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${layout.brokerPort}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': layout.dataDir,
    'auto.create.topics.enable': layout.autoCreateTopics,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    // One partition each for the internal topics: less to load after a restart, plenty for one node.
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // After a SIGKILL the controller keeps the dead incarnation's registration until its
    // session expires (default 9 s); a short session makes restart() take ~5 s, not ~12 s.
    'broker.heartbeat.interval.ms': 500,
    'broker.session.timeout.ms': 3000,
    ...overrides,
  };
  return `${Object.entries(properties)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join('\n')}\n`;
}

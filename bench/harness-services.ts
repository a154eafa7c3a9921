// Services from @custodian/test-harness, started when a benchmark first asks for them and shared
// by the rest of the run (starting PostgreSQL once saves seconds per benchmark).
import { startKafka, startPgbouncer, startPostgres, type StartedKafka, type StartedPgbouncer, type StartedPostgres } from '@custodian/test-harness';
import type { HarnessServices } from './benchmark.ts';

export class LazyHarnessServices implements HarnessServices {
  private postgresStart: Promise<StartedPostgres> | undefined;
  private pgbouncerStart: Promise<StartedPgbouncer> | undefined;
  private kafkaStart: Promise<StartedKafka> | undefined;
  private readonly startedVersions = new Map<string, string>();

  postgres(): Promise<StartedPostgres> {
    this.postgresStart ??= startPostgres();
    return this.postgresStart;
  }

  pgbouncer(): Promise<StartedPgbouncer> {
    this.pgbouncerStart ??= this.postgres().then((postgres) => startPgbouncer({ postgres, poolMode: 'transaction' }));
    return this.pgbouncerStart;
  }

  kafka(): Promise<StartedKafka> {
    this.kafkaStart ??= startKafka({ brokerLogLevel: 'warn' }).then((kafka) => {
      this.startedVersions.set('kafka', kafka.version);
      return kafka;
    });
    return this.kafkaStart;
  }

  /** Names of the services this run started. */
  started(): string[] {
    return [
      ...(this.postgresStart ? ['postgresql'] : []),
      ...(this.pgbouncerStart ? ['pgbouncer'] : []),
      ...(this.kafkaStart ? ['kafka'] : []),
    ];
  }

  /** Stops whatever was started, pooler before server; failures to start were already reported by the benchmark. */
  async stop(): Promise<void> {
    for (const start of [this.kafkaStart, this.pgbouncerStart, this.postgresStart]) {
      if (!start) continue;
      const service = await start.catch(() => undefined);
      await service?.stop();
    }
  }
}

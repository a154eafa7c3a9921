// Runs a projection on the event store: catch-up then live (subscribeToAll), a durable checkpoint,
// and restart after a failure from that checkpoint. Delivery is at-least-once; each projection
// makes itself idempotent (e.g. keyed on the event id). Every projection (evidence, replay, SIEM)
// runs through this.
import type { CheckpointStore, EventStore, RecordedEvent, Subscription } from '@custodian/event-store';

export interface Projection {
  /** Subscription id: names the checkpoint. */
  readonly name: string;
  /** Handles one event; may defer work, as long as `flush()` finishes it. */
  handle(recorded: RecordedEvent): Promise<void> | void;
  /**
   * Called before every checkpoint save: resolve only when every event handled so far has taken
   * effect (e.g. its messages were acknowledged), so a checkpoint never covers lost work.
   */
  flush?(): Promise<void>;
  /** Called before every (re)subscription, e.g. to forget a failure that made the last one stop. */
  start?(): void;
}

export interface ProjectionRunnerOptions {
  /** Save the checkpoint every N events (and when idle, and on stop). Default 100. */
  readonly checkpointEvery?: number;
  /** Wait before resubscribing after a failure. Default 1,000 ms. */
  readonly restartBackoffMs?: number;
  /** Told about each failure before the restart. */
  readonly onError?: (error: unknown) => void;
  /** Where checkpoints live; default the store's own. */
  readonly checkpoints?: CheckpointStore;
}

export interface RunningProjection {
  /** Resolves once the projection first reached the end of the log. */
  readonly caughtUp: Promise<void>;
  /** Failures so far (each followed by a restart). */
  failures(): number;
  stop(): Promise<void>;
}

export function runProjection(store: EventStore, projection: Projection, options: ProjectionRunnerOptions = {}): RunningProjection {
  const base = options.checkpoints ?? store.checkpoints;
  const checkpoints: CheckpointStore = {
    load: (id) => base.load(id),
    save: async (id, position) => {
      await projection.flush?.();
      await base.save(id, position);
    },
  };
  let subscription: Subscription | undefined;
  let stopped = false;
  let failures = 0;
  let wake: () => void = () => undefined;
  let resolveCaughtUp: () => void = () => undefined;
  const caughtUp = new Promise<void>((resolve) => (resolveCaughtUp = resolve));

  const loop = (async () => {
    while (!stopped) {
      projection.start?.();
      subscription = store.subscribeToAll({
        subscriptionId: projection.name,
        from: 'checkpoint',
        handler: (recorded) => projection.handle(recorded),
        checkpoints,
        ...(options.checkpointEvery ? { checkpointEvery: options.checkpointEvery } : {}),
      });
      subscription.caughtUp.then(resolveCaughtUp, () => undefined);
      try {
        await subscription.done;
        return;
      } catch (error) {
        if (stopped) return;
        failures += 1;
        options.onError?.(error);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.restartBackoffMs ?? 1_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  })();

  return {
    caughtUp,
    failures: () => failures,
    stop: async () => {
      stopped = true;
      wake();
      await subscription?.stop();
      await loop;
    },
  };
}

// The part of a catch-up subscription that every adapter shares: serial handler, checkpointing,
// lifecycle (caughtUp / stop / done). Adapters supply only the stream of items.
import { InvalidRequestError, SubscriptionFailedError, SubscriptionStoppedError } from './errors.js';
import type { CheckpointStore, RecordedEvent, SubscribeToAllOptions, Subscription } from './event-store.js';
import { comparePositions, type GlobalPosition } from './position.js';

/** What an adapter's source yields: events in commit order, and a marker each time it reaches the end. */
export type SubscriptionItem = { readonly kind: 'event'; readonly recorded: RecordedEvent } | { readonly kind: 'caught-up' };

/**
 * Opens the adapter's source: events strictly after `after` (all events when undefined). It must
 * end (return) soon after `signal` aborts, and throw if the store fails.
 */
export type SubscriptionSource = (after: GlobalPosition | undefined, signal: AbortSignal) => AsyncIterable<SubscriptionItem>;

export const DEFAULT_CHECKPOINT_EVERY = 100;

function noop(): void {}

export function startSubscription(options: SubscribeToAllOptions, defaultCheckpoints: CheckpointStore, open: SubscriptionSource): Subscription {
  const { subscriptionId, handler } = options;
  const every = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  if (typeof subscriptionId !== 'string' || subscriptionId.length === 0) throw new InvalidRequestError('subscriptionId must be a non-empty string');
  if (!Number.isSafeInteger(every) || every < 1) throw new InvalidRequestError(`checkpointEvery must be a positive integer, got ${every}`);
  if (options.from !== 'start' && options.from !== 'checkpoint') throw new InvalidRequestError(`from must be 'start' or 'checkpoint'`);
  const checkpoints = options.checkpoints ?? defaultCheckpoints;

  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  if (options.signal?.aborted) controller.abort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });

  let caughtUpSettled = false;
  let resolveCaughtUp: () => void = noop;
  let rejectCaughtUp: (error: unknown) => void = noop;
  const caughtUp = new Promise<void>((resolve, reject) => {
    resolveCaughtUp = () => {
      caughtUpSettled = true;
      resolve();
    };
    rejectCaughtUp = (error) => {
      caughtUpSettled = true;
      reject(error);
    };
  });
  // Marked handled: a caller that never awaits it must not crash the process. Awaiting still rejects.
  caughtUp.catch(noop);

  let lastHandled: GlobalPosition | undefined;
  let lastSaved: GlobalPosition | undefined;
  let handledSinceSave = 0;

  const saveCheckpoint = async (): Promise<void> => {
    if (lastHandled === undefined) return;
    if (lastSaved !== undefined && comparePositions(lastHandled, lastSaved) === 0) return;
    const position = lastHandled;
    await checkpoints.save(subscriptionId, position);
    lastSaved = position;
    handledSinceSave = 0;
  };

  const run = async (): Promise<void> => {
    let inHand: GlobalPosition | undefined;
    try {
      const after = options.from === 'checkpoint' ? await checkpoints.load(subscriptionId) : undefined;
      lastSaved = after;
      for await (const item of open(after, controller.signal)) {
        if (controller.signal.aborted) break;
        if (item.kind === 'caught-up') {
          if (!caughtUpSettled) resolveCaughtUp();
          // Idle: a good moment to persist progress.
          await saveCheckpoint();
          continue;
        }
        inHand = item.recorded.position;
        await handler(item.recorded);
        lastHandled = inHand;
        inHand = undefined;
        handledSinceSave += 1;
        if (handledSinceSave >= every) await saveCheckpoint();
      }
      await saveCheckpoint();
    } catch (error) {
      // Keep the progress made before the failure; the failed event is not covered by it.
      await saveCheckpoint().catch(noop);
      throw new SubscriptionFailedError(subscriptionId, inHand, error);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  };

  const done = run().then(
    () => {
      if (!caughtUpSettled) rejectCaughtUp(new SubscriptionStoppedError(subscriptionId));
    },
    (error: unknown) => {
      if (!caughtUpSettled) rejectCaughtUp(error);
      throw error;
    },
  );
  done.catch(noop);

  return {
    caughtUp,
    done,
    stop: async () => {
      controller.abort();
      await done.catch(noop);
    },
    lastHandledPosition: () => lastHandled,
  };
}

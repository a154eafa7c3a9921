import { EventStoreError } from './errors.js';

/**
 * A place in the global log. EventStoreDB has a commit and a prepare position; stores with a
 * single sequence (SQLite) use the same number for both. Positions compare by commit, then prepare.
 */
export interface GlobalPosition {
  readonly commit: bigint;
  readonly prepare: bigint;
}

/** Durable text form `C<commit>/P<prepare>`, e.g. `C42/P42` (as EventStoreDB prints positions). */
export function formatPosition(position: GlobalPosition): string {
  return `C${position.commit}/P${position.prepare}`;
}

const POSITION_TEXT = /^C(\d{1,20})\/P(\d{1,20})$/;

export function parsePosition(text: string): GlobalPosition {
  const m = POSITION_TEXT.exec(text);
  if (!m) throw new EventStoreError('EVENT_STORE_INVALID_POSITION', `not a stored position: ${JSON.stringify(text)}`);
  return { commit: BigInt(m[1]!), prepare: BigInt(m[2]!) };
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function comparePositions(a: GlobalPosition, b: GlobalPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

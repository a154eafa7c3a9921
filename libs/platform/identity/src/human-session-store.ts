import { randomBytes } from 'node:crypto';
import type { Identity } from '@custodian/event-contracts';

/** A logged-in human, held server-side; the browser only ever holds the opaque session id. */
export interface HumanSession {
  readonly id: string;
  readonly identity: Identity;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

/** Server-side sessions for the API and dashboard (cookies are the API's concern). */
export interface HumanSessionStore {
  create(identity: Identity, expiresAt: Date): Promise<HumanSession>;
  /** The live session, or undefined when unknown or expired. */
  get(id: string): Promise<HumanSession | undefined>;
  delete(id: string): Promise<void>;
}

export interface InMemoryHumanSessionStoreOptions {
  /** Upper bound on any session's lifetime (default 8 h), whatever the caller asks. */
  readonly maxLifetimeMs?: number;
  /** Bound on live sessions (default 10 000); the oldest is evicted first. */
  readonly maxSessions?: number;
  readonly now?: () => number;
}

/** One process's sessions; lost on restart, which only means logging in again. */
export class InMemoryHumanSessionStore implements HumanSessionStore {
  private readonly sessions = new Map<string, HumanSession>();
  private readonly maxLifetimeMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(options: InMemoryHumanSessionStoreOptions = {}) {
    this.maxLifetimeMs = options.maxLifetimeMs ?? 8 * 3_600_000;
    this.maxSessions = options.maxSessions ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  async create(identity: Identity, expiresAt: Date): Promise<HumanSession> {
    const now = this.now();
    this.sweep(now);
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next();
      if (oldest.done) break;
      this.sessions.delete(oldest.value);
    }
    const session: HumanSession = {
      id: randomBytes(32).toString('base64url'),
      identity: { ...identity, groups: [...identity.groups] },
      createdAt: new Date(now),
      expiresAt: new Date(Math.min(expiresAt.getTime(), now + this.maxLifetimeMs)),
    };
    this.sessions.set(session.id, session);
    return session;
  }

  async get(id: string): Promise<HumanSession | undefined> {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt.getTime() <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  async delete(id: string): Promise<void> {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(now: number): void {
    for (const [id, session] of this.sessions) if (session.expiresAt.getTime() <= now) this.sessions.delete(id);
  }
}

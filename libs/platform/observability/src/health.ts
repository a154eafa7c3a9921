import { scrubText } from './redaction.js';

/** `live`: the process works (restart it if not). `ready`: it can serve (route traffic to it). Ready includes live. */
export type HealthKind = 'live' | 'ready';

export interface HealthCheck {
  /** Stable name shown to operators, e.g. `event-store`. */
  readonly name: string;
  readonly kind: HealthKind;
  /** Resolves when healthy; throws (or rejects) with the reason otherwise. */
  readonly check: () => Promise<void> | void;
  /** A check that has not settled by then fails. Default 2000 ms. */
  readonly timeoutMs?: number;
}

export interface HealthCheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** Why it failed, scrubbed of credentials. For logs; not sent to HTTP clients. */
  readonly error?: string;
}

export interface HealthReport {
  readonly kind: HealthKind;
  readonly ok: boolean;
  readonly checks: readonly HealthCheckResult[];
  /** Names of the failing checks. */
  readonly failing: readonly string[];
}

export type HealthErrorCode = 'HEALTH_DUPLICATE_CHECK' | 'HEALTH_CHECK_TIMEOUT';

export class HealthError extends Error {
  override readonly name = 'HealthError';
  constructor(
    readonly code: HealthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The name reported while the service drains during shutdown. */
export const SHUTTING_DOWN_CHECK = 'shutting-down';

async function runCheck(check: HealthCheck): Promise<HealthCheckResult> {
  const timeoutMs = check.timeoutMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HealthError('HEALTH_CHECK_TIMEOUT', `no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.resolve().then(check.check), timeout]);
    return { name: check.name, ok: true };
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { name: check.name, ok: false, error: scrubText(message) };
  } finally {
    clearTimeout(timer);
  }
}

/** Named liveness and readiness checks that a service's components register. */
export class HealthRegistry {
  private readonly checks = new Map<string, HealthCheck>();
  private shuttingDown = false;

  /** Adds a check; returns a function that removes it. */
  register(check: HealthCheck): () => void {
    if (this.checks.has(check.name)) throw new HealthError('HEALTH_DUPLICATE_CHECK', `a health check named ${check.name} is already registered`);
    this.checks.set(check.name, check);
    return () => {
      if (this.checks.get(check.name) === check) this.checks.delete(check.name);
    };
  }

  names(kind: HealthKind): string[] {
    return [...this.checks.values()].filter((c) => kind === 'ready' || c.kind === 'live').map((c) => c.name);
  }

  /** From now on readiness fails, so traffic drains before the process stops. */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  async run(kind: HealthKind): Promise<HealthReport> {
    const selected = [...this.checks.values()].filter((c) => kind === 'ready' || c.kind === 'live');
    const checks: HealthCheckResult[] = await Promise.all(selected.map(runCheck));
    if (kind === 'ready' && this.shuttingDown) checks.push({ name: SHUTTING_DOWN_CHECK, ok: false, error: 'service is shutting down' });
    const failing = checks.filter((c) => !c.ok).map((c) => c.name);
    return { kind, ok: failing.length === 0, checks, failing };
  }
}

import { hostname } from 'node:os';
import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ApprovalsModule, type ApprovalsModuleOptions } from '@custodian/approvals';
import type { ConfiguredEvidence } from '@custodian/evidence-host';
import type { Logger } from '@custodian/observability';
import {
  AuthenticationEventRecorder,
  failClosedIdentity,
  serviceCore,
  type AuthenticationEventRecorderOptions,
  type ConfiguredIdentity,
  type ServiceDependencies,
} from '@custodian/service-host';
import { ApiErrorFilter } from './authentication/api-error.js';
import { AuthController, BROWSER_LOGIN } from './authentication/auth.controller.js';
import { AuthenticationGuard, REQUEST_AUTHENTICATOR, TRUSTED_ORIGINS } from './authentication/authentication.guard.js';
import { BrowserLogin } from './authentication/browser-login.js';
import { RequestAuthenticator } from './authentication/request-authenticator.js';
import { cookiesNeedSecure } from './authentication/session-cookie.js';
import { dashboardAssets } from './dashboard/dashboard-assets.js';
import { ApprovalsController } from './approvals/approvals.controller.js';
import { API_VERSION_INFO, type VersionInfo } from './tokens.js';
import { EVIDENCE_ACCESS, EvidenceAccess } from './evidence/evidence-access.js';
import { EVIDENCE_INSTANCE, EvidenceController } from './evidence/evidence.controller.js';
import { SESSION_READ_MODEL, SESSIONS_LOGGER, SessionsController, SessionsProjection } from './sessions/sessions.controller.js';
import { SessionReadModel } from './sessions/session-read-model.js';
import { ReplayController } from './replay.controller.js';
import { CHANGE_FEED, ChangeFeed } from './live/change-feed.js';
import { LiveUpdatesController } from './live/live-updates.controller.js';
import { StreamsController } from './streams.controller.js';
import { VersionController } from './version.controller.js';
import { readServiceVersion } from './version-info.js';

export interface ApiDependencies extends ServiceDependencies {
  /** What GET /v1/version reports; this package's version when omitted. */
  readonly version?: VersionInfo;
  /** Verifier, login client and sessions (service-host `configuredIdentity`); omitted means fail closed: every request is 401. */
  readonly identity?: ConfiguredIdentity;
  /** The host the API listens on: cookies drop `Secure` only for plain http on loopback. */
  readonly listenHost?: string;
  /** `source.instance` of the events this API writes (default `<hostname>:<pid>`). */
  readonly instance?: string;
  /** The evidence log (views, checkpoints, cosignatures, packs); omitted: evidence routes answer 503 EVIDENCE_NOT_CONFIGURED. */
  readonly evidence?: ConfiguredEvidence;
  /** Rate limits of `authentication.failed` events (defaults: 10 per client and 300 in total per minute). */
  readonly failureEvents?: Pick<AuthenticationEventRecorderOptions, 'failuresPerClient' | 'failuresTotal' | 'windowMs'>;
  /** Approvals read model, webhooks and expiry sweep (`configuredApprovals(loaded)`); an in-memory read model and no webhooks when omitted. */
  readonly approvals?: ApiApprovalsOptions;
  /** Where the sessions read model lives (a SQLite file, or `:memory:`, the default: rebuilt from the log at each start). */
  readonly sessionsReadModelPath?: string;
  /** Directory of the built dashboard (default services/api/dist/web); `false` serves no web page. */
  readonly dashboardAssets?: string | false;
}

export type ApiApprovalsOptions = Pick<ApprovalsModuleOptions, 'readModelPath' | 'notifications' | 'sweep' | 'clock'>;

const API_LOGGER = Symbol.for('@custodian/api-service/logger');
const API_NOTICES = Symbol.for('@custodian/api-service/notices');
const AUTH_EVENT_RECORDER = Symbol.for('@custodian/api-service/auth-event-recorder');

/** Logs what operators must know (e.g. "refuses every request") once the API is up; flushes auth events on shutdown. */
@Injectable()
class AuthenticationLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(API_LOGGER) private readonly logger: Logger,
    @Inject(API_NOTICES) private readonly notices: readonly { readonly topic: string; readonly text: string }[],
    @Inject(AUTH_EVENT_RECORDER) private readonly recorder: AuthenticationEventRecorder,
  ) {}

  onApplicationBootstrap(): void {
    for (const { topic, text } of this.notices) this.logger.warn({ notice: topic }, text);
  }

  async beforeApplicationShutdown(): Promise<void> {
    // Before the store closes: pending failure summaries are written, appends in flight finish.
    await this.recorder.close();
  }
}

/** Closes the evidence log state before the store closes. */
@Injectable()
class EvidenceLifecycle implements BeforeApplicationShutdown {
  constructor(@Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess) {}

  async beforeApplicationShutdown(): Promise<void> {
    await this.access.close();
  }
}

/**
 * HTTP API for dashboards, approvers and auditors. Every route except /health/* and the login
 * routes needs `Authorization: Bearer <access token>` (agents, CI) or the session cookie of a
 * human login (services/api/README.md).
 */
@Module({})
export class ApiModule {
  static register(deps: ApiDependencies): DynamicModule {
    const core = serviceCore(deps);
    const identity = deps.identity ?? failClosedIdentity();
    const recorder = new AuthenticationEventRecorder({
      eventStore: deps.eventStore,
      source: { service: 'api', instance: deps.instance ?? `${hostname()}:${process.pid}` },
      logger: deps.logger,
      ...deps.failureEvents,
    });
    const cookies = { secure: cookiesNeedSecure(deps.listenHost, identity.login?.redirectUri) };
    const authenticator = new RequestAuthenticator({ verifier: identity.verifier, sessions: identity.sessions, recorder });
    const login = new BrowserLogin({ login: identity.login, sessions: identity.sessions, recorder, cookies });
    const trustedOrigins = identity.login ? [new URL(identity.login.redirectUri).origin] : [];
    const instance = deps.instance ?? `${hostname()}:${process.pid}`;
    const changes = new ChangeFeed();
    const approvals = ApprovalsModule.register({ ...deps.approvals, afterReadModel: [changes.approvalHandler()], eventStore: deps.eventStore, source: { service: 'api', instance }, logger: deps.logger });
    const dashboard = dashboardAssets(deps.dashboardAssets);
    const notices = [...identity.notices.map((text) => ({ topic: 'identity', text })), ...(dashboard.notice ? [{ topic: 'dashboard', text: dashboard.notice }] : [])];
    return {
      module: ApiModule,
      ...core,
      imports: [...core.imports, approvals, ...(dashboard.module ? [dashboard.module] : [])],
      controllers: [StreamsController, ReplayController, VersionController, AuthController, ApprovalsController, EvidenceController, SessionsController, LiveUpdatesController],
      providers: [
        ...core.providers,
        { provide: API_VERSION_INFO, useValue: deps.version ?? readServiceVersion() },
        { provide: API_LOGGER, useValue: deps.logger },
        { provide: API_NOTICES, useValue: notices },
        { provide: AUTH_EVENT_RECORDER, useValue: recorder },
        { provide: REQUEST_AUTHENTICATOR, useValue: authenticator },
        { provide: BROWSER_LOGIN, useValue: login },
        { provide: TRUSTED_ORIGINS, useValue: trustedOrigins },
        { provide: APP_GUARD, useClass: AuthenticationGuard },
        { provide: APP_FILTER, useClass: ApiErrorFilter },
        AuthenticationLifecycle,
        { provide: EVIDENCE_ACCESS, useValue: new EvidenceAccess(deps.evidence) },
        { provide: EVIDENCE_INSTANCE, useValue: deps.instance },
        EvidenceLifecycle,
        { provide: SESSION_READ_MODEL, useFactory: () => new SessionReadModel(deps.sessionsReadModelPath ?? ':memory:') },
        { provide: SESSIONS_LOGGER, useValue: deps.logger },
        SessionsProjection,
        { provide: CHANGE_FEED, useValue: changes },
      ],
    };
  }
}

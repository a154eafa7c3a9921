// Builds the identity adapters the configuration names (`identity` section): the access-token
// verifier for the trusted issuers, the human-login client and the server-side session store.
import {
  IdentityConfigError,
  IdentityError,
  InMemoryHumanSessionStore,
  type AccessTokenVerifier,
  type ClaimMapping,
  type HumanSessionStore,
  type IdentityKind,
  type IntrospectionConfig,
  type IssuerConfig,
} from '@custodian/identity';
import { OidcAccessTokenVerifier, OidcLoginClient, type FetchFunction, type IdentityLogger } from '@custodian/identity-oidc';
import { ConfigError, resolveSecret, resolveSecretAsync, type IdentityClaimMapping, type LoadedConfig } from '@custodian/runtime-config';

/** The part of OidcLoginClient a browser-login endpoint needs (a port, so tests and other IdP clients can stand in). */
export type HumanLoginClient = Pick<OidcLoginClient, 'beginLogin' | 'completeLogin'>;

export interface ConfiguredHumanLogin {
  readonly client: HumanLoginClient;
  /** Where the IdP sends the browser back (the API's `/auth/callback` as the browser sees it). */
  readonly redirectUri: string;
  /** How long a started login may take; also the lifetime of the login-binding cookie. */
  readonly loginTtlMs: number;
}

export interface ConfiguredIdentity {
  /** Undefined when no issuer is configured: every token, session and login is refused (fail closed). */
  readonly verifier: AccessTokenVerifier | undefined;
  /** Undefined when `identity.login` is absent (or no issuer is configured). */
  readonly login: ConfiguredHumanLogin | undefined;
  readonly sessions: HumanSessionStore;
  /** Issuers whose access tokens are accepted. */
  readonly issuers: readonly string[];
  /** What operators must know at start-up (e.g. "refuses every request"); logged by the services that use identity. */
  readonly notices: readonly string[];
}

export interface ConfiguredIdentityOptions {
  /** Environment for `fromEnv` secret references (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly logger?: IdentityLogger;
  readonly fetch?: FetchFunction;
}

export const NO_ISSUER_NOTICE =
  'no identity issuer is configured (identity.issuers): the API refuses every /v1 request (401) and human login is disabled until one is configured';

/** Identity with nothing configured: refuses everything. */
export function failClosedIdentity(): ConfiguredIdentity {
  return { verifier: undefined, login: undefined, sessions: new InMemoryHumanSessionStore(), issuers: [], notices: [NO_ISSUER_NOTICE] };
}

/**
 * Identity adapters from `loaded.config.identity`. Throws ConfigError (exit 2 in the hosts) when
 * an issuer is unusable or the login client secret reference does not resolve; the secret is
 * resolved here, at the point of use, and never kept in the configuration object.
 */
export function configuredIdentity(loaded: LoadedConfig, options: ConfiguredIdentityOptions = {}): ConfiguredIdentity {
  const settings = loaded.config.identity;
  if (settings.issuers.length === 0) return failClosedIdentity();
  const secretContext = { baseDir: loaded.baseDir, ...(options.env ? { env: options.env } : {}) };
  const issuers: IssuerConfig[] = settings.issuers.map((issuer, index) => ({
    issuer: issuer.issuer,
    audiences: issuer.audiences,
    algorithms: issuer.algorithms,
    clockSkewSeconds: issuer.clockSkewSeconds,
    maxTokenLifetimeSeconds: issuer.maxTokenLifetimeSeconds,
    ...(issuer.jwksUri !== undefined ? { jwksUri: issuer.jwksUri } : {}),
    ...(issuer.tokenTypes !== undefined ? { tokenTypes: issuer.tokenTypes } : {}),
    ...(issuer.claims !== undefined ? { claims: claimMapping(issuer.claims) } : {}),
    ...(issuer.introspection !== undefined ? { introspection: introspectionOf(issuer.introspection, `identity.issuers[${index}].introspection.clientSecret`, secretContext) } : {}),
  }));
  const verifier = asConfigError('identity.issuers', () =>
    new OidcAccessTokenVerifier({
      issuers,
      maxTokenBytes: settings.maxTokenBytes,
      httpTimeoutMs: settings.httpTimeoutMs,
      jwksRefreshCooldownMs: settings.jwksRefreshCooldownMs,
      jwksMaxAgeMs: settings.jwksMaxAgeMs,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
  );
  const notices: string[] = [];
  let login: ConfiguredHumanLogin | undefined;
  const loginSettings = settings.login;
  if (loginSettings) {
    const clientSecret = loginSettings.clientSecret === undefined ? undefined : resolveSecret(loginSettings.clientSecret, secretContext);
    const trustsLoginIssuer = verifier.issuerUrls.includes(loginSettings.issuer);
    const client = asConfigError('identity.login', () =>
      new OidcLoginClient({
        issuer: loginSettings.issuer,
        clientId: loginSettings.clientId,
        redirectUri: loginSettings.redirectUri,
        scope: loginSettings.scope,
        loginTtlMs: loginSettings.loginTtlMs,
        httpTimeoutMs: settings.httpTimeoutMs,
        ...(clientSecret !== undefined ? { clientSecret } : {}),
        ...(loginSettings.resource !== undefined ? { resource: loginSettings.resource } : {}),
        ...(loginSettings.claims !== undefined ? { claims: claimMapping(loginSettings.claims) } : {}),
        // Groups may come from the access token of the same exchange, checked like any bearer token.
        ...(trustsLoginIssuer ? { accessTokenVerifier: verifier } : {}),
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    );
    login = { client, redirectUri: loginSettings.redirectUri, loginTtlMs: loginSettings.loginTtlMs };
    if (new URL(loginSettings.redirectUri).pathname !== '/auth/callback') {
      notices.push(`identity.login.redirectUri does not end in /auth/callback: it must reach the API's callback route (directly or through a proxy)`);
    }
  }
  const sessions = new InMemoryHumanSessionStore(loginSettings ? { maxLifetimeMs: loginSettings.sessionMaxLifetimeMs } : {});
  return { verifier, login, sessions, issuers: verifier.issuerUrls, notices };
}

/**
 * The introspection client: its secret is checked once now (a reference that does not resolve is a
 * configuration error at start-up) and read again, asynchronously, at each request (rotation).
 */
function introspectionOf(
  settings: NonNullable<LoadedConfig['config']['identity']['issuers'][number]['introspection']>,
  key: string,
  secretContext: { readonly baseDir: string; readonly env?: Readonly<Record<string, string | undefined>> },
): IntrospectionConfig {
  try {
    resolveSecret(settings.clientSecret, secretContext);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `${key}: ${error.message}`);
    throw error;
  }
  return {
    clientId: settings.clientId,
    clientSecret: () => resolveSecretAsync(settings.clientSecret, secretContext),
    recheckIntervalSeconds: settings.recheckIntervalSeconds,
    ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
  };
}

function asConfigError<T>(key: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof IdentityConfigError || error instanceof IdentityError) throw new ConfigError('CONFIG_INVALID', `${key}: ${error.message}`);
    throw error;
  }
}

function claimMapping(settings: IdentityClaimMapping): ClaimMapping {
  const kindValues: Record<string, IdentityKind> = {};
  for (const [value, kind] of Object.entries(settings.kindValues ?? {})) if (kind !== undefined) kindValues[value] = kind;
  return {
    subjectClaim: settings.subjectClaim,
    groupsClaim: settings.groupsClaim,
    kindClaim: settings.kindClaim,
    ...(settings.kindValues !== undefined ? { kindValues } : {}),
    ...(settings.defaultKind !== undefined ? { defaultKind: settings.defaultKind } : {}),
  };
}

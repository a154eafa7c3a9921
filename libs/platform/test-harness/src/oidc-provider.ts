// A real OpenID Provider (the `oidc-provider` package) in-process on a free loopback port.
// It issues JWT access tokens (RS256 or ES256, JWKS published) for test identities carrying
// `groups` and `custodian_kind` claims. Local-process (in-process) backend only.
//
// Plain http is used because the issuer is only reachable on 127.0.0.1; nothing is proxied,
// so the `proxy` setting stays off.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import type { Adapter, AdapterPayload, ClientMetadata, Configuration, KoaContextWithOIDC, ResourceServer } from 'oidc-provider';
import { HarnessError, freePort, registerService, unregisterService, type StartedService } from './service.js';

export type CustodianKind = 'human' | 'agent' | 'service';
export type AccessTokenAlg = 'RS256' | 'ES256';

export interface OidcIdentityClaims {
  readonly groups?: readonly string[];
  /** Additional claims copied into the access token (cannot override registered claims such as sub/iss/aud). */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** A machine identity: a confidential client using client_credentials; its token's `sub` is the client id. */
export interface OidcClientRegistration extends OidcIdentityClaims {
  readonly clientId: string;
  /** Default: random. */
  readonly clientSecret?: string;
  /** Default `agent`. */
  readonly kind?: CustodianKind;
  /** Scopes the client may request (default: all configured scopes). */
  readonly scopes?: readonly string[];
  /** Lifetime of this client's access tokens (default: the provider's). */
  readonly accessTokenTtlSeconds?: number;
  readonly accessTokenAlg?: AccessTokenAlg;
}

export interface RegisteredOidcClient {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** A human end-user, who logs in through the authorization-code flow. */
export interface OidcUserRegistration extends OidcIdentityClaims {
  readonly subject: string;
  /** Default `human`. */
  readonly kind?: CustodianKind;
}

export interface PublicClientRegistration {
  readonly clientId: string;
  readonly redirectUris: readonly string[];
}

export interface StartOidcProviderOptions {
  /** Scopes the provider knows besides openid/offline_access (default `['custodian:access']`). */
  readonly scopes?: readonly string[];
  /** Audience (resource indicator) used when a request names none (default `https://gateway.custodian.test`). */
  readonly defaultAudience?: string;
  /** Default access token lifetime (default 300 s). */
  readonly accessTokenTtlSeconds?: number;
  /** Default signing algorithm for access tokens (default RS256; both keys are always published). */
  readonly accessTokenAlg?: AccessTokenAlg;
  readonly clients?: readonly OidcClientRegistration[];
  readonly users?: readonly OidcUserRegistration[];
  /**
   * Resource indicators (audiences) whose access tokens are opaque (a random reference the provider
   * stores, checked through its introspection endpoint, RFC 7662) instead of JWTs.
   */
  readonly opaqueAudiences?: readonly string[];
}

export interface IssueTokenOptions {
  readonly clientId: string;
  /** Space-separated scopes (default: none requested, so none granted). */
  readonly scope?: string;
  /** Resource indicator (RFC 8707) = the `aud` of the JWT (default: the provider's default audience). */
  readonly audience?: string;
  /** Overrides the lifetime of this one token (see TTL_OVERRIDE_HEADER). */
  readonly ttlSeconds?: number;
}

export interface IssuedToken {
  readonly accessToken: string;
  readonly tokenType: string;
  readonly expiresIn: number;
  readonly scope?: string;
  readonly idToken?: string;
}

export interface LoginOptions {
  readonly subject: string;
  /** Default: the built-in public client. */
  readonly clientId?: string;
  readonly redirectUri?: string;
  /** Default `openid` plus every configured scope. */
  readonly scope?: string;
  readonly audience?: string;
}

export interface AuthorizationCodeClientConfig {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly scope: string;
  readonly audience: string;
  readonly codeChallengeMethod: 'S256';
}

export interface StartedOidcProvider extends StartedService {
  readonly issuer: string;
  readonly port: number;
  readonly discoveryUrl: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly authorizationEndpoint: string;
  /** RFC 7662: answers whether a token is active (clients authenticate with client_secret_basic). */
  readonly introspectionEndpoint: string;
  /** RFC 7009. */
  readonly revocationEndpoint: string;
  readonly defaultAudience: string;
  readonly scopes: readonly string[];
  /** Public (no secret) authorization-code + PKCE client for human login tests. */
  readonly authorizationCodeClient: AuthorizationCodeClientConfig;
  /** The underlying provider, for tests that need more than this wrapper offers. */
  readonly provider: Provider;
  registerClient(registration: OidcClientRegistration): RegisteredOidcClient;
  registerPublicClient(registration: PublicClientRegistration): void;
  registerUser(registration: OidcUserRegistration): void;
  /** Performs a real client_credentials request over HTTP (client_secret_basic). */
  issueToken(options: IssueTokenOptions): Promise<IssuedToken>;
  /** Revokes a token through the revocation endpoint over HTTP, as the client it was issued to (client_secret_basic). */
  revokeToken(options: { readonly clientId: string; readonly token: string }): Promise<void>;
  /**
   * Headless human login: authorization request with PKCE, the provider's development
   * login and consent screens submitted over HTTP, then the code exchanged for tokens.
   * Only registered users can log in.
   */
  loginWithAuthorizationCode(options: LoginOptions): Promise<IssuedToken>;
}

/**
 * Test-only header honoured by this provider's token endpoint to set one token's lifetime
 * (tests need e.g. tokens whose lifetime exceeds what a verifier accepts).
 */
export const TTL_OVERRIDE_HEADER = 'x-custodian-test-token-ttl';

export class OidcRequestError extends HarnessError {
  constructor(
    message: string,
    readonly status: number,
    readonly oauthError: string | undefined,
  ) {
    super('HARNESS_REQUEST_FAILED', message);
  }
}

const DEFAULT_PUBLIC_CLIENT_ID = 'custodian-cli';
const DEFAULT_REDIRECT_URI = 'http://127.0.0.1/callback';

interface ClientRecord {
  readonly registration: OidcClientRegistration;
  readonly metadata: ClientMetadata;
}

/** In-memory storage for the provider; clients come from the harness's own registry. */
function createAdapterFactory(clients: Map<string, ClientRecord>, publicClients: Map<string, ClientMetadata>): (name: string) => Adapter {
  const stores = new Map<string, Map<string, { payload: AdapterPayload; expiresAt?: number }>>();
  const storeFor = (name: string): Map<string, { payload: AdapterPayload; expiresAt?: number }> => {
    let store = stores.get(name);
    if (!store) stores.set(name, (store = new Map()));
    return store;
  };
  return (name: string): Adapter => {
    const store = storeFor(name);
    const live = (id: string): AdapterPayload | undefined => {
      const entry = store.get(id);
      if (!entry) return undefined;
      if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
        store.delete(id);
        return undefined;
      }
      return entry.payload;
    };
    return {
      async upsert(id, payload, expiresIn) {
        store.set(id, { payload, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) });
      },
      async find(id) {
        if (name === 'Client') return clients.get(id)?.metadata ?? publicClients.get(id);
        return live(id);
      },
      async findByUid(uid) {
        for (const id of store.keys()) if (live(id)?.uid === uid) return live(id);
        return undefined;
      },
      async findByUserCode(userCode) {
        for (const id of store.keys()) if (live(id)?.userCode === userCode) return live(id);
        return undefined;
      },
      async consume(id) {
        const payload = live(id);
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(id);
      },
      async revokeByGrantId(grantId) {
        for (const store of stores.values()) {
          for (const [id, entry] of store) if (entry.payload.grantId === grantId) store.delete(id);
        }
      },
    };
  };
}

function signingKeys(): { jwks: { keys: Record<string, unknown>[] } } {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const suffix = randomBytes(4).toString('hex');
  return {
    jwks: {
      keys: [
        { ...rsa, kid: `rs256-${suffix}`, alg: 'RS256', use: 'sig' },
        { ...ec, kid: `es256-${suffix}`, alg: 'ES256', use: 'sig' },
      ],
    },
  };
}

function ttlOverride(ctx: KoaContextWithOIDC | undefined): number | undefined {
  const raw = ctx?.get(TTL_OVERRIDE_HEADER);
  if (!raw) return undefined;
  const seconds = Number(raw);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}

function identityClaims(kind: CustodianKind, identity: OidcIdentityClaims): Record<string, unknown> {
  return { ...identity.claims, groups: [...(identity.groups ?? [])], custodian_kind: kind };
}

function base64url(buffer: Buffer): string {
  return buffer.toString('base64url');
}

/** Minimal cookie jar for the headless login (one origin, no expiry handling needed). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (pair === undefined || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(header)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export async function startOidcProvider(options: StartOidcProviderOptions = {}): Promise<StartedOidcProvider> {
  const host = '127.0.0.1';
  const port = await freePort();
  const issuer = `http://${host}:${port}`;
  const scopes = [...(options.scopes ?? ['custodian:access'])];
  const defaultAudience = options.defaultAudience ?? 'https://gateway.custodian.test';
  const defaultTtl = options.accessTokenTtlSeconds ?? 300;
  const defaultAlg = options.accessTokenAlg ?? 'RS256';
  const opaqueAudiences = new Set(options.opaqueAudiences ?? []);

  const clients = new Map<string, ClientRecord>();
  const publicClients = new Map<string, ClientMetadata>();
  const users = new Map<string, OidcUserRegistration>();

  const registerClient = (registration: OidcClientRegistration): RegisteredOidcClient => {
    const clientSecret = registration.clientSecret ?? randomBytes(24).toString('base64url');
    const metadata: ClientMetadata = {
      client_id: registration.clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: (registration.scopes ?? scopes).join(' '),
    };
    clients.set(registration.clientId, { registration: { ...registration, clientSecret }, metadata });
    return { clientId: registration.clientId, clientSecret };
  };
  const registerPublicClient = (registration: PublicClientRegistration): void => {
    publicClients.set(registration.clientId, {
      client_id: registration.clientId,
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [...registration.redirectUris],
      scope: ['openid', 'offline_access', ...scopes].join(' '),
    });
  };
  const registerUser = (registration: OidcUserRegistration): void => {
    users.set(registration.subject, registration);
  };
  for (const client of options.clients ?? []) registerClient(client);
  for (const user of options.users ?? []) registerUser(user);
  registerPublicClient({ clientId: DEFAULT_PUBLIC_CLIENT_ID, redirectUris: [DEFAULT_REDIRECT_URI] });

  const tokenTtl = (ctx: KoaContextWithOIDC | undefined, clientId: string | undefined): number =>
    ttlOverride(ctx) ?? (clientId ? clients.get(clientId)?.registration.accessTokenTtlSeconds : undefined) ?? defaultTtl;

  const configuration: Configuration = {
    adapter: createAdapterFactory(clients, publicClients),
    jwks: signingKeys().jwks as Configuration['jwks'],
    scopes: ['openid', 'offline_access', ...scopes],
    claims: { openid: ['sub', 'groups', 'custodian_kind'] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    features: {
      // The development login accepts any password; findAccount only knows registered users.
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      // Explicit policies (the defaults' behaviour, without their notice on every call): any
      // confidential client may introspect; a client revokes only its own tokens.
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? defaultAudience,
        useGrantedResource: () => true,
        // A test IdP: any absolute URI is a valid audience, so tests can mint wrong-audience tokens.
        getResourceServerInfo: (_ctx, resourceIndicator, client): ResourceServer => {
          const alg = clients.get(client.clientId)?.registration.accessTokenAlg ?? defaultAlg;
          if (opaqueAudiences.has(resourceIndicator)) return { scope: scopes.join(' '), audience: resourceIndicator, accessTokenFormat: 'opaque' };
          return {
            scope: scopes.join(' '),
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
    findAccount: (_ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: () => ({ sub, ...identityClaims(user.kind ?? 'human', user) }) };
    },
    extraTokenClaims: (_ctx, token) => {
      if (token.kind === 'ClientCredentials' && token.clientId) {
        const record = clients.get(token.clientId);
        return record ? identityClaims(record.registration.kind ?? 'agent', record.registration) : undefined;
      }
      if (token.kind === 'AccessToken' && token.accountId) {
        const user = users.get(token.accountId);
        return user ? identityClaims(user.kind ?? 'human', user) : undefined;
      }
      return undefined;
    },
    ttl: {
      // Fixed lifetimes for the login artefacts (the defaults warn on every use).
      Interaction: 600,
      Session: 3_600,
      Grant: 3_600,
      IdToken: 3_600,
      AuthorizationCode: 60,
      RefreshToken: 86_400,
      ClientCredentials: (ctx, token) => tokenTtl(ctx, token.clientId),
      AccessToken: (ctx, token) => tokenTtl(ctx, token.clientId),
    },
  };

  const provider = new Provider(issuer, configuration);
  // Surface provider-internal failures in the test output instead of losing them.
  provider.on('server_error', (_ctx: unknown, error: Error) => console.error('[oidc-provider] server_error', error));

  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new HarnessError('HARNESS_START_FAILED', `oidc-provider could not listen on ${issuer}`, { cause: error })));
    server.listen(port, host, () => resolve());
  });

  const discoveryUrl = `${issuer}/.well-known/openid-configuration`;
  const jwksUri = `${issuer}/jwks`;
  const tokenEndpoint = `${issuer}/token`;
  const authorizationEndpoint = `${issuer}/auth`;
  const introspectionEndpoint = `${issuer}/token/introspection`;
  const revocationEndpoint = `${issuer}/token/revocation`;

  const tokenRequest = async (body: URLSearchParams, headers: Record<string, string>): Promise<IssuedToken> => {
    const response = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body,
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (!response.ok || typeof json['access_token'] !== 'string') {
      const oauthError = typeof json['error'] === 'string' ? json['error'] : undefined;
      throw new OidcRequestError(
        `token request failed (${response.status}): ${oauthError ?? ''} ${String(json['error_description'] ?? '')}`.trim(),
        response.status,
        oauthError,
      );
    }
    return {
      accessToken: json['access_token'],
      tokenType: String(json['token_type']),
      expiresIn: Number(json['expires_in']),
      ...(typeof json['scope'] === 'string' ? { scope: json['scope'] } : {}),
      ...(typeof json['id_token'] === 'string' ? { idToken: json['id_token'] } : {}),
    };
  };

  const issueToken = async (request: IssueTokenOptions): Promise<IssuedToken> => {
    const record = clients.get(request.clientId);
    if (!record?.registration.clientSecret) {
      throw new HarnessError('HARNESS_UNAVAILABLE', `client ${request.clientId} is not registered with the test OIDC provider`);
    }
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: request.audience ?? defaultAudience });
    if (request.scope) body.set('scope', request.scope);
    // RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding.
    const basic = Buffer.from(
      `${encodeURIComponent(request.clientId)}:${encodeURIComponent(record.registration.clientSecret)}`,
    ).toString('base64');
    return tokenRequest(body, {
      authorization: `Basic ${basic}`,
      ...(request.ttlSeconds !== undefined ? { [TTL_OVERRIDE_HEADER]: String(request.ttlSeconds) } : {}),
    });
  };

  const revokeToken = async ({ clientId, token }: { readonly clientId: string; readonly token: string }): Promise<void> => {
    const record = clients.get(clientId);
    if (!record?.registration.clientSecret) throw new HarnessError('HARNESS_UNAVAILABLE', `client ${clientId} is not registered with the test OIDC provider`);
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(record.registration.clientSecret)}`).toString('base64');
    const response = await fetch(revocationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });
    await response.body?.cancel();
    if (!response.ok) throw new OidcRequestError(`revocation failed (${response.status})`, response.status, undefined);
  };

  const loginWithAuthorizationCode = async (login: LoginOptions): Promise<IssuedToken> => {
    if (!users.has(login.subject)) throw new HarnessError('HARNESS_UNAVAILABLE', `user ${login.subject} is not registered`);
    const clientId = login.clientId ?? DEFAULT_PUBLIC_CLIENT_ID;
    const redirectUri = login.redirectUri ?? publicClients.get(clientId)?.redirect_uris?.[0] ?? DEFAULT_REDIRECT_URI;
    const audience = login.audience ?? defaultAudience;
    const verifier = base64url(randomBytes(32));
    const challenge = base64url(createHash('sha256').update(verifier).digest());
    const state = base64url(randomBytes(12));
    const authUrl = new URL(authorizationEndpoint);
    authUrl.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: login.scope ?? ['openid', ...scopes].join(' '),
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
      nonce: base64url(randomBytes(12)),
      resource: audience,
    }).toString();

    const jar = new CookieJar();
    let next: { url: string; init: RequestInit } = { url: authUrl.toString(), init: { method: 'GET' } };
    for (let hop = 0; hop < 20; hop++) {
      const response = await fetch(next.url, {
        ...next.init,
        redirect: 'manual',
        headers: { ...(next.init.headers as Record<string, string> | undefined), cookie: jar.header() },
      });
      jar.store(response);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        const target = new URL(location, next.url);
        if (target.toString().startsWith(redirectUri)) {
          const error = target.searchParams.get('error');
          if (error) throw new OidcRequestError(`authorization failed: ${error} ${target.searchParams.get('error_description') ?? ''}`, 400, error);
          const code = target.searchParams.get('code');
          if (!code || target.searchParams.get('state') !== state) throw new HarnessError('HARNESS_REQUEST_FAILED', `unexpected redirect ${target.toString()}`);
          const body = new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: redirectUri,
            code_verifier: verifier,
            client_id: clientId,
            resource: audience,
          });
          return tokenRequest(body, {});
        }
        next = { url: target.toString(), init: { method: 'GET' } };
        continue;
      }
      const html = await response.text();
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
      if (response.status !== 200 || prompt === undefined) {
        throw new HarnessError('HARNESS_REQUEST_FAILED', `login flow stopped at ${next.url} (${response.status}): ${html.slice(0, 500)}`);
      }
      // The development interaction pages post back to their own URL.
      const form = new URLSearchParams({ prompt });
      if (prompt === 'login') {
        form.set('login', login.subject);
        form.set('password', 'unused-by-dev-interactions');
      }
      next = {
        url: next.url,
        init: { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      };
    }
    throw new HarnessError('HARNESS_REQUEST_FAILED', 'login flow did not finish within 20 requests');
  };

  let stopped: Promise<void> | undefined;
  const service: StartedOidcProvider = {
    name: 'oidc-provider',
    backend: 'process',
    issuer,
    port,
    discoveryUrl,
    jwksUri,
    tokenEndpoint,
    authorizationEndpoint,
    introspectionEndpoint,
    revocationEndpoint,
    defaultAudience,
    scopes,
    authorizationCodeClient: {
      clientId: DEFAULT_PUBLIC_CLIENT_ID,
      redirectUri: DEFAULT_REDIRECT_URI,
      authorizationEndpoint,
      tokenEndpoint,
      scope: ['openid', ...scopes].join(' '),
      audience: defaultAudience,
      codeChallengeMethod: 'S256',
    },
    provider,
    registerClient,
    registerPublicClient,
    registerUser,
    issueToken,
    revokeToken,
    loginWithAuthorizationCode,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).finally(() => unregisterService(service));
      return stopped;
    },
  };
  return registerService(service);
}


// A development OpenID Provider for the embedded demo: discovery, JWKS and a client-credentials
// token endpoint on loopback, signing RS256 JWT access tokens for a few demo identities. It is
// not an identity provider for real use: fixed demo secrets, no consent, no refresh, loopback only.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

export interface DemoIdentity {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly kind: 'human' | 'agent' | 'service';
  readonly groups: readonly string[];
  readonly description: string;
}

export interface DevOidcIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly identities: readonly DemoIdentity[];
  /** A fresh access token for a demo identity (what its token endpoint would return). */
  mint(clientId: string, ttlSeconds?: number): Promise<string>;
  /** Lets the public login client (`DEMO_LOGIN_CLIENT_ID`) redirect to `uri` (exact match) after a login. */
  allowRedirectUri(uri: string): void;
  stop(): Promise<void>;
}

export class DemoEnvironmentError extends Error {
  override readonly name = 'DemoEnvironmentError';
  constructor(
    readonly code: 'DEMO_NOT_LOOPBACK' | 'DEMO_UNKNOWN_IDENTITY' | 'DEMO_START_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const TOKEN_TTL_SECONDS = 3_600;
/** The dashboard's public client (authorization code + PKCE, no secret). */
export const DEMO_LOGIN_CLIENT_ID = 'custodian-dashboard';
const CODE_TTL_MS = 60_000;
const MAX_PENDING_CODES = 1_000;

interface PendingCode {
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly nonce: string | undefined;
  readonly subject: string;
  readonly expiresAt: number;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The demo's login page: one button per human demo identity (no password: a development issuer on
 * loopback). The form carries the authorization request back to POST /authorize.
 */
function loginPage(params: URLSearchParams, humans: readonly DemoIdentity[]): string {
  const hidden = ['client_id', 'redirect_uri', 'response_type', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method']
    .map((name) => `<input type="hidden" name="${name}" value="${escapeHtml(params.get(name) ?? '')}">`)
    .join('');
  const buttons = humans
    .map((h) => `<p><button type="submit" name="identity" value="${escapeHtml(h.clientId)}">Sign in as ${escapeHtml(h.clientId)}</button> — ${escapeHtml(h.description)} (groups: ${escapeHtml(h.groups.join(', '))})</p>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Custodian demo sign-in</title></head><body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto"><h1>Custodian demo identity provider</h1><p>A development issuer for the demo only: pick who you are.</p><form method="post" action="/authorize">${hidden}${buttons}</form></body></html>`;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 8192) throw new Error('request too large');
  }
  return body;
}

export async function startDevOidcIssuer(options: { host?: string; port?: number; audience: string; identities: readonly DemoIdentity[] }): Promise<DevOidcIssuer> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') throw new DemoEnvironmentError('DEMO_NOT_LOOPBACK', 'the development issuer only listens on loopback');
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = randomUUID();
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const byId = new Map(options.identities.map((identity) => [identity.clientId, identity]));
  let issuer = '';
  const redirectUris = new Set<string>();
  const codes = new Map<string, PendingCode>();
  const humans = options.identities.filter((identity) => identity.kind === 'human');
  /** The authorization request's own errors; a bad redirect_uri is never redirected to. */
  const checkAuthorization = (params: URLSearchParams): string | undefined => {
    if (params.get('client_id') !== DEMO_LOGIN_CLIENT_ID) return 'unknown client_id';
    if (!redirectUris.has(params.get('redirect_uri') ?? '')) return 'redirect_uri not registered';
    if (params.get('response_type') !== 'code') return 'response_type must be code';
    if (params.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(params.get('code_challenge') ?? '')) return 'PKCE (S256) is required';
    if (!(params.get('scope') ?? '').split(' ').includes('openid')) return 'scope must include openid';
    return undefined;
  };
  const idToken = async (identity: DemoIdentity, nonce: string | undefined): Promise<string> =>
    new SignJWT({ groups: [...identity.groups], ...(nonce ? { nonce } : {}), auth_time: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setSubject(identity.clientId)
      .setAudience(DEMO_LOGIN_CLIENT_ID)
      .setIssuedAt()
      .setExpirationTime(`${TOKEN_TTL_SECONDS}s`)
      .sign(privateKey);
  const mint = async (clientId: string, ttlSeconds = TOKEN_TTL_SECONDS): Promise<string> => {
    const identity = byId.get(clientId);
    if (!identity) throw new DemoEnvironmentError('DEMO_UNKNOWN_IDENTITY', `no demo identity ${clientId}`);
    return new SignJWT({ groups: [...identity.groups], custodian_kind: identity.kind, client_id: clientId })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setSubject(clientId)
      .setAudience(options.audience)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .setJti(randomUUID())
      .sign(privateKey);
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', issuer).pathname;
      if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
        return json(res, 200, {
          issuer,
          jwks_uri: `${issuer}/jwks`,
          token_endpoint: `${issuer}/token`,
          authorization_endpoint: `${issuer}/authorize`,
          grant_types_supported: ['client_credentials', 'authorization_code'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'token'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
          scopes_supported: ['openid'],
          subject_types_supported: ['public'],
        });
      }
      if (path === '/authorize' && (req.method === 'GET' || req.method === 'POST')) {
        const params = req.method === 'GET' ? new URL(req.url ?? '/', issuer).searchParams : new URLSearchParams(await readBody(req));
        const problem = checkAuthorization(params);
        if (problem) {
          res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
          return res.end(`invalid authorization request: ${problem}\n`);
        }
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" });
          return res.end(loginPage(params, humans));
        }
        const identity = humans.find((h) => h.clientId === params.get('identity'));
        if (!identity) return json(res, 400, { error: 'invalid_request', error_description: 'pick a human demo identity' });
        if (codes.size >= MAX_PENDING_CODES) for (const [code, pending] of codes) if (pending.expiresAt < Date.now()) codes.delete(code);
        if (codes.size >= MAX_PENDING_CODES) return json(res, 503, { error: 'temporarily_unavailable' });
        const code = randomBytes(32).toString('base64url');
        const redirectUri = params.get('redirect_uri') ?? '';
        codes.set(code, { redirectUri, codeChallenge: params.get('code_challenge') ?? '', nonce: params.get('nonce') ?? undefined, subject: identity.clientId, expiresAt: Date.now() + CODE_TTL_MS });
        const target = new URL(redirectUri);
        target.searchParams.set('code', code);
        if (params.get('state') !== null) target.searchParams.set('state', params.get('state') ?? '');
        res.writeHead(302, { location: target.toString(), 'cache-control': 'no-store' });
        return res.end();
      }
      if (req.method === 'GET' && path === '/jwks') return json(res, 200, { keys: [jwk] });
      if (req.method === 'POST' && path === '/token') {
        const form = new URLSearchParams(await readBody(req));
        let clientId = form.get('client_id') ?? '';
        let secret = form.get('client_secret') ?? '';
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
        if (basic?.[1]) [clientId = '', secret = ''] = Buffer.from(basic[1], 'base64').toString('utf8').split(':').map(decodeURIComponent);
        if (form.get('grant_type') === 'authorization_code') {
          // Public client: no secret; PKCE proves it is the browser that started the login.
          const code = form.get('code') ?? '';
          const pending = codes.get(code);
          codes.delete(code);
          if (!pending || pending.expiresAt < Date.now() || (clientId !== '' && clientId !== DEMO_LOGIN_CLIENT_ID)) return json(res, 400, { error: 'invalid_grant' });
          const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
          if (challenge !== pending.codeChallenge || form.get('redirect_uri') !== pending.redirectUri) return json(res, 400, { error: 'invalid_grant' });
          const human = byId.get(pending.subject);
          if (!human) return json(res, 400, { error: 'invalid_grant' });
          return json(res, 200, { access_token: await mint(human.clientId), id_token: await idToken(human, pending.nonce), token_type: 'Bearer', expires_in: TOKEN_TTL_SECONDS, scope: 'openid' });
        }
        const identity = byId.get(clientId);
        if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type' });
        if (!identity || identity.clientSecret !== secret) return json(res, 401, { error: 'invalid_client' });
        return json(res, 200, { access_token: await mint(clientId), token_type: 'Bearer', expires_in: TOKEN_TTL_SECONDS });
      }
      json(res, 404, { error: 'not_found' });
    })().catch(() => json(res, 400, { error: 'invalid_request' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  issuer = `http://${host === '::1' ? '[::1]' : host}:${port}`;
  return {
    issuer,
    audience: options.audience,
    identities: options.identities,
    mint,
    allowRedirectUri: (uri) => void redirectUris.add(uri),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// A development OpenID Provider for the embedded demo: discovery, JWKS and a client-credentials
// token endpoint on loopback, signing RS256 JWT access tokens for a few demo identities. It is
// not an identity provider for real use: fixed demo secrets, no consent, no refresh, loopback only.
import { randomUUID } from 'node:crypto';
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
        return json(res, 200, { issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token`, grant_types_supported: ['client_credentials'], id_token_signing_alg_values_supported: ['RS256'], response_types_supported: ['token'], subject_types_supported: ['public'] });
      }
      if (req.method === 'GET' && path === '/jwks') return json(res, 200, { keys: [jwk] });
      if (req.method === 'POST' && path === '/token') {
        const form = new URLSearchParams(await readBody(req));
        let clientId = form.get('client_id') ?? '';
        let secret = form.get('client_secret') ?? '';
        const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
        if (basic?.[1]) [clientId = '', secret = ''] = Buffer.from(basic[1], 'base64').toString('utf8').split(':').map(decodeURIComponent);
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
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

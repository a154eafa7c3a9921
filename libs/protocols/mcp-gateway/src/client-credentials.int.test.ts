// The gateway's own client-credentials token, against the real OIDC provider of the test harness:
// client_secret_basic (default) and client_secret_post. oidc-provider accepts either secret method
// for a confidential client, so the method is observed at its token endpoint (its grant.success event).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { ClientCredentialsToken, type ClientSecretMethod } from './client-credentials.js';

/** How each granted token request authenticated: the Basic header, or client_secret in the form body. */
interface TokenRequestLog {
  readonly clientId: string | undefined;
  readonly basicHeader: boolean;
  readonly secretInBody: boolean;
}

describe('ClientCredentialsToken', () => {
  let oidc: StartedOidcProvider;
  let secret: string;
  const requests: TokenRequestLog[] = [];
  beforeAll(async () => {
    oidc = await startOidcProvider();
    secret = oidc.registerClient({ clientId: 'custodian-gateway', kind: 'service' }).clientSecret;
    oidc.provider.on('grant.success', (ctx) => {
      requests.push({ clientId: ctx.oidc.client?.clientId, basicHeader: /^Basic /i.test(ctx.headers.authorization ?? ''), secretInBody: typeof ctx.oidc.params?.['client_secret'] === 'string' });
    });
  }, 60_000);
  afterAll(async () => {
    await oidc?.stop();
  });

  const token = (authMethod?: ClientSecretMethod, clientSecret = () => secret) =>
    new ClientCredentialsToken({ issuer: oidc.issuer, clientId: 'custodian-gateway', clientSecret, clientSecretRef: 'env:GW_SECRET', resource: 'https://upstream.test', ...(authMethod ? { authMethod } : {}) });

  it('sends the secret as configured (Basic by default, in the body for client_secret_post) and gets a token for the upstream audience', async () => {
    const verifier = new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: ['https://upstream.test'] }] });
    for (const [method, expected] of [
      [undefined, { basicHeader: true, secretInBody: false }],
      ['client_secret_basic', { basicHeader: true, secretInBody: false }],
      ['client_secret_post', { basicHeader: false, secretInBody: true }],
    ] as const) {
      const before = requests.length;
      const access = await token(method).read();
      expect((await verifier.verify(access)).identity.subject).toBe('custodian-gateway');
      expect(requests.slice(before)).toEqual([{ clientId: 'custodian-gateway', ...expected }]);
    }
  });

  it('a wrong secret is refused by the IdP with either method; the error names neither the secret nor the answer', async () => {
    for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
      const refused = (await token(method, () => 'not-the-secret').read().then(() => new Error('granted'), (error: unknown) => error)) as Error;
      expect(refused).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect(refused.message).not.toContain('not-the-secret');
      expect(refused.message).not.toContain('invalid');
    }
  });
});

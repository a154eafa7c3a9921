// OIDC adapter for @custodian/identity: access-token verification against issuers' JWKS
// (jose), and human login with authorization code + PKCE (openid-client).
export { OidcAccessTokenVerifier, type OidcAccessTokenVerifierOptions } from './oidc-access-token-verifier.js';
export { OidcLoginClient, type OidcLoginClientOptions, type StartedLogin, type HumanLogin, type IdTokenSummary } from './oidc-login-client.js';
export type { IdentityLogger } from './issuer-key-set.js';
export type { FetchFunction } from './idp-http.js';
export { TokenIntrospector, isOpaqueToken } from './token-introspection.js';

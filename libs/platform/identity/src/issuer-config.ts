import type { Identity } from '@custodian/event-contracts';
import { IdentityConfigError } from './identity-error.js';

export type IdentityKind = Identity['kind'];

/** Asymmetric JWS algorithms a verifier may accept. `none` and HS* can never be configured. */
export const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export type AllowedAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

export const DEFAULT_ALGORITHMS: readonly AllowedAlgorithm[] = ['RS256', 'ES256', 'EdDSA', 'PS256'];
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
export const MAX_CLOCK_SKEW_SECONDS = 120;
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 3_600;
/** Upper bound on what an operator may configure: a day-long token is a standing credential. */
export const MAX_MAX_TOKEN_LIFETIME_SECONDS = 86_400;
export const DEFAULT_MAX_TOKEN_BYTES = 16 * 1024;

/** How a token's claims become an Identity. */
export interface ClaimMapping {
  /** Claim holding the subject (default `sub`). Dotted paths reach into objects. */
  readonly subjectClaim?: string;
  /** Claim holding the groups: a string (one group) or an array of strings; dotted paths like `realm_access.roles` (default `groups`). Absent means no groups. */
  readonly groupsClaim?: string;
  /** Claim holding the identity kind (default `custodian_kind`). */
  readonly kindClaim?: string;
  /** Maps kind-claim values to kinds (default: `human`, `agent`, `service` map to themselves). Unmapped values are refused. */
  readonly kindValues?: Readonly<Record<string, IdentityKind>>;
  /** Kind when the kind claim is absent. Unset means the claim is required (fail closed). */
  readonly defaultKind?: IdentityKind;
}

/**
 * Token introspection (RFC 7662) at one issuer: opaque access tokens are accepted by asking its
 * introspection endpoint, and sessions on them ask again periodically (revocation ends them).
 */
export interface IntrospectionConfig {
  /** The client Custodian authenticates as at the introspection endpoint (HTTP Basic). */
  readonly clientId: string;
  /** Reads that client's secret at each use (held by reference; never logged, never in an event). */
  readonly clientSecret: () => string | Promise<string>;
  /** Overrides the discovered `introspection_endpoint`. */
  readonly endpoint?: string;
  /** How often a session on an introspected token asks again whether it is still active (default 60 s). */
  readonly recheckIntervalSeconds?: number;
}

export const DEFAULT_INTROSPECTION_RECHECK_SECONDS = 60;

export interface ResolvedIntrospection {
  readonly clientId: string;
  readonly clientSecret: () => string | Promise<string>;
  readonly endpoint: string | undefined;
  readonly recheckIntervalMs: number;
}

/** One trusted OpenID Provider. */
export interface IssuerConfig {
  /** Exact `iss` value; also where discovery (`/.well-known/openid-configuration`) is read. */
  readonly issuer: string;
  /** Accepted `aud` values; a token must name at least one. */
  readonly audiences: readonly string[];
  /** Overrides the discovered `jwks_uri`. */
  readonly jwksUri?: string;
  readonly algorithms?: readonly AllowedAlgorithm[];
  readonly clockSkewSeconds?: number;
  /** Maximum `exp − iat` (default 3600 s). Tokens without `exp` or `iat` are refused. */
  readonly maxTokenLifetimeSeconds?: number;
  /** When set, the JWS `typ` header must be one of these (compared case-insensitively, `application/` prefix ignored), e.g. `['at+jwt']` (RFC 9068). */
  readonly tokenTypes?: readonly string[];
  readonly claims?: ClaimMapping;
  /** Accept opaque access tokens of this issuer through its introspection endpoint (at most one issuer: an opaque token does not name its issuer). */
  readonly introspection?: IntrospectionConfig;
}

export interface ResolvedClaimMapping {
  readonly subjectClaim: string;
  readonly groupsClaim: string;
  readonly kindClaim: string;
  readonly kindValues: Readonly<Record<string, IdentityKind>>;
  readonly defaultKind: IdentityKind | undefined;
}

export interface ResolvedIssuerConfig {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwksUri: string | undefined;
  readonly algorithms: readonly AllowedAlgorithm[];
  readonly clockSkewSeconds: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly tokenTypes: readonly string[] | undefined;
  readonly claims: ResolvedClaimMapping;
  readonly introspection: ResolvedIntrospection | undefined;
}

const KINDS: readonly IdentityKind[] = ['human', 'agent', 'service'];
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** https everywhere except loopback, where test and development IdPs live. */
export function isAllowedIdpUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.username || url.password || url.hash) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
}

function fail(issuer: string, message: string): never {
  throw new IdentityConfigError(`identity issuer ${JSON.stringify(issuer)}: ${message}`);
}

/** Applies defaults and refuses unsafe settings (at start-up, so a bad config never serves traffic). */
export function resolveIssuerConfig(config: IssuerConfig): ResolvedIssuerConfig {
  const { issuer } = config;
  if (typeof issuer !== 'string' || !isAllowedIdpUrl(issuer)) fail(String(issuer), 'must be an https URL (http only on loopback) without credentials or fragment');
  if (!Array.isArray(config.audiences) || config.audiences.length === 0 || config.audiences.some((a) => typeof a !== 'string' || a === '')) {
    fail(issuer, 'audiences must be a non-empty list of non-empty strings');
  }
  if (config.jwksUri !== undefined && !isAllowedIdpUrl(config.jwksUri)) fail(issuer, 'jwksUri must be an https URL (http only on loopback)');
  const algorithms = [...(config.algorithms ?? DEFAULT_ALGORITHMS)];
  if (algorithms.length === 0) fail(issuer, 'algorithms must not be empty');
  for (const alg of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)) {
      fail(issuer, `algorithm ${JSON.stringify(alg)} is not allowed (asymmetric algorithms only; never none or HS*)`);
    }
  }
  const clockSkewSeconds = config.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!Number.isInteger(clockSkewSeconds) || clockSkewSeconds < 0 || clockSkewSeconds > MAX_CLOCK_SKEW_SECONDS) {
    fail(issuer, `clockSkewSeconds must be an integer in 0..${MAX_CLOCK_SKEW_SECONDS}`);
  }
  const maxTokenLifetimeSeconds = config.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  if (!Number.isInteger(maxTokenLifetimeSeconds) || maxTokenLifetimeSeconds < 1 || maxTokenLifetimeSeconds > MAX_MAX_TOKEN_LIFETIME_SECONDS) {
    fail(issuer, `maxTokenLifetimeSeconds must be an integer in 1..${MAX_MAX_TOKEN_LIFETIME_SECONDS}`);
  }
  const introspection = config.introspection === undefined ? undefined : resolveIntrospection(issuer, config.introspection);
  return {
    issuer,
    introspection,
    audiences: [...config.audiences],
    jwksUri: config.jwksUri,
    algorithms,
    clockSkewSeconds,
    maxTokenLifetimeSeconds,
    tokenTypes: config.tokenTypes?.map(normaliseTokenType),
    claims: resolveClaimMapping(issuer, config.claims),
  };
}

function resolveIntrospection(issuer: string, config: IntrospectionConfig): ResolvedIntrospection {
  if (typeof config.clientId !== 'string' || config.clientId === '') fail(issuer, 'introspection.clientId must be a non-empty string');
  if (typeof config.clientSecret !== 'function') fail(issuer, 'introspection.clientSecret must be a secret reference');
  if (config.endpoint !== undefined && !isAllowedIdpUrl(config.endpoint)) fail(issuer, 'introspection.endpoint must be an https URL (http only on loopback)');
  const seconds = config.recheckIntervalSeconds ?? DEFAULT_INTROSPECTION_RECHECK_SECONDS;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_MAX_TOKEN_LIFETIME_SECONDS) {
    fail(issuer, `introspection.recheckIntervalSeconds must be an integer in 1..${MAX_MAX_TOKEN_LIFETIME_SECONDS}`);
  }
  return { clientId: config.clientId, clientSecret: config.clientSecret, endpoint: config.endpoint, recheckIntervalMs: seconds * 1000 };
}

/** Applies claim-mapping defaults and refuses unknown kinds or empty claim paths. */
export function resolveClaimMapping(issuer: string, mapping: ClaimMapping = {}): ResolvedClaimMapping {
  const kindValues = mapping.kindValues ?? { human: 'human', agent: 'agent', service: 'service' };
  for (const [value, kind] of Object.entries(kindValues)) {
    if (!KINDS.includes(kind)) fail(issuer, `kindValues[${JSON.stringify(value)}] must be one of ${KINDS.join(', ')}`);
  }
  if (mapping.defaultKind !== undefined && !KINDS.includes(mapping.defaultKind)) fail(issuer, `defaultKind must be one of ${KINDS.join(', ')}`);
  for (const [name, path] of [['subjectClaim', mapping.subjectClaim], ['groupsClaim', mapping.groupsClaim], ['kindClaim', mapping.kindClaim]] as const) {
    if (path !== undefined && (typeof path !== 'string' || path === '' || path.split('.').some((part) => part === ''))) {
      fail(issuer, `${name} must be a claim name or dotted path`);
    }
  }
  return {
    subjectClaim: mapping.subjectClaim ?? 'sub',
    groupsClaim: mapping.groupsClaim ?? 'groups',
    kindClaim: mapping.kindClaim ?? 'custodian_kind',
    kindValues: { ...kindValues },
    defaultKind: mapping.defaultKind,
  };
}

export function normaliseTokenType(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/** Resolves every issuer and refuses duplicates. */
export function resolveIssuerConfigs(configs: readonly IssuerConfig[]): ReadonlyMap<string, ResolvedIssuerConfig> {
  const resolved = new Map<string, ResolvedIssuerConfig>();
  for (const config of configs) {
    const issuer = resolveIssuerConfig(config);
    if (resolved.has(issuer.issuer)) fail(issuer.issuer, 'is configured twice');
    // An opaque token names no issuer: with two introspecting issuers it would be shown to one it was not issued by.
    const introspecting = [...resolved.values()].find((other) => other.introspection !== undefined);
    if (issuer.introspection && introspecting) fail(issuer.issuer, `has introspection configured, and so has ${JSON.stringify(introspecting.issuer)}: at most one issuer may accept opaque tokens`);
    resolved.set(issuer.issuer, issuer);
  }
  return resolved;
}

import type { Identity } from '@custodian/event-contracts';
import type { JwtClaims } from './compact-jwt.js';
import { IdentityError, quoteClaim } from './identity-error.js';
import type { ResolvedClaimMapping } from './issuer-config.js';

/** The event contract's bound on groups per identity. */
export const MAX_GROUPS = 256;
const MAX_CLAIM_STRING_LENGTH = 1_024;

/** Reads `a.b.c` from nested objects; a claim whose name itself contains dots is tried first. */
export function readClaim(claims: JwtClaims, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function invalid(issuer: string, message: string): IdentityError {
  return new IdentityError('TOKEN_CLAIMS_INVALID', message, issuer);
}

/** The subject named by the mapping's subject claim. */
export function mapSubject(claims: JwtClaims, issuer: string, mapping: Pick<ResolvedClaimMapping, 'subjectClaim'>): string {
  const subject = readClaim(claims, mapping.subjectClaim);
  if (typeof subject !== 'string' || subject.trim() === '' || subject.length > MAX_CLAIM_STRING_LENGTH) {
    throw invalid(issuer, `subject claim ${quoteClaim(mapping.subjectClaim)} is missing or not a non-empty string`);
  }
  return subject;
}

/** Groups from the groups claim: absent means none; a string is one group; duplicates collapse. */
export function mapGroups(claims: JwtClaims, issuer: string, mapping: Pick<ResolvedClaimMapping, 'groupsClaim'>): string[] {
  const rawGroups = readClaim(claims, mapping.groupsClaim);
  let groups: string[];
  if (rawGroups === undefined || rawGroups === null) groups = [];
  else if (typeof rawGroups === 'string') groups = [rawGroups];
  else if (Array.isArray(rawGroups) && rawGroups.every((g): g is string => typeof g === 'string')) groups = [...new Set(rawGroups)];
  else throw invalid(issuer, `groups claim ${quoteClaim(mapping.groupsClaim)} must be a string or an array of strings`);
  if (groups.some((g) => g === '' || g.length > MAX_CLAIM_STRING_LENGTH)) throw invalid(issuer, 'groups must be non-empty strings of at most 1024 characters');
  if (groups.length > MAX_GROUPS) throw invalid(issuer, `more than ${MAX_GROUPS} groups`);
  return groups;
}

/** The kind from the kind claim through the value map, or the issuer's default kind. */
export function mapKind(claims: JwtClaims, issuer: string, mapping: Pick<ResolvedClaimMapping, 'kindClaim' | 'kindValues' | 'defaultKind'>): Identity['kind'] {
  const rawKind = readClaim(claims, mapping.kindClaim);
  if (rawKind === undefined || rawKind === null) {
    if (mapping.defaultKind === undefined) throw invalid(issuer, `kind claim ${quoteClaim(mapping.kindClaim)} is missing and the issuer has no default kind`);
    return mapping.defaultKind;
  }
  const mapped = typeof rawKind === 'string' && Object.hasOwn(mapping.kindValues, rawKind) ? mapping.kindValues[rawKind] : undefined;
  if (mapped === undefined) throw invalid(issuer, `kind claim value ${quoteClaim(rawKind)} is not mapped to human, agent or service`);
  return mapped;
}

/** Maps verified claims to the identity bound to every event. */
export function mapIdentity(claims: JwtClaims, issuer: string, mapping: ResolvedClaimMapping): Identity {
  return { subject: mapSubject(claims, issuer, mapping), issuer, groups: mapGroups(claims, issuer, mapping), kind: mapKind(claims, issuer, mapping) };
}
